package server

import (
	"github.com/riskengine/risk/engine"
)

// decodePayment parses a POST /v1/decisions body into an engine.Payment.
// The decoder is engine.DecodePayment, shared with the admin's offline
// replay; every error is a *engine.FieldError naming the field at fault,
// and a value that looks like a card number anywhere in the body is
// refused.
func decodePayment(body []byte) (engine.Payment, error) {
	return engine.DecodePayment(body)
}

// jsonError turns an error of decoding a request body into a field error,
// worded as for a decision request: see engine.InvalidJSON.
func jsonError(err error) error {
	return engine.InvalidJSON(err)
}

// The parts of a payment in the explanation of GET /v1/decisions/{id}.

type accountJSON struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
	Country   string `json:"country"`
}

type cardJSON struct {
	Fingerprint string `json:"fingerprint"`
	BIN         string `json:"bin"`
	Country     string `json:"country"`
}

type deviceJSON struct {
	ID        string `json:"id"`
	IP        string `json:"ip"`
	IPCountry string `json:"ip_country"`
}

type merchantJSON struct {
	ID      string `json:"id"`
	MCC     string `json:"mcc"`
	Country string `json:"country"`
}
