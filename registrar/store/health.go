package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// HealthCheck is a server's active health check: the registrar sends GET Path to each
// of its targets every Interval, waits at most Timeout for the answer, and marks a
// target down (Target.Down) after UnhealthyThreshold failed checks in a row, up again
// after HealthyThreshold passed checks in a row. A check passes on a 2xx answer;
// anything else (3xx included: redirects are not followed), no answer within Timeout,
// or an address the target policy refuses fails it.
type HealthCheck struct {
	Path               string   `json:"path"`
	Interval           Duration `json:"interval"`
	Timeout            Duration `json:"timeout"`
	HealthyThreshold   int      `json:"healthyThreshold"`
	UnhealthyThreshold int      `json:"unhealthyThreshold"`
}

// Defaults and bounds of a health check's settings.
const (
	DefaultHealthInterval = 5 * time.Second
	// DefaultHealthTimeout is the timeout unless the interval is shorter, when it is
	// the interval.
	DefaultHealthTimeout      = 2 * time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 2

	MinHealthInterval  = 100 * time.Millisecond
	MaxHealthInterval  = time.Hour
	MinHealthTimeout   = 10 * time.Millisecond
	MaxHealthThreshold = 100
	MaxHealthPath      = 256
)

// Duration is a time.Duration written in JSON as Go's duration string ("5s",
// "250ms").
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration is a string such as "5s" or "250ms"`)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration reads a duration as the API and the stores write it: Go's syntax
// ("5s", "250ms", "1m30s").
func ParseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`%q is not a duration such as "5s" or "250ms"`, truncate(s))
	}
	return v, nil
}

func truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:37] + "..."
}

// CheckHealthCheck checks a health check's settings (nil: none, fine). The error names
// the field at fault as healthCheck.<field>.
func CheckHealthCheck(hc *HealthCheck) error {
	if hc == nil {
		return nil
	}
	if err := checkHealthPath(hc.Path); err != nil {
		return fmt.Errorf("healthCheck.path: %v", err)
	}
	iv, to := time.Duration(hc.Interval), time.Duration(hc.Timeout)
	if iv < MinHealthInterval || iv > MaxHealthInterval {
		return fmt.Errorf("healthCheck.interval: %v is not from %v to %v", iv, MinHealthInterval, MaxHealthInterval)
	}
	if to < MinHealthTimeout || to > iv {
		return fmt.Errorf("healthCheck.timeout: %v is not from %v to the interval (%v); a check must end before the next one starts", to, MinHealthTimeout, iv)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"healthyThreshold", hc.HealthyThreshold}, {"unhealthyThreshold", hc.UnhealthyThreshold}} {
		if f.v < 1 || f.v > MaxHealthThreshold {
			return fmt.Errorf("healthCheck.%s: %d is not from 1 to %d", f.name, f.v, MaxHealthThreshold)
		}
	}
	return nil
}

// checkHealthPath: a request target in origin form (RFC 9112 §3.2.1): "/" then
// visible ASCII, no fragment, at most MaxHealthPath bytes.
func checkHealthPath(p string) error {
	if p == "" || p[0] != '/' {
		return fmt.Errorf("%q must start with / (a path on the target, such as /healthz)", truncate(p))
	}
	if len(p) > MaxHealthPath {
		return fmt.Errorf("%d bytes; at most %d", len(p), MaxHealthPath)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return fmt.Errorf("byte %d (0x%02x) may not be in a path: visible ASCII without # only; percent-encode it", i, c)
		}
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return fmt.Errorf("%q is not a valid path and query", truncate(p))
	}
	return nil
}
