// Command floor is the lower bound the engine's load figures are read
// against: an Echo service that does only what any JSON API must do for a
// decision request (read the body, decode it with encoding/json, write a
// fixed decision) and nothing a risk engine does. .ci/perf-floor drives it
// with the same load generator as the engine; its CPU per request and its
// latency at a rate are what this machine gives before the first rule runs.
//
//	go run ./.ci/floor 127.0.0.1:18095
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"
)

// decision is a response of the size and shape of the engine's.
const decision = `{"decision_id":"dec_aaaaaaaaaaaaaaaaaaaaaaaaaa","transaction_id":"tx","outcome":"allow",` +
	`"score":0,"reasons":[],"limits":{"single_max":500000,"daily_max":2000000,"daily_remaining":1500000,` +
	`"daily_spent":500000,"currency":"EUR","trust":1},"ruleset_version":1,"degraded":false,` +
	`"evaluated_at":"2026-12-03T00:00:00Z"}`

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floor host:port")
		os.Exit(2)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	body := []byte(decision)
	e.POST("/v1/decisions", func(c echo.Context) error {
		var p map[string]any
		if err := json.NewDecoder(c.Request().Body).Decode(&p); err != nil {
			return c.JSON(http.StatusBadRequest, map[string]string{"code": "invalid_json"})
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
	})
	if err := e.Start(os.Args[1]); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
