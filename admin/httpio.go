package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// readBody reads the whole request body, refusing more than MaxBodyBytes.
func (a *API) readBody(c echo.Context) ([]byte, error) {
	return readBody(c, a.cfg.MaxBodyBytes)
}

func readBody(c echo.Context, max int64) ([]byte, error) {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, max)
	body, err := io.ReadAll(r)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, engine.Invalid("", "body_too_large", fmt.Sprintf("the body is larger than %d bytes", max))
	}
	if err != nil {
		return nil, engine.Invalid("", "unreadable_body", "the body could not be read")
	}
	return body, nil
}

// bind decodes the JSON body into v, refusing unknown fields. An empty body
// is an error unless optional.
func (a *API) bind(c echo.Context, v any, optional bool) error {
	return Bind(c, v, a.cfg.MaxBodyBytes, optional)
}

// Bind decodes the JSON request body into v, refusing unknown fields and
// more than max bytes; an empty body is an error unless optional. Every
// error is a *engine.FieldError. The admin API and its subpackages (review,
// notify) read their bodies through it.
func Bind(c echo.Context, v any, max int64, optional bool) error {
	body, err := readBody(c, max)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return engine.Invalid("", "invalid_json", "the body must be a JSON object")
	}
	return decodeJSON(body, v)
}

// decodeJSON decodes exactly one JSON value into v, refusing unknown fields.
// Every error is a *engine.FieldError.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return engine.InvalidJSON(err)
	}
	if dec.More() {
		return engine.Invalid("", "invalid_json", "the body must hold exactly one JSON value")
	}
	return nil
}

// queryInt parses an optional integer query parameter within [lo, hi]; def
// when absent.
func queryInt(c echo.Context, name string, def, lo, hi int64) (int64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, engine.Invalid(name, "invalid_"+name, fmt.Sprintf("%s must be an integer between %d and %d", name, lo, hi))
	}
	return n, nil
}

// queryTime parses an optional RFC 3339 query parameter.
func queryTime(c echo.Context, name string) (time.Time, error) {
	return engine.ParseTime(name, c.QueryParam(name))
}

// pathParam returns a path parameter, unescaped: Echo routes on the raw
// path when it holds escapes such as %2F, and then hands them over as is.
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", engine.Invalid(name, "invalid_path", "the path is not validly escaped")
	}
	return u, nil
}
