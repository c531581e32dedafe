package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// job is one request handed from the scheduler to a worker.
type job struct {
	due  time.Time // when it should have been sent; latency starts here
	body *[]byte   // from the body pool; the client returns it once copied
}

// result is what a worker reports about one request.
type result struct {
	latency time.Duration // from due time to the end of the response body
	status  int           // 0 when no response arrived
	outcome outcome
	failure failure
}

// outcome is the decision found in a 2xx response body.
type outcome uint8

const (
	outcomeNone outcome = iota // not a 2xx response
	outcomeAllow
	outcomeChallenge
	outcomeDeny
	outcomeUnknown // a 2xx response without a recognisable decision
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"", "allow", "challenge", "deny", "unknown"}

// failure classifies a request that got no complete response.
type failure uint8

const (
	failureNone failure = iota
	failureTimeout
	failureCanceled
	failureRefused
	failureReset
	failureEOF
	failureOther
	numFailures
)

var failureNames = [numFailures]string{"", "timeout", "canceled", "connection_refused", "connection_reset", "eof", "other"}

func classify(err error) failure {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return failureTimeout
	case errors.Is(err, context.Canceled):
		return failureCanceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return failureRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return failureReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return failureEOF
	}
	return failureOther
}

var decisionKey = []byte(`"decision"`)

// parseOutcome finds the first "decision":"..." member in a JSON body
// without decoding it.
func parseOutcome(b []byte) outcome {
	i := bytes.Index(b, decisionKey)
	if i < 0 {
		return outcomeUnknown
	}
	b = bytes.TrimLeft(b[i+len(decisionKey):], " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return outcomeUnknown
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	for o := outcomeAllow; o < outcomeUnknown; o++ {
		name := outcomeNames[o]
		if len(b) >= len(name)+2 && b[0] == '"' && string(b[1:1+len(name)]) == name && b[1+len(name)] == '"' {
			return o
		}
	}
	return outcomeUnknown
}
