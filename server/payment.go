package server

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
