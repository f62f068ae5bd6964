// Package registrarapi declares the JSON the registrar's /api/ endpoints answer with:
// {"result": Result}. The registrar encodes these types and its tests (and any Go
// client) decode the same ones, so a field is named once. The JSON names are the API's
// wire contract (docs/origin.md, README) and stay as they are. No dependencies beyond
// the standard library, so every part may import it.
package registrarapi

import "time"

// Server is one registered server as the API shows it: the server name clients put
// in X-Server-Name (Name), its first active target (Target, host:port or an IP: what
// clients from before target sets read), and all its targets, always (one for a
// server registered with ipAddress alone). The registrar's store keeps servers in its
// own type (store.Server), which the registrar turns into this one.
type Server struct {
	Name      string    `json:"host"`
	Target    string    `json:"ipAddress"`
	Service   string    `json:"serviceName"`
	UpdatedAt time.Time `json:"updatedAt"`
	Targets   []Target  `json:"targets,omitempty"`
	// HealthCheck is the server's active health check; absent when it has none.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
}

// HealthCheck is a server's active health check as the API shows it (README, "Active
// health checks"): the path the registrar sends GET to on each target, how often and
// how long it waits (Go duration strings such as "5s"), and how many passed or failed
// checks in a row mark a target up or down.
type HealthCheck struct {
	Path               string `json:"path"`
	Interval           string `json:"interval"`
	Timeout            string `json:"timeout"`
	HealthyThreshold   int    `json:"healthyThreshold"`
	UnhealthyThreshold int    `json:"unhealthyThreshold"`
}

// Target is one target of a server as the API shows it.
type Target struct {
	Address string `json:"address"`
	Weight  int    `json:"weight"` // 0–100
	State   string `json:"state"`  // "active" or "draining"
	Health  string `json:"health"` // "up", or "down" when the registrar's active health check finds it so
}

// Answer is the whole body of an /api/ answer.
type Answer struct {
	Result Result `json:"result"`
}

// Result is what every /api/ answer holds under "result": success or the error a
// person reads, and the fields of the endpoint that answered. The pointer fields are
// absent when nil and present when set, even when they point at an empty list.
type Result struct {
	Success  bool      `json:"success"`
	Error    string    `json:"error,omitempty"`
	Revision *uint64   `json:"revision,omitempty"`
	Changed  *bool     `json:"changed,omitempty"`
	Server   *Server   `json:"server,omitempty"`
	Servers  *[]Server `json:"servers,omitempty"`

	// GET /api/proxies.
	Lineage string        `json:"lineage,omitempty"`
	Replica string        `json:"replica,omitempty"`
	Summary *ProxySummary `json:"summary,omitempty"`
	Proxies *[]ProxyView  `json:"proxies,omitempty"`
	// A write with wait=applied.
	Applied   *bool        `json:"applied,omitempty"`
	AppliedBy *int         `json:"appliedBy,omitempty"`
	Pending   *[]ProxyView `json:"pending,omitempty"` // the first 100 by id
	// PendingCount is how many proxies have not applied it (Pending shows at most 100).
	PendingCount *int `json:"pendingCount,omitempty"`
	// POST /api/import: the servers imported (Lineage is the new one).
	Imported *int `json:"imported,omitempty"`
}

// Export is the body of GET /api/export, and the form POST /api/import takes (which
// does not use Revision and Lineage): the whole table at one revision.
type Export struct {
	Revision uint64   `json:"revision"`
	Lineage  string   `json:"lineage"`
	Servers  []Server `json:"servers"`
}

// ProxyView is one proxy as GET /api/proxies shows it.
type ProxyView struct {
	Proxy    string `json:"proxy"`
	Cluster  string `json:"cluster,omitempty"`
	Version  string `json:"version,omitempty"`
	State    string `json:"state"`    // "current", "behind" or "gone"
	Revision uint64 `json:"revision"` // the after of its last poll
	Lineage  string `json:"lineage,omitempty"`
	// RevisionsBehind is the current revision minus Revision (the whole current
	// revision when the proxy holds another lineage or none); 0 when current.
	RevisionsBehind uint64 `json:"revisionsBehind"`
	// BehindSeconds is how long it has been behind (0 when current).
	BehindSeconds float64   `json:"behindSeconds"`
	LastPoll      time.Time `json:"lastPoll"`
	SilentSeconds float64   `json:"silentSeconds"`
	WaitSeconds   float64   `json:"waitSeconds"`
	FirstSeen     time.Time `json:"firstSeen"`
	Replica       string    `json:"replica"`
}

// ProxySummary counts proxies by state.
type ProxySummary struct {
	Proxies int `json:"proxies"`
	Current int `json:"current"`
	Behind  int `json:"behind"`
	Gone    int `json:"gone"`
}
