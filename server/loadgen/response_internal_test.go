package loadgen

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// next is what follows every framed response in TestReadResponse: the
// reader must stop exactly before it.
const next = "HTTP/1.1 200 OK\r\n"

func TestReadResponse(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name      string
		in        string
		bufSize   int
		status    int
		body      string // kept in buf
		keepAlive bool
		rest      string // left unread, when the response is framed
		err       error
	}{
		{
			name:   "content-length",
			in:     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n" + `{"decision":"allow"}` + next,
			status: 200, body: `{"decision":"allow"}`, keepAlive: true, rest: next,
		},
		{
			name:   "header names in any case, value whitespace",
			in:     "HTTP/1.1 201 Created\r\ncOnTeNt-LeNgTh: \t 2 \t\r\n\r\n{}" + next,
			status: 201, body: `{}`, keepAlive: true, rest: next,
		},
		{
			name:   "no reason phrase",
			in:     "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}" + next,
			status: 200, body: `{}`, keepAlive: true, rest: next,
		},
		{
			name:   "bare LF line endings",
			in:     "HTTP/1.1 200 OK\nContent-Length: 2\n\n{}" + next,
			status: 200, body: `{}`, keepAlive: true, rest: next,
		},
		{
			name:    "body longer than buf is cut, and the rest discarded",
			in:      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + long + next,
			bufSize: 10, status: 200, body: long[:10], keepAlive: true, rest: next,
		},
		{
			name:   "chunked",
			in:     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"dec\r\n0f\r\nision\":\"allow\"}\r\n0\r\n\r\n" + next,
			status: 200, body: `{"decision":"allow"}`, keepAlive: true, rest: next,
		},
		{
			name:   "chunked with extensions, upper-case hex and a trailer",
			in:     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\nA;name=value\r\n0123456789\r\n1 ; x\r\n!\r\n0\r\nX-Trailer: 1\r\n\r\n" + next,
			status: 200, body: "0123456789!", keepAlive: true, rest: next,
		},
		{
			name:    "chunked longer than buf",
			in:      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n64\r\n" + long + "\r\n0\r\n\r\n" + next,
			bufSize: 8, status: 200, body: "abcdefxx", keepAlive: true, rest: next,
		},
		{
			name:   "chunked wins over content-length",
			in:     "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + next,
			status: 200, body: `{}`, keepAlive: true, rest: next,
		},
		{
			name:   "connection close",
			in:     "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\n{}" + next,
			status: 200, body: `{}`, keepAlive: false, rest: next,
		},
		{
			name:   "HTTP/1.0 closes by default",
			in:     "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}" + next,
			status: 200, body: `{}`, keepAlive: false, rest: next,
		},
		{
			name:   "HTTP/1.0 keep-alive",
			in:     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}" + next,
			status: 200, body: `{}`, keepAlive: true, rest: next,
		},
		{
			name:   "no length: the body runs to the end of the connection",
			in:     "HTTP/1.1 200 OK\r\n\r\n" + `{"decision":"deny"}`,
			status: 200, body: `{"decision":"deny"}`, keepAlive: false,
		},
		{
			name:   "unknown transfer coding runs to the end too",
			in:     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}{}",
			status: 200, body: `{}{}`, keepAlive: false,
		},
		{
			name:   "interim 100 and 103 are skipped",
			in:     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" + next,
			status: 200, body: `{}`, keepAlive: true, rest: next,
		},
		{
			name:   "204 and 304 have no body",
			in:     "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n" + next,
			status: 204, keepAlive: true, rest: next,
		},
		{
			name:   "non-2xx body is read all the same",
			in:     "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9\r\n\r\nbusy busy" + next,
			status: 503, body: "busy busy", keepAlive: true, rest: next,
		},
		{name: "nothing", in: "", err: io.EOF},
		{name: "cut in the status line", in: "HTTP/1.1 20", err: io.ErrUnexpectedEOF},
		{name: "cut in the headers", in: "HTTP/1.1 200 OK\r\nContent-Le", status: 200, err: io.ErrUnexpectedEOF},
		{name: "cut after the headers", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", status: 200, err: io.ErrUnexpectedEOF},
		{name: "cut in the body", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", status: 200, err: io.ErrUnexpectedEOF},
		{name: "cut in the body past buf", in: "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n" + long[:20], bufSize: 10, status: 200, err: io.ErrUnexpectedEOF},
		{name: "cut in a chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}", status: 200, err: io.ErrUnexpectedEOF},
		{name: "cut before the last chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", status: 200, err: io.ErrUnexpectedEOF},
		{name: "cut in the trailer", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", status: 200, err: io.ErrUnexpectedEOF},
		{name: "not HTTP", in: "SSH-2.0-OpenSSH_9.6\r\n", err: errMalformed},
		{name: "HTTP/2", in: "HTTP/2 200\r\n\r\n", err: errMalformed},
		{name: "short status", in: "HTTP/1.1 20\r\n\r\n", err: errMalformed},
		{name: "status with letters", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: errMalformed},
		{name: "status below 100", in: "HTTP/1.1 099 OK\r\n\r\n", err: errMalformed},
		{name: "switching protocols", in: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", status: 101, err: errMalformed},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\n{}", status: 200, err: errMalformed},
		{name: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", status: 200, err: errMalformed},
		{name: "huge length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", status: 200, err: errMalformed},
		{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", status: 200, err: errMalformed},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", status: 200, err: errMalformed},
		{name: "chunk size too large", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", status: 200, err: errMalformed},
		{name: "chunk without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}xx\r\n0\r\n\r\n", status: 200, err: errMalformed},
		{name: "header longer than the read buffer", in: "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("y", readBuf) + "\r\n\r\n", status: 200, err: errMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.bufSize
			if size == 0 {
				size = responseBuf
			}
			buf := make([]byte, size)
			br := bufio.NewReaderSize(strings.NewReader(tt.in), readBuf)
			resp, err := readResponse(br, buf)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if resp.status != tt.status {
				t.Errorf("status = %d, want %d", resp.status, tt.status)
			}
			if err != nil {
				return
			}
			if got := string(buf[:resp.n]); got != tt.body {
				t.Errorf("body = %q, want %q", got, tt.body)
			}
			if resp.keepAlive != tt.keepAlive {
				t.Errorf("keepAlive = %v, want %v", resp.keepAlive, tt.keepAlive)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != tt.rest {
				t.Errorf("left unread %q, want %q", rest, tt.rest)
			}
		})
	}
}

// FuzzReadResponse checks that no input makes readResponse panic, keep more
// than its buffer or claim a framed response it did not read.
func FuzzReadResponse(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"decision\":\"allow\"}")
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\n{\"dec\r\n0\r\nT: 1\r\n\r\n")
	f.Add("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n")
	f.Add("HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\nbusy")
	f.Fuzz(func(t *testing.T, in string) {
		buf := make([]byte, 16)
		resp, err := readResponse(bufio.NewReaderSize(strings.NewReader(in), 64), buf)
		if resp.n < 0 || resp.n > len(buf) {
			t.Fatalf("kept %d bytes in a %d-byte buffer", resp.n, len(buf))
		}
		if err == nil && (resp.status < 200 || resp.status > 999) {
			t.Fatalf("status %d without an error", resp.status)
		}
	})
}
