package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// maxAPIResponse bounds what one in-process API answer may hold.
const maxAPIResponse = 16 << 20

// apiError is an API error answer, as the API's one error mapper wrote it.
type apiError struct {
	Status  int             `json:"-"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Field   string          `json:"field"`
	Errors  []apiFieldError `json:"errors"`
}

// apiFieldError is one compile problem of a 422 answer.
type apiFieldError struct {
	Rule    string `json:"rule"`
	Field   string `json:"field"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// recorder is the http.ResponseWriter of an in-process API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len()+len(b) > maxAPIResponse {
		return 0, fmt.Errorf("api answer over %d bytes", maxAPIResponse)
	}
	return r.body.Write(b)
}

// call sends one request to the API in-process, as the session's key: the
// same handlers, middleware and role checks as a request from curl. body is
// JSON-encoded unless it is nil or already []byte. A 2xx answer is decoded
// into out (when not nil, numbers as json.Number); any other answer is an
// *apiError.
func (c *Console) call(ec echo.Context, sess *session, method, path string, body, out any) error {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ec.Request().Context(), method, path, r)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+sess.key)
	if id := ec.Response().Header().Get(echo.HeaderXRequestID); id != "" {
		req.Header.Set(echo.HeaderXRequestID, id)
	}
	req.RemoteAddr = ec.Request().RemoteAddr
	rec := &recorder{header: http.Header{}}
	c.cfg.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status < 200 || rec.status > 299 {
		e := &apiError{Status: rec.status}
		if err := json.Unmarshal(rec.body.Bytes(), e); err != nil || e.Message == "" {
			e.Code, e.Message = "error", strings.TrimSpace(http.StatusText(rec.status))
		}
		return e
	}
	if out == nil || rec.body.Len() == 0 {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = append((*raw)[:0], rec.body.Bytes()...)
		return nil
	}
	dec := json.NewDecoder(&rec.body)
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}
