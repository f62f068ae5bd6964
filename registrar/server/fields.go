package server

import (
	"errors"
	"fmt"

	"switchyard/internal/validate"
)

// reservedName cannot be a server name: /api/servers/register is the
// registration endpoint (kept from the Lua setup, docs/origin.md), so a server of that name could be created but never read,
// replaced or deleted by its own path.
const reservedName = "register"

// fieldError is a refusal that names the field at fault.
type fieldError struct {
	Field string
	Err   error
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func fieldErr(field string, err error) error { return &fieldError{field, err} }

// checkServerName applies validate.ServerName's rules (1–100 characters of
// A-Z a-z 0-9 . _ -, the name clients send in X-Server-Name) and refuses the names
// the API's paths cannot carry.
func checkServerName(name string) error {
	if err := validate.ServerName(name); err != nil {
		return fieldErr("host", fmt.Errorf("%q %v", truncate(name), err))
	}
	if name == reservedName {
		return fieldErr("host", errors.New(`"register" is reserved (it is the path of the registration endpoint); choose another name`))
	}
	if name == "." || name == ".." {
		// HTTP servers and clients clean "/api/servers/.." to "/api/", so such a
		// server could be created but never read, replaced or deleted by its path.
		return fieldErr("host", fmt.Errorf("%q is reserved (it is a path segment that URLs resolve away); choose another name", name))
	}
	return nil
}

// checkTarget applies validate.ParseAddress's rules (an IP or RFC 1123 DNS name with
// an optional port) and then the SSRF policy p.
func checkTarget(target string, p Policy) error { return checkAddress(target, p, "ipAddress") }

// checkAddress is checkTarget for an address in the field named field (ipAddress, or a
// target's address).
func checkAddress(address string, p Policy, field string) error {
	a, err := validate.ParseAddress(address)
	if err != nil {
		// validate's message already quotes the part at fault, or names a byte that
		// must not be echoed; quoting the value again would only repeat it.
		return fieldErr(field, err)
	}
	if err := p.Check(a); err != nil {
		return fieldErr(field, fmt.Errorf("refused: %v", err))
	}
	return nil
}

// checkServiceName applies validate.ServiceName (no control or format characters,
// 1–100 characters, not blank).
func checkServiceName(s string) error {
	if err := validate.ServiceName(s); err != nil {
		return fieldErr("serviceName", err)
	}
	return nil
}

// truncate keeps echoed input short in error messages.
func truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:37] + "..."
}
