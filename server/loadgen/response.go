package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
)

// errMalformed is returned for a response that is not HTTP/1.x as we read
// it. It classifies as failureOther.
var errMalformed = errors.New("malformed HTTP response")

// response is what readResponse learned about one HTTP/1.x response.
type response struct {
	status int // the final (non-1xx) status code
	n      int // body bytes kept at the start of buf
	// keepAlive is false when the connection cannot carry another request:
	// the server said Connection: close, answered HTTP/1.0 without
	// keep-alive, or delimited the body by closing the connection.
	keepAlive bool
}

// readResponse reads one response to a POST from br: the status line, the
// headers and the whole body. It keeps the first len(buf) body bytes in buf
// and discards the rest. Interim 1xx responses are skipped. Only
// Content-Length, Transfer-Encoding and Connection are interpreted; a body
// with neither length nor chunked coding runs to the end of the connection.
//
// A status line, header or chunk-size line longer than br's buffer is
// errMalformed. A connection that ends early gives io.EOF before the first
// byte and io.ErrUnexpectedEOF after it. The status is set as soon as the
// status line is read, also when err is not nil. It allocates nothing.
func readResponse(br *bufio.Reader, buf []byte) (response, error) {
	var r response
	var h header
	for {
		line, err := readLine(br)
		if err != nil {
			return r, err
		}
		var minor byte
		if r.status, minor, err = parseStatusLine(line); err != nil {
			return r, err
		}
		if h, err = readHeader(br); err != nil {
			return r, err
		}
		if r.status == 101 {
			// We never ask to switch protocols.
			return r, errMalformed
		}
		if r.status >= 200 {
			r.keepAlive = !h.close && (minor == '1' || h.keepAlive)
			break
		}
		// 1xx: an interim response without a body; the real one follows.
	}

	switch {
	case r.status == 204 || r.status == 304:
		// No body, whatever the headers say.
	case h.chunked:
		n, err := readChunked(br, buf)
		r.n = n
		if err != nil {
			return r, err
		}
	case h.length >= 0 && !h.otherCoding:
		n, err := readBody(br, buf, 0, h.length)
		r.n = n
		if err != nil {
			return r, err
		}
	default:
		// Delimited by the end of the connection.
		r.keepAlive = false
		n, err := io.ReadFull(br, buf)
		r.n = n
		if err == nil {
			err = discardAll(br)
		}
		if err != io.EOF && err != io.ErrUnexpectedEOF {
			return r, err
		}
	}
	return r, nil
}

// header holds the response headers readResponse interprets.
type header struct {
	length      int64 // Content-Length, -1 when absent
	chunked     bool  // the final transfer coding is chunked
	otherCoding bool  // a Transfer-Encoding without chunked last
	close       bool  // Connection: close
	keepAlive   bool  // Connection: keep-alive
}

// readHeader reads header lines up to and including the empty line.
func readHeader(br *bufio.Reader) (header, error) {
	h := header{length: -1}
	for {
		line, err := readLine(br)
		if err != nil {
			return h, unexpected(err)
		}
		if len(line) == 0 {
			return h, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // obsolete line folding: part of a header we ignore or have read
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return h, errMalformed
		}
		name, value := line[:i], bytes.Trim(line[i+1:], " \t")
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseDecimal(value)
			if !ok || h.length >= 0 && n != h.length {
				return h, errMalformed
			}
			h.length = n
		case equalFold(name, "transfer-encoding"):
			// Only the last coding of the last header decides the framing.
			last := value
			if j := bytes.LastIndexByte(value, ','); j >= 0 {
				last = bytes.Trim(value[j+1:], " \t")
			}
			h.chunked = equalFold(last, "chunked")
			h.otherCoding = !h.chunked
		case equalFold(name, "connection"):
			for len(value) > 0 {
				var token []byte
				token, value, _ = bytes.Cut(value, []byte{','})
				token = bytes.Trim(token, " \t")
				h.close = h.close || equalFold(token, "close")
				h.keepAlive = h.keepAlive || equalFold(token, "keep-alive")
			}
		}
	}
}

// parseStatusLine parses "HTTP/1.x NNN reason" and returns the status code
// and x.
func parseStatusLine(line []byte) (status int, minor byte, err error) {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' ||
		len(line) > 12 && line[12] != ' ' {
		return 0, 0, errMalformed
	}
	minor = line[7]
	if minor != '0' && minor != '1' {
		return 0, 0, errMalformed
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, 0, errMalformed
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, 0, errMalformed
	}
	return status, minor, nil
}

// readChunked reads a chunked body and its trailer, keeping the first
// len(buf) bytes of data in buf.
func readChunked(br *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for {
		line, err := readLine(br)
		if err != nil {
			return n, unexpected(err)
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return n, errMalformed
		}
		if size == 0 {
			break
		}
		if n, err = readBody(br, buf, n, size); err != nil {
			return n, err
		}
		if line, err = readLine(br); err != nil {
			return n, unexpected(err)
		}
		if len(line) != 0 {
			return n, errMalformed
		}
	}
	for { // the trailer, ignored
		line, err := readLine(br)
		if err != nil {
			return n, unexpected(err)
		}
		if len(line) == 0 {
			return n, nil
		}
	}
}

// parseChunkSize parses a chunk-size line: hex digits, then optional
// whitespace and chunk extensions, which are ignored.
func parseChunkSize(line []byte) (int64, bool) {
	var size int64
	i := 0
	for ; i < len(line); i++ {
		d, ok := unhex(line[i])
		if !ok {
			break
		}
		if i >= 15 { // more than 2^60 bytes: not a size we will read
			return 0, false
		}
		size = size<<4 | int64(d)
	}
	if i == 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(line[i:], " \t")
	return size, len(rest) == 0 || rest[0] == ';'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseDecimal parses a Content-Length value.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 { // 18 digits cannot overflow an int64
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// readBody reads exactly size bytes from br, copying into buf[n:] as many as
// fit and discarding the rest. It returns the new count of bytes in buf.
func readBody(br *bufio.Reader, buf []byte, n int, size int64) (int, error) {
	if k := int(min(size, int64(len(buf)-n))); k > 0 {
		if _, err := io.ReadFull(br, buf[n:n+k]); err != nil {
			return n, unexpected(err)
		}
		n += k
		size -= int64(k)
	}
	for size > 0 {
		d, err := br.Discard(int(min(size, math.MaxInt32)))
		size -= int64(d)
		if err != nil {
			return n, unexpected(err)
		}
	}
	return n, nil
}

// discardAll reads br to its end and returns the error that ended it,
// io.EOF for a clean end.
func discardAll(br *bufio.Reader) error {
	for {
		if _, err := br.Discard(br.Size()); err != nil {
			return err
		}
	}
}

// readLine reads one line and returns it without its line ending (CRLF, or
// a bare LF). The line is valid until the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return nil, errMalformed
	case err == io.EOF && len(line) > 0:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

// unexpected turns io.EOF into io.ErrUnexpectedEOF, for reads in the middle
// of a response.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring the
// case of b.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
