package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/server/openapi"
)

// serveOpenAPI is GET /openapi.json: the API's OpenAPI document, open to
// anyone (it holds no secret, and gateway engineers generate clients from
// it).
func serveOpenAPI(c echo.Context) error {
	b, err := openapi.JSON()
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=300")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}
