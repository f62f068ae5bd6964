package server

import (
	"fmt"
	"time"
)

// Config is what a server is built from; the registrar command fills it from its
// flags (registrar/flags.go), the tests directly. Zero values mean the defaults.
type Config struct {
	Listen string // the address served, a host the browser guards accept
	Token  string // bearer token every /api/ (and, without ProxyToken, /v1/) request must carry; "": none
	// ProxyToken is the proxies' own bearer token: when set, /v1/ requests must carry
	// it (and the Token no longer does), and /api/ never accepts it.
	ProxyToken string
	// TLSCert and TLSKey are PEM files to serve HTTPS from (both or neither), read
	// again when either file changes; TLSClientCA, a PEM file of CA certificates, makes
	// /v1/ require a client certificate one of them signed (see tls.go).
	TLSCert, TLSKey, TLSClientCA string
	// Policy says which targets writes may name (PolicyFrom builds it from the
	// -allow-cidr, -dns-targets and -allow-dns-suffix settings).
	Policy Policy
	// AllowHost and AllowOrigin (comma lists) widen what browsers may do; see
	// guardOptions.
	AllowHost   string
	AllowOrigin string
	// PageBytes is the largest /v1/routes answer: full tables are paged by it, a
	// delta that would not fit is answered with a full table, a version-1 request for
	// a larger table gets 507.
	PageBytes int64
	// MaxServers refuses writes that would take the table past it (507).
	MaxServers int64
	// History is how many revisions of changes the store keeps for delta answers
	// (StoreOptions; zero: store.DefaultHistory).
	History int64
	// ReplicaName names this registrar in GET /api/proxies (which replica saw a
	// proxy); "" means the address it listens on.
	ReplicaName string
	// MaxFullAnswers bounds the full-table answers of /v1/routes sent at once (a
	// request beyond it is answered 503 with Retry-After); AnswerWriteTimeout is how
	// long a client has to take one /v1/routes answer. Zero: the defaults.
	MaxFullAnswers     int
	AnswerWriteTimeout time.Duration
	// MaxProxies bounds the proxy registry (DefaultMaxProxies when zero).
	MaxProxies int64
	// StoreAt names where the table is kept, as log attributes of the "listening"
	// line (e.g. "data", path or "etcd", endpoints, "prefix", prefix).
	StoreAt []any
}

// Defaults of the tuning settings.
const (
	DefaultPageBytes  = 4 << 20
	DefaultMaxServers = 2_000_000
	// MinPageBytes holds the answer's envelope and the longest route.
	MinPageBytes = 4096
)

// Check returns the error New would give for c's settings, so that a command line
// can be refused before a store is opened.
func (c Config) Check() error {
	if c.PageBytes != 0 && c.PageBytes < MinPageBytes {
		return fmt.Errorf("-page-bytes must be at least %d", MinPageBytes)
	}
	if c.ProxyToken != "" && c.ProxyToken == c.Token {
		return fmt.Errorf("-proxy-token must differ from -token: the proxies' credential must not allow writes")
	}
	if err := c.checkTLS(); err != nil {
		return err
	}
	_, err := guardOptions(c)
	return err
}
