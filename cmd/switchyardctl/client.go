package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"switchyard/internal/registrarapi"
)

// Exit codes (README, "switchyardctl"): what a script can tell apart.
const (
	exitOK          = 0
	exitRefused     = 1 // the registrar answered with a refusal (4xx, 5xx)
	exitUsage       = 2 // the command line is wrong (nothing was sent)
	exitUnreachable = 3 // no registrar could be reached
	exitTimeout     = 4 // waited for the proxies and they had not all applied the revision
)

// exitError is a failure with the exit code it ends the command with.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageError(format string, a ...any) error {
	return &exitError{exitUsage, fmt.Sprintf(format, a...)}
}

// client calls the registrar's API on the first of its registrars that answers: a
// connection error or a 503 (a replica that cannot reach its store) moves on to the
// next one. The token is sent in the Authorization header and never shown.
type client struct {
	registrars []string
	token      string
	http       *http.Client
	verbose    io.Writer // nil: quiet; else one line per request (method, URL, status)
}

// reply is one answer of the registrar.
type reply struct {
	status int
	body   []byte
	from   string // the registrar that answered
}

// do sends one request, with failover. body nil sends none. It returns an exitError
// for no registrar reachable; any answer (also a refusal) is a reply.
func (c *client) do(method, path string, body []byte) (reply, error) {
	var tried []string
	for _, base := range c.registrars {
		r, err := c.once(base, method, path, body)
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:") {
				msg += " (an https registrar's certificate: give its CA with --ca-file)"
			}
			tried = append(tried, base+": "+msg)
			continue
		}
		if r.status == http.StatusServiceUnavailable && len(tried)+1 < len(c.registrars) {
			tried = append(tried, base+": 503 "+apiError(r.body))
			continue
		}
		return r, nil
	}
	return reply{}, &exitError{exitUnreachable, "no registrar could be reached (" + strings.Join(tried, "; ") +
		"); check --registrar (or SWITCHYARD_REGISTRAR) and that a registrar runs there"}
}

func (c *client) once(base, method, path string, body []byte) (reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(base, "/")+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the message already; the cause is what to show
		}
		c.logf("%s %s: %v", method, req.URL.Redacted(), err)
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("reading the answer: %w", err)
	}
	c.logf("%s %s: %d (%d bytes)", method, req.URL.Redacted(), resp.StatusCode, len(b))
	return reply{resp.StatusCode, b, base}, nil
}

func (c *client) logf(format string, a ...any) {
	if c.verbose != nil {
		fmt.Fprintf(c.verbose, format+"\n", a...)
	}
}

// apiError is the error sentence of an /api/ refusal, or the body itself.
func apiError(body []byte) string {
	var a registrarapi.Answer
	if json.Unmarshal(body, &a) == nil && a.Result.Error != "" {
		return a.Result.Error
	}
	var e struct{ Error, Message string }
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return e.Error + ": " + e.Message
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// call sends one /api/ request and decodes its result; a refusal is an exitError
// with the registrar's own sentence and the HTTP status.
func (c *client) call(method, path string, body any) (registrarapi.Result, reply, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return registrarapi.Result{}, reply{}, err
		}
	}
	r, err := c.do(method, path, b)
	if err != nil {
		return registrarapi.Result{}, r, err
	}
	if r.status/100 != 2 {
		return registrarapi.Result{}, r, refused(method, path, r)
	}
	var a registrarapi.Answer
	if err := json.Unmarshal(r.body, &a); err != nil {
		return registrarapi.Result{}, r, &exitError{exitRefused, fmt.Sprintf("%s %s: the answer of %s is not the API's JSON (%v); is --registrar the registrar's address?", method, path, r.from, err)}
	}
	return a.Result, r, nil
}

func refused(method, path string, r reply) error {
	hint := ""
	msg := apiError(r.body)
	switch {
	case r.status == http.StatusUnauthorized:
		hint = " (give the registrar's token with --token-file or SWITCHYARD_TOKEN)"
	case strings.Contains(msg, "allowNoActive=true"):
		hint = " (switchyardctl: --allow-no-active)"
	}
	return &exitError{exitRefused, fmt.Sprintf("%s %s: %d %s: %s%s", method, path, r.status, http.StatusText(r.status), msg, hint)}
}

// serverPath is /api/servers/NAME[/targets[/ADDRESS]], each part escaped.
func serverPath(name string, rest ...string) string {
	p := "/api/servers/" + url.PathEscape(name)
	for _, s := range rest {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// timeoutFor is the HTTP client's timeout: a write that waits for the proxies may
// take up to its own timeout (at most 60 s) plus the write.
func timeoutFor(wait time.Duration) time.Duration { return wait + 30*time.Second }
