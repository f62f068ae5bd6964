package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// bearer guards routes with a token: /api/ with the token (the CMS's), /v1/ with
// the proxy token when one is set, else with the token. The compare is over SHA-256
// digests in constant time, so neither the token's bytes nor its length leak through
// timing.
type bearer struct {
	digest [32]byte
	set    bool
	what   string // the token asked for in a 401's message, e.g. "the registrar's token (-token-file)"
}

func newBearer(token, what string) bearer {
	if token == "" {
		return bearer{}
	}
	return bearer{digest: sha256.Sum256([]byte(token)), set: true, what: what}
}

func (b bearer) ok(r *http.Request) bool {
	if !b.set {
		return true
	}
	scheme, cred, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
	return subtle.ConstantTimeCompare(got[:], b.digest[:]) == 1
}

// wrap answers 401 (result shape, WWW-Authenticate: Bearer) unless the request
// carries the token.
func (b bearer) wrap(next http.Handler) http.Handler {
	if !b.set {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !b.ok(r) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			// A client without the token gets no kept-alive connection to hold.
			w.Header().Set("Connection", "close")
			msg := "missing or wrong token: send the header 'Authorization: Bearer <token>' with " + b.what
			if r.Header.Get("Authorization") == "" {
				msg = "authorization required: send the header 'Authorization: Bearer <token>' with " + b.what
			}
			writeFailure(w, http.StatusUnauthorized, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}
