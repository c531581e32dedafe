package server

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// apiError is the JSON body of every error response.
type apiError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Errors    any    `json:"errors,omitempty"`
}

// Error is an error with an HTTP status and a client-safe body. Handlers
// return it for conditions that are not engine categories.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// toAPIError maps any error to a status and a client-safe body. It is the
// one place where errors become HTTP.
func toAPIError(err error) (int, apiError) {
	var (
		fe *engine.FieldError
		se *Error
		he *echo.HTTPError
		de engine.Detailer
	)
	switch {
	case errors.As(err, &se):
		return se.Status, apiError{Code: se.Code, Message: se.Message, Field: se.Field}
	case errors.As(err, &fe):
		return http.StatusBadRequest, apiError{Code: fe.Code, Message: fe.Message, Field: fe.Field}
	case errors.Is(err, engine.ErrUnprocessable):
		body := apiError{Code: "unprocessable", Message: clientMessage(err, engine.ErrUnprocessable)}
		if errors.As(err, &de) {
			body.Errors = de.Details()
		}
		return http.StatusUnprocessableEntity, body
	case errors.Is(err, engine.ErrInvalid):
		return http.StatusBadRequest, apiError{Code: "invalid", Message: clientMessage(err, engine.ErrInvalid)}
	case errors.Is(err, engine.ErrNotFound):
		return http.StatusNotFound, apiError{Code: "not_found", Message: clientMessage(err, engine.ErrNotFound)}
	case errors.Is(err, engine.ErrConflict):
		return http.StatusConflict, apiError{Code: "conflict", Message: clientMessage(err, engine.ErrConflict)}
	case errors.Is(err, engine.ErrUnavailable):
		return http.StatusServiceUnavailable, apiError{Code: "unavailable", Message: "the service cannot answer right now"}
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok {
			msg = s
		}
		return he.Code, apiError{Code: codeForStatus(he.Code), Message: msg}
	}
	return http.StatusInternalServerError, apiError{Code: "internal", Message: "internal error"}
}

// clientMessage is the message a client sees for err, which wraps the
// category sentinel: the text of the error that wraps the sentinel itself
// (`rule "x" is already in the draft: conflict`), which the code that
// found the condition wrote for the client. What callers wrapped around it
// on the way up (operation names, storage errors) stays in the log.
func clientMessage(err, sentinel error) string {
	for e := err; e != nil; {
		var next []error
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if w := u.Unwrap(); w != nil {
				next = []error{w}
			}
		case interface{ Unwrap() []error }:
			next = u.Unwrap()
		}
		var down error
		for _, w := range next {
			if w == sentinel {
				return e.Error()
			}
			if down == nil && errors.Is(w, sentinel) {
				down = w
			}
		}
		e = down
	}
	return sentinel.Error()
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusRequestEntityTooLarge:
		return "body_too_large"
	}
	if status >= 500 {
		return "internal"
	}
	return "bad_request"
}

// errorHandler is Echo's HTTPErrorHandler: it sends the mapped body and
// logs the full error chain for server errors.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := toAPIError(err)
	body.RequestID = requestID(c)
	if status >= 500 {
		s.log.Error("request failed", "request_id", body.RequestID, "path", c.Path(), "err", err)
	} else if s.log.Enabled(c.Request().Context(), slog.LevelDebug) {
		s.log.Debug("request refused", "request_id", body.RequestID, "status", status, "err", err)
	}
	c.Set(ctxErrorCode, body.Code)
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, body)
}
