package server

import "fmt"

// Config is what a server is built from; the registrar command fills it from its
// flags (registrar/flags.go), the tests directly. Zero values mean the defaults.
type Config struct {
	Listen string // the address served, a host the browser guards accept
	Token  string // bearer token every /api/ and /v1/ request must carry; "": none
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
	_, err := guardOptions(c)
	return err
}
