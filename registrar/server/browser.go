package server

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"switchyard/internal/validate"
	"switchyard/registrar/guard"
)

// guardOptions is what the registrar checks before any handler (package guard): the
// Host names it answers for without a token (the -listen host and -allow-host), the
// origins besides its own whose pages may write (-allow-origin), and the body limit.
// /v1/ answers any Host: proxies poll it with their configured authority
// ("registrar" in envoy.yaml); so do the health and metrics probes.
func guardOptions(c Config) (guard.Options, error) {
	o := guard.Options{
		TokenSet: c.Token != "",
		HostFree: []string{"/v1/", "/healthz", "/metrics"},
		MaxBody:  maxBody,
		// A whole table; the handler bounds what it reads the same way.
		MaxBodyAt: map[string]int64{"/api/import": maxImportBody},
		Fail:      writeFailure,
	}
	if h, _, err := net.SplitHostPort(c.Listen); err == nil && h != "" {
		o.Hosts = append(o.Hosts, h)
	}
	for _, h := range splitList(c.AllowHost) {
		if a, err := validate.ParseAddress(h); err != nil || a.Port != 0 {
			return o, fmt.Errorf("-allow-host: %q is not a host name such as registrar.internal.example.com (no port, no scheme)", h)
		}
		o.Hosts = append(o.Hosts, h)
	}
	for _, s := range splitList(c.AllowOrigin) {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil ||
			strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			return o, fmt.Errorf("-allow-origin: %q is not an origin such as https://cms.example.com (scheme and host, optional port, nothing after)", s)
		}
		o.Origins = append(o.Origins, u.Scheme+"://"+u.Host)
	}
	return o, nil
}

func splitList(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
