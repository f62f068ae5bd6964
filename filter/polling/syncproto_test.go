//go:build !wasm

package polling

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"

	"switchyard/internal/contract"
	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/proc"
)

// TestRegistrarAnswersThroughTheParser runs the real registrar (bin/registrar on
// loopback, its real encoder) and feeds each answer it gives to the polls a Machine
// sends through ParseAnswer and the Machine, for every answer kind: full pages with
// "next", the last page, 304, a delta, and 410 snapshot_gone. Both sides name the
// fields from internal/contract; this test fails when they drift apart.
func TestRegistrarAnswersThroughTheParser(t *testing.T) {
	const n = 250 // about 13 KiB of routes: four pages at the smallest page size
	data := filepath.Join(t.TempDir(), "servers.json")
	apitest.WriteData(t, data, n)
	reg := proc.StartRegistrar(t, "-data", data, "-allow-cidr", "127.0.0.0/8,10.0.0.0/8", "-page-bytes", "4096")
	// The revision it serves: n, or above it when the start makes the hand-written data
	// a new history (no lock record of it), which starts above the highest revision.
	var health struct{ Revision uint64 }
	if resp, err := http.Get(reg.URL() + "/healthz"); err != nil {
		t.Fatal(err)
	} else {
		json.NewDecoder(resp.Body).Decode(&health)
		resp.Body.Close()
	}
	rev := health.Revision
	if rev < n {
		t.Fatalf("the registrar serves revision %d of data written at %d", rev, n)
	}

	want := map[string]string{}
	for i := range n {
		want[apitest.ScaleName(i)] = apitest.ScaleTarget(i)
	}
	cfg := testCfg
	cfg.WaitSeconds = 0 // an unchanged table answers 304 at once
	h := newFakeHost()
	m := New(cfg, Identity{Proxy: "edge-1", Cluster: "eu", Version: "v9"}, h, 1)
	now := int64(1)
	m.Tick(now)

	// answer gives the registrar's answer to path, as the glue reads it.
	answer := func(path string) Reply {
		t.Helper()
		resp, err := http.Get(reg.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return Reply{Status: strconv.Itoa(resp.StatusCode), Body: body}
	}
	// poll answers m's last poll with the registrar's answer to it, and returns it.
	poll := func(path string) Reply {
		t.Helper()
		r := answer(path)
		now += sec
		m.Answer(now, r)
		return r
	}
	lastPath := func() string {
		t.Helper()
		if len(h.sent) == 0 {
			t.Fatal("no poll was sent")
		}
		return h.sent[len(h.sent)-1]
	}

	// The full table, page by page: every page but the last names the next one.
	var lineage string
	pages := 0
	for {
		path := lastPath()
		r := poll(path)
		if r.Status != "200" {
			t.Fatalf("GET %s: %s %s", path, r.Status, r.Body)
		}
		a, err := ParseAnswer(r.Body)
		if err != nil {
			t.Fatalf("page %d does not parse: %v\n%s", pages, err, r.Body)
		}
		pages++
		if a.Kind != Full || a.V1 || a.Revision != rev || !ValidLineage(a.Lineage) || a.Routes.Len() == 0 {
			t.Fatalf("page %d: kind %d v1 %v revision %d lineage %q, %d routes", pages, a.Kind, a.V1, a.Revision, a.Lineage, a.Routes.Len())
		}
		lineage = a.Lineage
		for _, rt := range pairs(a.Routes) {
			if want[rt[0]] != rt[1] {
				t.Fatalf("page %d holds %s → %s, registered %q", pages, rt[0], rt[1], want[rt[0]])
			}
		}
		if a.Next == "" {
			break
		}
		if q := h.lastQuery(t); q.Get(contract.QuerySnapshot) != strconv.FormatUint(rev, 10) || q.Get(contract.QueryStart) != a.Next {
			t.Fatalf("after a page with next %q the Machine asks %s", a.Next, lastPath())
		}
	}
	if pages < 3 {
		t.Fatalf("the table came in %d pages, want at least 3 (a first, a middle and a last)", pages)
	}
	if got := h.routes(); !maps.Equal(got, want) {
		t.Fatalf("after the last page shared data holds %d routes, want the %d registered", len(got), len(want))
	}
	if m.Revision() != rev || m.Lineage() != lineage {
		t.Fatalf("the Machine holds revision %d lineage %q, want %d %q", m.Revision(), m.Lineage(), rev, lineage)
	}

	// Nothing changed: 304, no body.
	q := h.lastQuery(t)
	if q.Get(contract.QueryAfter) != strconv.FormatUint(rev, 10) || q.Get(contract.QueryLineage) != lineage {
		t.Fatalf("with the table loaded the Machine asks %s", lastPath())
	}
	okBefore := h.ok
	if r := poll(lastPath()); r.Status != "304" || len(r.Body) != 0 {
		t.Fatalf("an unchanged table answered %s %q, want 304 and no body", r.Status, r.Body)
	}
	if h.ok != okBefore+1 || m.Revision() != rev {
		t.Fatalf("the 304 counted %d successes, revision %d", h.ok-okBefore, m.Revision())
	}

	// One registration and one removal: a delta from rev to rev+2.
	added, addedTarget := "added.pods.example", "127.0.0.1:9"
	removed := apitest.ScaleName(7)
	apitest.Register(t, reg.URL(), added, addedTarget, "scale")
	if r := apitest.Call(t, "DELETE", reg.URL()+"/api/servers/"+removed, ""); r.Code != http.StatusOK {
		t.Fatalf("DELETE %s: %d %s", removed, r.Code, r.Body)
	}
	r := poll(lastPath())
	a, err := ParseAnswer(r.Body)
	if r.Status != "200" || err != nil {
		t.Fatalf("the poll after two changes: %s %v\n%s", r.Status, err, r.Body)
	}
	if a.Kind != Delta || a.Lineage != lineage || a.From != rev || a.Revision != rev+2 ||
		a.Routes.Len() != 1 || pairs(a.Routes)[0] != [2]string{added, addedTarget} ||
		len(a.Removals) != 1 || a.Removals[0] != removed {
		t.Fatalf("the delta parsed as %+v", a)
	}
	want[added] = addedTarget
	delete(want, removed)
	if got := h.routes(); !maps.Equal(got, want) || m.Revision() != rev+2 {
		t.Fatalf("after the delta shared data holds %d routes at revision %d, want %d at %d", len(got), m.Revision(), len(want), rev+2)
	}

	// A page of a revision the registrar no longer holds: 410 snapshot_gone. A second
	// Machine takes the first page of revision rev+2; the registrar moves on to rev+3 and
	// restarts, so that nothing pins revision rev+2 any more; the second page's answer
	// makes the Machine start over with a full table.
	h2 := newFakeHost()
	m2 := New(cfg, Identity{}, h2, now)
	m2.Tick(now)
	r = answer(h2.sent[len(h2.sent)-1])
	if a, err := ParseAnswer(r.Body); r.Status != "200" || err != nil || a.Revision != rev+2 || a.Next == "" {
		t.Fatalf("the first page of revision %d: %s %v %+v", rev+2, r.Status, err, a)
	}
	m2.Answer(now, r)
	apitest.Register(t, reg.URL(), "later.pods.example", "127.0.0.1:9", "scale")
	reg.Restart()
	page2 := h2.sent[len(h2.sent)-1]
	r = answer(page2)
	var fields map[string]string
	if err := json.Unmarshal(r.Body, &fields); r.Status != "410" || err != nil ||
		fields[contract.AnswerError] != contract.SnapshotGone || fields[contract.AnswerMessage] == "" {
		t.Fatalf("GET %s (a revision no longer held): %s %v %s", page2, r.Status, err, r.Body)
	}
	failed := h2.fail
	m2.Answer(now, r)
	if h2.fail != failed+1 || h2.countLogs(contract.SnapshotGone) != 1 {
		t.Fatalf("the Machine took 410 as %d failures, logs %q", h2.fail-failed, h2.logs)
	}
	m2.Tick(now + 60*sec) // past any backoff
	if q := h2.lastQuery(t); q.Has(contract.QuerySnapshot) || q.Has(contract.QueryAfter) {
		t.Fatalf("after 410 the Machine asks %s, want a full table from the start", h2.sent[len(h2.sent)-1])
	}
}
