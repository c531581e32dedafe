package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// InvalidJSON turns an error of encoding/json decoding a request body into
// a *FieldError, which the HTTP edges map to 400 with its code:
// invalid_json when the body is not valid JSON or not an object,
// invalid_type naming the field that holds a value of the wrong type,
// invalid_time for a time that is not RFC 3339, unknown_field naming a
// field the body may not hold. An unknown field whose name looks like a
// card number is refused unnamed, as card_number_refused. Every JSON body
// the server and the admin API read goes through here: it is the one place
// that knows encoding/json's errors, and the message never carries the
// decoder's text.
func InvalidJSON(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		tim *time.ParseError
		fe  *FieldError
	)
	switch {
	case errors.As(err, &fe):
		return fe // an UnmarshalJSON of ours already said what is wrong
	case errors.As(err, &syn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid("", "invalid_json", "the body is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return Invalid("", "invalid_json", "the body must be a JSON object")
		}
		return Invalid(typ.Field, "invalid_type", fmt.Sprintf("%s must be %s, not a JSON %s", typ.Field, jsonTypeName(typ.Type), typ.Value))
	case errors.As(err, &tim):
		return Invalid("", "invalid_time", "times must be RFC 3339, such as 2026-01-02T15:04:05Z")
	}
	// encoding/json reports an unknown field only as text ("json: unknown
	// field \"x\""), with no type to match; this is the one place that
	// reads it.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		if LooksLikePAN(name) {
			return panError("") // naming the field would echo the number
		}
		return Invalid(name, "unknown_field", fmt.Sprintf("unknown field %q", name))
	}
	return Invalid("", "invalid_json", "the body is not valid JSON")
}

// jsonTypeName names the JSON type a Go type decodes from, for messages.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	if t == reflect.TypeFor[json.Number]() {
		return "a number"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Pointer:
		return jsonTypeName(t.Elem())
	}
	return "an object"
}
