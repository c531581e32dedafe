package engine

import (
	"errors"
	"fmt"
)

// Error categories. Every error the engine returns to a caller wraps one of
// these, so the HTTP edge can map it to a status with errors.Is.
var (
	// ErrInvalid marks bad input: the caller must change the request.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound marks a lookup of something that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict marks a request that contradicts stored state, such as a
	// transaction id replayed with a different body.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable marks a dependency that cannot serve right now.
	ErrUnavailable = errors.New("unavailable")
)

// FieldError is bad input in one field. Code is a stable machine-readable
// code ("required", "invalid_currency", ...); Field is the JSON path of the
// field at fault ("card.country"); Message is safe to show a client.
type FieldError struct {
	Field   string
	Code    string
	Message string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Message)
}

// Unwrap makes a FieldError match ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid returns a *FieldError for field with the given code and message.
func Invalid(field, code, message string) error {
	return &FieldError{Field: field, Code: code, Message: message}
}

// ErrUnprocessable marks input that is well-formed but cannot be accepted
// as a whole, such as a rule set that does not compile.
var ErrUnprocessable = errors.New("unprocessable")

// Detailer is an error that carries structured details for the client,
// such as every compile error of a rule set with its position.
type Detailer interface {
	Details() any
}
