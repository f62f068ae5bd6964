package server

import (
	"net/http"
)

// listProxies is GET /api/proxies: every proxy this registrar replica has seen poll
// (sync protocol 2 with proxy=), with its state against the current table. See
// README, "Which proxies have applied which revision".
func (a *api) listProxies(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	t := a.store.Current()
	rev, lineage := t.Revision(), a.store.Lineage()
	views, sum := a.proxies.list(rev, lineage)
	writeResult(w, http.StatusOK, result{Success: true, Revision: &rev, Lineage: lineage, Replica: a.proxies.replicaName(), Summary: &sum, Proxies: &views})
}
