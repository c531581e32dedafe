// Package openapitest checks HTTP traffic against the service's OpenAPI
// document (server/openapi), for tests. Wrap a test server's handler with
// Handler and every request and answer through it is validated:
//
//	ts := httptest.NewServer(openapitest.Handler(t, srv.Handler()))
//
// A request the document does not allow must be refused (4xx); every
// answer must be documented for its operation and status, with a body of
// the documented shape; a path or method the document does not know may
// only be answered 404 or 405. Each mismatch is a tb.Errorf naming the
// request.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/riskengine/risk/server/openapi"
)

// maxCapture bounds the response bytes kept for validation; a longer
// answer (a backup stream, a profile) has only its status and content
// type checked.
const maxCapture = 4 << 20

// Load parses and validates the document. It is parsed once per test
// binary and must not be modified.
func Load() (*openapi3.T, error) { return load() }

var load = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.YAML())
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not a valid document: %w", err)
	}
	return doc, nil
})

// router matches requests of any host: the document's servers are
// examples, and test servers listen on random ports.
var router = sync.OnceValues(func() (routers.Router, error) {
	doc, err := load()
	if err != nil {
		return nil, err
	}
	local := *doc
	local.Servers = nil
	return legacy.NewRouter(&local)
})

// Handler returns h wrapped so that every request and response through it
// is checked against the document; mismatches are reported with tb.Errorf
// (safe from the server's goroutines). Requests whose path starts with one
// of skip pass unchecked: routes a test adds for itself. It is safe for
// concurrent use.
func Handler(tb testing.TB, h http.Handler, skip ...string) http.Handler {
	tb.Helper()
	r, err := router()
	if err != nil {
		tb.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if consolePage(req.URL.Path) {
			h.ServeHTTP(w, req)
			return
		}
		for _, prefix := range skip {
			if strings.HasPrefix(req.URL.Path, prefix) {
				h.ServeHTTP(w, req)
				return
			}
		}
		// Keep a copy of the request to check once it is answered: checks
		// run after the handler, one at a time, so they neither delay a
		// handler's start (its deadline runs from there) nor take every
		// core from the handlers under a burst of concurrent requests.
		var body []byte
		if req.Body != nil && req.Body != http.NoBody {
			body, _ = io.ReadAll(req.Body)
			req.Body.Close()
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		saved := req.Clone(context.WithoutCancel(req.Context()))
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, req)
		checking.Lock()
		defer checking.Unlock()
		saved.Body = io.NopCloser(bytes.NewReader(body))
		if msg := checkRequest(r, saved).response(rec); msg != "" {
			tb.Errorf("openapi: %s %s: %s", req.Method, req.URL.RequestURI(), msg)
		}
	})
}

// consolePage reports whether path is the web console's: HTML pages behind
// a session cookie (docs/console.md), outside the JSON API the document
// describes.
func consolePage(path string) bool {
	return path == "/" || path == "/console" || strings.HasPrefix(path, "/console/")
}

// checking serialises the checks of every wrapped handler of the test
// binary: kin-openapi compiles a JSON Schema validator per check, which is
// CPU-heavy under -race.
var checking sync.Mutex

// checked is what is known of a request before it is served.
type checked struct {
	route   *routers.Route
	input   *openapi3filter.RequestValidationInput
	invalid error // the request breaks the document
}

func checkRequest(r routers.Router, req *http.Request) *checked {
	route, params, err := findRoute(r, req)
	if err != nil {
		return &checked{}
	}
	// Read the body for validation and give the handler a fresh copy.
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	vreq := req.Clone(req.Context())
	vreq.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) > 0 && !documentedRequestType(route.Operation, vreq.Header.Get("Content-Type")) {
		vreq.Header.Set("Content-Type", defaultContentType(route.Operation))
	}
	// JSON bodies are checked by checkBody: openapi3filter compiles a
	// JSON Schema validator per check, about five times the cost of the
	// server's own tests under -race.
	jsonBody := isJSON(mediaType(vreq.Header.Get("Content-Type")))
	input := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, ExcludeRequestBody: jsonBody},
	}
	c := &checked{route: route, input: input}
	c.invalid = openapi3filter.ValidateRequest(req.Context(), input)
	if c.invalid == nil && jsonBody {
		c.invalid = checkRequestBody(route.Operation, body)
	}
	return c
}

func mediaType(ct string) string {
	m, _, _ := mime.ParseMediaType(ct)
	return m
}

// checkRequestBody checks a JSON request body against the operation's
// schema.
func checkRequestBody(op *openapi3.Operation, body []byte) error {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil
	}
	rb := op.RequestBody.Value
	if len(bytes.TrimSpace(body)) == 0 {
		if rb.Required {
			return errors.New("request body is required")
		}
		return nil
	}
	mt := rb.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return nil
	}
	return checkBody(mt.Schema.Value, body, openapi3.VisitAsRequest())
}

// checkBody decodes one JSON value from body and checks it against
// schema with kin-openapi's schema visitor, which reads 3.1 type lists
// ("null" included) and validates without compiling.
func checkBody(schema *openapi3.Schema, body []byte, opts ...openapi3.SchemaValidationOption) error {
	// The visitor's error messages print the value at every level, which
	// takes minutes on a body nested thousands deep; no documented body
	// nests that deep.
	if d := depth(body); d > maxDepth {
		return fmt.Errorf("body nests %d levels deep, more than any documented body", d)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	if dec.More() {
		return errors.New("body holds more than one JSON value")
	}
	return schema.VisitJSON(v, opts...)
}

// findRoute is the operation of req. A last path parameter may hold '/'
// (a CIDR list item: Echo's wildcard), which the router cannot match
// segment by segment, so the trailing segments are tried as one.
func findRoute(r routers.Router, req *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := r.FindRoute(req)
	if err == nil {
		return route, params, nil
	}
	segs := strings.Split(req.URL.Path, "/")
	for k := len(segs) - 2; k >= 2; k-- {
		u := *req.URL
		u.Path, u.RawPath = strings.Join(segs[:k], "/")+"/"+strings.Join(segs[k:], "%2F"), ""
		alt := req.Clone(req.Context())
		alt.URL = &u
		if route, params, aerr := r.FindRoute(alt); aerr == nil {
			params[lastParam(route.Path)] = strings.Join(segs[k:], "/")
			return route, params, nil
		}
	}
	return nil, nil, err
}

func lastParam(path string) string {
	i := strings.LastIndex(path, "{")
	return strings.TrimSuffix(path[i+1:], "}")
}

// documentedRequestType reports whether the operation documents a request
// body of content type ct.
func documentedRequestType(op *openapi3.Operation, ct string) bool {
	media, _, _ := mime.ParseMediaType(ct)
	return op.RequestBody != nil && op.RequestBody.Value != nil && op.RequestBody.Value.Content.Get(media) != nil
}

// defaultContentType is what a request body is read as when its
// Content-Type is absent or not documented: the server reads bodies by
// route, not by header.
func defaultContentType(op *openapi3.Operation) string {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return "application/json"
	}
	content := op.RequestBody.Value.Content
	if content.Get("application/json") != nil {
		return "application/json"
	}
	for ct := range content {
		return ct
	}
	return "application/json"
}

// response checks the answer rec holds and returns what is wrong, or "".
func (c *checked) response(rec *recorder) string {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	if c.route == nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return ""
		}
		return fmt.Sprintf("the route is not in the document, yet it answered %d", status)
	}
	if c.invalid != nil && status < 400 {
		return fmt.Sprintf("the document does not allow this request, yet it answered %d: %v", status, shorten(c.invalid))
	}
	if status < 400 && c.route.Operation.Responses.Status(status) == nil {
		return fmt.Sprintf("status %d is not documented (default is for errors)", status)
	}
	header := rec.Header()
	ct := header.Get("Content-Type")
	media, _, _ := mime.ParseMediaType(ct)
	opts := &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: true}
	if msg := documentedContent(c.route.Operation, status, media, rec.size); msg != "" {
		return msg
	}
	if !rec.truncated && c.input.Request.Method != http.MethodHead && isJSON(media) {
		if err := checkResponseBody(c.route.Operation, status, media, rec.body.Bytes()); err != nil {
			return fmt.Sprintf("answer %d %s does not match the document: %v\nbody: %s", status, ct, shorten(err), clip(rec.body.Bytes()))
		}
	}
	err := openapi3filter.ValidateResponse(c.input.Request.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: c.input,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		Options:                opts,
	})
	if err != nil {
		return fmt.Sprintf("answer %d %s does not match the document: %v\nbody: %s", status, ct, shorten(err), clip(rec.body.Bytes()))
	}
	return ""
}

// maxDepth bounds the nesting of a checked body.
const maxDepth = 64

// depth is the deepest nesting of arrays and objects in the JSON text b.
func depth(b []byte) int {
	var d, most int
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			d++
			most = max(most, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return most
}

// checkResponseBody checks a JSON answer against its documented schema.
func checkResponseBody(op *openapi3.Operation, status int, media string, body []byte) error {
	ref := op.Responses.Status(status)
	if ref == nil {
		ref = op.Responses.Default()
	}
	if ref == nil || ref.Value == nil {
		return nil // documentedContent reported it
	}
	mt := ref.Value.Content.Get(media)
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return nil
	}
	return checkBody(mt.Schema.Value, body, openapi3.VisitAsResponse())
}

// documentedContent checks that a response whose body is not validated
// (not JSON, or too long) has a documented status and media type.
func documentedContent(op *openapi3.Operation, status int, media string, size int64) string {
	ref := op.Responses.Status(status)
	if ref == nil {
		ref = op.Responses.Default()
	}
	if ref == nil || ref.Value == nil {
		return fmt.Sprintf("status %d is not documented", status)
	}
	if size == 0 && media == "" {
		return ""
	}
	if len(ref.Value.Content) == 0 {
		if size == 0 {
			return ""
		}
		return fmt.Sprintf("status %d has no documented body, yet %d bytes of %q came", status, size, media)
	}
	if ref.Value.Content.Get(media) == nil {
		return fmt.Sprintf("status %d: content type %q is not documented", status, media)
	}
	return ""
}

// isJSON reports whether media is a JSON document (not JSON lines).
func isJSON(media string) bool {
	return media == "application/json" || strings.HasSuffix(media, "+json")
}

func shorten(err error) string {
	var me openapi3.MultiError
	if errors.As(err, &me) && len(me) > 0 {
		err = me[0]
	}
	s := err.Error()
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}

func clip(b []byte) string {
	if len(b) > 1000 {
		return string(b[:1000]) + "…"
	}
	return string(b)
}

// recorder passes the answer through and keeps its status and the first
// maxCapture bytes.
type recorder struct {
	http.ResponseWriter
	status    int
	body      bytes.Buffer
	size      int64
	truncated bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.size += int64(len(b))
	if !r.truncated {
		if r.body.Len()+len(b) > maxCapture {
			r.truncated = true
			r.body.Reset()
		} else {
			r.body.Write(b)
		}
	}
	return r.ResponseWriter.Write(b)
}

// Flush passes flushes of streamed answers through.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (write
// deadlines of long streams).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
