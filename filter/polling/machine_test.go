package polling

import (
	"errors"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"switchyard/internal/pluginconfig"
)

// fakeHost is shared data in a map plus a record of what the Machine asked the host
// to do. Set fails once budget writes have been made (budget < 0: never), as a sync
// VM that dies there, or a host that refuses a write.
type fakeHost struct {
	kv       map[string]string
	budget   int
	sent     []string // :path of every dispatched poll
	refuse   error    // Dispatch's answer
	logs     []string
	ok, fail int
	size     int
	revision uint64
}

var errDied = errors.New("the sync died here")

func newFakeHost() *fakeHost { return &fakeHost{kv: map[string]string{}, budget: -1} }

func (h *fakeHost) Get(key string) ([]byte, bool) {
	v, ok := h.kv[key]
	return []byte(v), ok
}

func (h *fakeHost) Peek(key string) (string, bool) {
	v, ok := h.kv[key]
	return v, ok
}

func (h *fakeHost) Set(key, value string) error {
	if h.budget == 0 {
		return errDied
	}
	if h.budget > 0 {
		h.budget--
	}
	h.kv[strings.Clone(key)] = strings.Clone(value) // the Machine passes views of reused buffers
	return nil
}

func (h *fakeHost) Dispatch(headers [][2]string, _ uint32) error {
	if h.refuse != nil {
		return h.refuse
	}
	for _, p := range headers {
		if p[0] == ":path" {
			h.sent = append(h.sent, p[1])
		}
	}
	return nil
}

func (h *fakeHost) Log(warn bool, msg string) {
	lvl := "info: "
	if warn {
		lvl = "warn: "
	}
	h.logs = append(h.logs, lvl+msg)
}
func (h *fakeHost) Count(ok bool) {
	if ok {
		h.ok++
	} else {
		h.fail++
	}
}
func (h *fakeHost) Gauges(size int, revision uint64) { h.size, h.revision = size, revision }

// routes is the table routers see: every non-empty route key of the generation
// CurrentKey names.
func (h *fakeHost) routes() map[string]string {
	out := map[string]string{}
	prefix, ok := h.kv[CurrentKey]
	if !ok {
		return out
	}
	for k, v := range h.kv {
		if name, ok := strings.CutPrefix(k, prefix); ok && v != "" && !strings.Contains(name, "/") {
			out[name] = v
		}
	}
	return out
}

// lastQuery is the query of the last poll sent.
func (h *fakeHost) lastQuery(t *testing.T) url.Values {
	t.Helper()
	if len(h.sent) == 0 {
		t.Fatal("no poll was sent")
	}
	_, q, _ := strings.Cut(h.sent[len(h.sent)-1], "?")
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (h *fakeHost) countLogs(substr string) int {
	n := 0
	for _, l := range h.logs {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

var testCfg = pluginconfig.RegistrarConfig{Cluster: "registrar", Authority: "registrar", Path: "/v1/routes", WaitSeconds: 30}

const sec = int64(1e9)

// started gives a Machine on h that has sent its first poll.
func started(t *testing.T, h *fakeHost) *Machine {
	t.Helper()
	m := New(testCfg, Identity{Proxy: "edge-1", Cluster: "eu", Version: "v9"}, h, 1)
	m.Tick(0)
	if len(h.sent) != 1 {
		t.Fatalf("the first tick sent %d polls, want 1", len(h.sent))
	}
	return m
}

func ok(body string) Reply { return Reply{Status: "200", Body: []byte(body)} }

func full(lineage string, rev uint64, routes map[string]string, next string) Reply {
	names := sort.StringSlice(slicesOf(routes))
	names.Sort()
	var b strings.Builder
	b.WriteString(`{"kind":"full","lineage":"` + lineage + `","revision":` + strconv.FormatUint(rev, 10) + `,"routes":{`)
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + n + `":"` + routes[n] + `"`)
	}
	b.WriteString("}")
	if next != "" {
		b.WriteString(`,"next":"` + next + `"`)
	}
	b.WriteString("}")
	return ok(b.String())
}

func delta(lineage string, from, rev uint64, upserts map[string]string, removals ...string) Reply {
	var b strings.Builder
	b.WriteString(`{"kind":"delta","lineage":"` + lineage + `","from":` + strconv.FormatUint(from, 10) +
		`,"revision":` + strconv.FormatUint(rev, 10) + `,"upserts":{`)
	i := 0
	for n, t := range upserts {
		if i > 0 {
			b.WriteByte(',')
		}
		i++
		b.WriteString(`"` + n + `":"` + t + `"`)
	}
	b.WriteString(`},"removals":[`)
	for i, n := range removals {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + n + `"`)
	}
	b.WriteString("]}")
	return ok(b.String())
}

func slicesOf(m map[string]string) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return s
}

func TestPathAndHeaders(t *testing.T) {
	h := newFakeHost()
	m := New(pluginconfig.RegistrarConfig{Cluster: "c", Authority: "reg.internal", Path: "/v1/routes", WaitSeconds: 30, Token: "s3cret"},
		Identity{Proxy: "sidecar~10.0.0.1~a&b=c", Cluster: "eu west", Version: "v1.2.3"}, h, 1)
	if got, want := m.Path(), "/v1/routes?v=3&wait=30&proxy=sidecar~10.0.0.1~a%26b%3Dc&cluster=eu+west&version=v1.2.3"; got != want {
		t.Errorf("before the first table: %q, want %q", got, want)
	}
	m.Tick(0)
	m.Answer(0, full("L1", 41, map[string]string{"a": "10.0.0.1"}, ""))
	if got, want := h.sent[len(h.sent)-1], "/v1/routes?v=3&after=41&lineage=L1&wait=30&proxy=sidecar~10.0.0.1~a%26b%3Dc&cluster=eu+west&version=v1.2.3"; got != want {
		t.Errorf("at revision 41: %q, want %q", got, want)
	}
	want := [][2]string{{":method", "GET"}, {":path", m.Path()}, {":authority", "reg.internal"}, {"accept", "application/json"}, {"authorization", "Bearer s3cret"}}
	if got := m.Headers(); !reflect.DeepEqual(got, want) {
		t.Errorf("headers %q, want %q", got, want)
	}
	m2 := New(testCfg, Identity{}, newFakeHost(), 1)
	if got := m2.Path(); got != "/v1/routes?v=3&wait=30" {
		t.Errorf("no identity: %q", got)
	}
	if len(m2.Headers()) != 4 {
		t.Errorf("headers without a token: %q", m2.Headers())
	}
}

// TestAnswers: how each kind of reply is classified, what it does to the table, the
// counters and the next poll.
func TestAnswers(t *testing.T) {
	base := map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"}
	tests := []struct {
		name      string
		reply     Reply
		wantTable map[string]string
		wantRev   uint64
		wantOK    bool   // counted as success (else failure)
		wantLog   string // a line containing this
		nextQuery string // a parameter of the next poll, "" when the retry waits for the backoff
	}{
		{"304 keeps and polls at once", Reply{Status: "304"}, base, 5, true, "", "after=5"},
		{"delta applied", delta("L1", 5, 7, map[string]string{"c": "10.0.0.3", "a": "10.0.0.9"}, "b"),
			map[string]string{"a": "10.0.0.9", "c": "10.0.0.3"}, 7, true, "3 servers"[0:0] + "2 servers (1 added, 1 changed, 1 removed) from a delta", "after=7"},
		{"delta removing an unknown name", delta("L1", 5, 6, nil, "zz"), base, 6, true, "(0 added, 0 changed, 0 removed)", "after=6"},
		{"delta from another revision refused", delta("L1", 4, 7, map[string]string{"c": "10.0.0.3"}),
			base, 5, false, "refused a delta to revision 7 because it starts at revision 4, the live table is at 5; asking for a full table", ""},
		{"delta of another lineage refused", delta("L2", 5, 7, map[string]string{"c": "10.0.0.3"}),
			base, 5, false, "because it is of lineage L2, the live table of L1", ""},
		{"delta with a bad entry refused whole", ok(`{"kind":"delta","lineage":"L1","from":5,"revision":6,"upserts":{"c":"10.0.0.3","bad name":"10.0.0.4"},"removals":[]}`),
			base, 5, false, `invalid route table (server name "bad name" is invalid`, ""},
		{"delta naming a server twice refused", ok(`{"kind":"delta","lineage":"L1","from":5,"revision":6,"upserts":{"c":"10.0.0.3"},"removals":["c"]}`),
			base, 5, false, "server name c appears twice", ""},
		{"full table of the same lineage", full("L1", 9, map[string]string{"a": "10.0.0.1", "d": "[::1]:9"}, ""),
			map[string]string{"a": "10.0.0.1", "d": "[::1]:9"}, 9, true, "2 servers (2 before) from a full table", "after=9"},
		{"older full table of the same lineage ignored", full("L1", 3, map[string]string{"x": "10.0.0.7"}, ""),
			base, 5, false, "ignored the registrar's table at revision 3, older than the live revision 5 of the same lineage", ""},
		{"full table of another lineage taken whatever its revision", full("L2", 2, map[string]string{"x": "10.0.0.7"}, ""),
			map[string]string{"x": "10.0.0.7"}, 2, true, "the registrar's history changed (lineage L1 at revision 5 → lineage L2 at revision 2)", "lineage=L2"},
		{"version-1 answer", ok(`{"revision":8,"routes":{"a":"10.0.0.1","b":"10.0.0.5"}}`),
			map[string]string{"a": "10.0.0.1", "b": "10.0.0.5"}, 8, true, "2 servers (2 before) from a full table", "after=8"},
		{"garbage", ok(`<html>502`), base, 5, false, "invalid route table (body is not valid JSON)", ""},
		{"500", Reply{Status: "500", Body: []byte("database is locked")}, base, 5, false, "answered HTTP 500 instead of 200 or 304", ""},
		{"400 names the parameter", Reply{Status: "400", Body: []byte(`{"error":"bad after"}`)}, base, 5, false, `answered HTTP 400 instead of 200 or 304 ("{\"error\":\"bad after\"}")`, ""},
		{"401", Reply{Status: "401"}, base, 5, false, "refused the poll with HTTP 401; check registrar.token", ""},
		{"no answer", Reply{Failed: &CallFailure{Status: "reset"}}, base, 5, false,
			"the poll to cluster 'registrar' failed without an answer (host status: reset): the registrar could not be reached, the connection was reset or timed out, or the answer was larger than the proxy's buffer limit", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost()
			m := started(t, h)
			m.Answer(0, full("L1", 5, base, ""))
			okBefore, sentBefore := h.ok, len(h.sent)
			m.Answer(sec, tt.reply)
			if got := h.routes(); !reflect.DeepEqual(got, tt.wantTable) {
				t.Errorf("routers see %v, want %v", got, tt.wantTable)
			}
			if m.Revision() != tt.wantRev || h.kv[RevisionKey] != strconv.FormatUint(tt.wantRev, 10) || h.revision != tt.wantRev || h.size != len(tt.wantTable) {
				t.Errorf("revision %d (key %q, gauge %d, size gauge %d), want %d with %d names", m.Revision(), h.kv[RevisionKey], h.revision, h.size, tt.wantRev, len(tt.wantTable))
			}
			if gotOK := h.ok > okBefore; gotOK != tt.wantOK || !tt.wantOK && h.fail != 1 {
				t.Errorf("counted success %v (failures %d), want success %v", gotOK, h.fail, tt.wantOK)
			}
			if tt.wantLog != "" && h.countLogs(tt.wantLog) != 1 {
				t.Errorf("no log line with %q:\n%s", tt.wantLog, strings.Join(h.logs, "\n"))
			}
			if tt.nextQuery != "" {
				if len(h.sent) != sentBefore+1 || !strings.Contains(h.sent[len(h.sent)-1], tt.nextQuery) {
					t.Errorf("next poll %q, want one at once with %s", h.sent[sentBefore:], tt.nextQuery)
				}
				return
			}
			if len(h.sent) != sentBefore {
				t.Fatalf("a failure sent a poll at once: %q", h.sent[sentBefore:])
			}
			m.Tick(sec + 500*int64(1e6)) // the first backoff is 750–1000 ms
			if len(h.sent) != sentBefore {
				t.Fatalf("retried before the backoff")
			}
			m.Tick(2 * sec)
			if len(h.sent) != sentBefore+1 {
				t.Fatalf("no retry after the backoff")
			}
		})
	}
}

// TestRefusedDeltaFallsBackToFull: after a refused delta the next poll asks for a
// full table (no after, no lineage), and the full table repairs the table.
func TestRefusedDeltaFallsBackToFull(t *testing.T) {
	h := newFakeHost()
	m := started(t, h)
	m.Answer(0, full("L1", 5, map[string]string{"a": "10.0.0.1"}, ""))
	m.Answer(0, delta("L1", 3, 6, map[string]string{"b": "10.0.0.2"}))
	m.Tick(2 * sec)
	q := h.lastQuery(t)
	if q.Has("after") || q.Has("lineage") || q.Get("v") != "3" {
		t.Fatalf("poll after a refused delta %q, want a full table (no after, no lineage)", h.sent[len(h.sent)-1])
	}
	m.Answer(2*sec, full("L1", 6, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"}, ""))
	if q := h.lastQuery(t); q.Get("after") != "6" || q.Get("lineage") != "L1" {
		t.Errorf("after the full table the poll is %q", h.sent[len(h.sent)-1])
	}
	if got := h.routes(); len(got) != 2 {
		t.Errorf("routers see %v", got)
	}
	if h.countLogs("answers again after 1 failed polls") != 1 {
		t.Errorf("no recovery line:\n%s", strings.Join(h.logs, "\n"))
	}
}

// TestPagesStreamedUnseen: the pages of a full table are asked one after the other
// with snapshot= and start=, each written into the generation routers do not read
// (what routers see does not change until the last page), and the table routers then
// see is exactly the one of that revision, switched by one write of CurrentKey.
func TestPagesStreamedUnseen(t *testing.T) {
	h := newFakeHost()
	m := started(t, h)
	m.Answer(0, full("L1", 3, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2", "z": "10.0.0.26"}, ""))
	if h.kv[CurrentKey] != "switchyard/a/route/" {
		t.Fatalf("current %q after the first table", h.kv[CurrentKey])
	}
	before := h.routes()
	// A new lineage's table in three pages.
	m.Answer(0, full("L2", 40, map[string]string{"a": "10.0.0.1", "b": "10.0.0.9"}, "c"))
	if q := h.lastQuery(t); q.Get("snapshot") != "40" || q.Get("start") != "c" || q.Has("after") {
		t.Fatalf("page request %q", h.sent[len(h.sent)-1])
	}
	if h.kv["switchyard/b/route/b"] != "10.0.0.9" || h.kv["switchyard/b/state"] != "loading 40 L2 2 c" {
		t.Fatalf("the first page was not streamed into generation b: %q %q", h.kv["switchyard/b/route/b"], h.kv["switchyard/b/state"])
	}
	m.Answer(0, full("L2", 40, map[string]string{"c": "10.0.0.3", "d": "10.0.0.4"}, "e"))
	if !maps.Equal(h.routes(), before) || !m.Assembling() {
		t.Fatalf("routers saw a page before the last one arrived: %v", h.routes())
	}
	m.Answer(0, full("L2", 40, map[string]string{"e": "10.0.0.5"}, ""))
	want := map[string]string{"a": "10.0.0.1", "b": "10.0.0.9", "c": "10.0.0.3", "d": "10.0.0.4", "e": "10.0.0.5"}
	if got := h.routes(); !maps.Equal(got, want) || h.kv[CurrentKey] != "switchyard/b/route/" {
		t.Errorf("routers see %v (current %q), want %v", got, h.kv[CurrentKey], want)
	}
	if m.Revision() != 40 || m.Lineage() != "L2" || h.kv["switchyard/b/state"] != "live 40 L2 5 5" || h.kv["switchyard/a/state"] != "retired" {
		t.Errorf("revision %d lineage %q table keys b %q a %q", m.Revision(), m.Lineage(), h.kv["switchyard/b/state"], h.kv["switchyard/a/state"])
	}
	if h.countLogs("5 servers (3 before) from a full table in 3 pages") != 1 {
		t.Errorf("logs:\n%s", strings.Join(h.logs, "\n"))
	}
	// The old generation is left alone for the grace, then emptied.
	m.Tick(RetireGraceSeconds * sec / 2)
	if h.kv["switchyard/a/route/z"] != "10.0.0.26" {
		t.Fatalf("generation a was emptied within its grace")
	}
	m.Tick(RetireGraceSeconds * sec)
	for k, v := range h.kv {
		if strings.HasPrefix(k, "switchyard/a/") && v != "" {
			t.Errorf("after the grace generation a still holds %s = %q", k, v)
		}
	}
	if m.Emptying() {
		t.Errorf("still emptying")
	}
}

func TestPageRefusals(t *testing.T) {
	tests := []struct {
		name  string
		reply Reply
		log   string
	}{
		{"other revision", full("L1", 41, map[string]string{"m": "10.0.0.3"}, ""), "a page of the full table is of revision 41"},
		{"other lineage", full("L9", 40, map[string]string{"m": "10.0.0.3"}, ""), "lineage L9"},
		{"before start", full("L1", 40, map[string]string{"a": "10.0.0.3"}, ""), "starts at a, before the name m"},
		{"version-1 answer", ok(`{"revision":40,"routes":{"m":"10.0.0.3"}}`), "a page of the full table is of revision 40 lineage (none"},
		{"delta", delta("L1", 39, 40, nil), "a delta to a page request"},
		{"304", Reply{Status: "304"}, "304 to a page request"},
		{"invalid", ok(`{"kind":"full","lineage":"L1","revision":40,"routes":{"n":"10.0.0.1","m":"10.0.0.2"}}`), "out of byte order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost()
			m := started(t, h)
			m.Answer(0, full("L1", 40, map[string]string{"a": "10.0.0.1"}, "m"))
			m.Answer(0, tt.reply)
			if m.Assembling() || m.Loaded() || len(h.routes()) != 0 || h.fail != 1 {
				t.Errorf("assembling %v loaded %v routes %v failures %d", m.Assembling(), m.Loaded(), h.routes(), h.fail)
			}
			if h.countLogs(tt.log) != 1 || h.countLogs("starting the full table over") != 1 {
				t.Errorf("no line with %q:\n%s", tt.log, strings.Join(h.logs, "\n"))
			}
			m.Tick(2 * sec)
			if q := h.lastQuery(t); q.Has("snapshot") || q.Has("after") {
				t.Errorf("the retry %q does not start the full table over", h.sent[len(h.sent)-1])
			}
		})
	}
}

// TestPageFailureRetriesThePage: a page lost to a failure is asked again after the
// backoff; 410 snapshot_gone starts over.
func TestPageFailureRetriesThePage(t *testing.T) {
	h := newFakeHost()
	m := started(t, h)
	m.Answer(0, full("L1", 40, map[string]string{"a": "10.0.0.1"}, "m"))
	m.Answer(0, Reply{Status: "503"})
	m.Tick(2 * sec)
	if q := h.lastQuery(t); q.Get("snapshot") != "40" || q.Get("start") != "m" {
		t.Fatalf("retry %q, want the same page", h.sent[len(h.sent)-1])
	}
	m.Answer(2*sec, Reply{Status: "410", Body: []byte(`{"error":"snapshot_gone"}`)})
	if m.Assembling() || h.countLogs("410 snapshot_gone") != 1 {
		t.Fatalf("410 did not start over:\n%s", strings.Join(h.logs, "\n"))
	}
	m.Tick(10 * sec)
	if q := h.lastQuery(t); q.Has("snapshot") {
		t.Fatalf("after 410 the poll is %q", h.sent[len(h.sent)-1])
	}
	m.Answer(10*sec, full("L1", 44, map[string]string{"a": "10.0.0.1"}, ""))
	if m.Revision() != 44 || len(h.routes()) != 1 {
		t.Errorf("revision %d routes %v", m.Revision(), h.routes())
	}
}

// TestLogOnceAndBackoff: a registrar down for many polls gives one line, the retries
// follow the backoff (doubling to 30 s), a failure of another kind logs again, and a
// success says so once.
func TestLogOnceAndBackoff(t *testing.T) {
	h := newFakeHost()
	m := started(t, h)
	m.Answer(0, full("L1", 1, map[string]string{"a": "10.0.0.1"}, ""))
	now := int64(0)
	var gaps []int64
	for i := 0; i < 8; i++ {
		m.Answer(now, Reply{Failed: &CallFailure{Status: "reset"}})
		gaps = append(gaps, m.DueAt()-now)
		now = m.DueAt()
		m.Tick(now)
	}
	if n := h.countLogs("failed without an answer"); n != 1 {
		t.Errorf("%d lines for 8 failures, want 1", n)
	}
	if h.fail != 8 {
		t.Errorf("switchyard.sync.failure %d, want 8", h.fail)
	}
	for i, base := range []int64{1, 2, 4, 8, 16, 30, 30, 30} {
		if g := gaps[i] / 1e6; g > base*1000 || g < base*750 {
			t.Errorf("retry %d after %d ms, want %d s less up to 25%%", i+1, g, base)
		}
	}
	m.Answer(now, Reply{Status: "500"})
	if h.countLogs("answered HTTP 500") != 1 {
		t.Errorf("a new kind of failure was not logged")
	}
	m.Answer(now, Reply{Status: "304"})
	m.Answer(now, Reply{Status: "304"})
	if h.countLogs("answers again after 9 failed polls") != 1 || h.ok != 3 {
		t.Errorf("success lines/counts wrong (ok %d):\n%s", h.ok, strings.Join(h.logs, "\n"))
	}
}

// TestLostPollGivenUp: a poll the host never answers is given up after its timeout
// plus the margin, counted, and retried.
func TestLostPollGivenUp(t *testing.T) {
	h := newFakeHost()
	m := started(t, h)
	m.Tick(44 * sec) // wait 30 + 10 + 5: not yet
	if h.fail != 0 || len(h.sent) != 1 {
		t.Fatalf("gave up too early")
	}
	m.Tick(46 * sec)
	if h.fail != 1 || h.countLogs("no answer, not even a timeout, within 45 s") != 1 {
		t.Fatalf("lost poll not given up:\n%s", strings.Join(h.logs, "\n"))
	}
	m.Tick(48 * sec)
	if len(h.sent) != 2 {
		t.Errorf("no retry after a lost poll")
	}
}

func TestDispatchRefused(t *testing.T) {
	h := newFakeHost()
	h.refuse = errors.New("bad argument")
	m := New(testCfg, Identity{}, h, 1)
	m.Tick(0)
	m.Tick(0)
	if h.fail != 1 || h.countLogs("refused the poll to cluster 'registrar' (bad argument)") != 1 {
		t.Errorf("failures %d logs:\n%s", h.fail, strings.Join(h.logs, "\n"))
	}
	// The line says what the cluster is called where the name is not obvious: Envoy
	// Gateway with mergeBackends names it by Service, not by route.
	if h.countLogs("service/<namespace>/<service>/<port>/http with EnvoyProxy mergeBackends") != 1 {
		t.Errorf("the refusal does not say Envoy Gateway's mergeBackends cluster name:\n%s", strings.Join(h.logs, "\n"))
	}
}

// TestEmptyTableAtRevisionZero: a new registrar's empty table (revision 0) is a table
// like any other: the next poll asks for what is newer than revision 0 of its lineage
// (the registrar holds it), not for a full table, which would loop without pause.
func TestEmptyTableAtRevisionZero(t *testing.T) {
	h := newFakeHost()
	m := started(t, h)
	m.Answer(0, full("L", 0, nil, ""))
	if !m.Loaded() || h.kv[RevisionKey] != "0" {
		t.Fatalf("loaded %v, revision key %q", m.Loaded(), h.kv[RevisionKey])
	}
	if q := h.lastQuery(t); q.Get("after") != "0" || q.Get("lineage") != "L" || q.Get("wait") != "30" {
		t.Errorf("poll after the empty table: %q", h.sent[len(h.sent)-1])
	}
}

// TestPolledKeyIsLastSuccess: every successful poll (a table, a 304) writes its host
// time to PolledKey; a failed one leaves the time of the last success, so routers see
// the table's age grow.
func TestPolledKeyIsLastSuccess(t *testing.T) {
	h := newFakeHost()
	m := New(testCfg, Identity{}, h, 1)
	m.Tick(0)
	if _, ok := h.kv[PolledKey]; ok {
		t.Fatal("PolledKey written before any answer")
	}
	m.Answer(1_000, full("L", 1, map[string]string{"a": "10.0.0.1"}, ""))
	if h.kv[PolledKey] != "1000" {
		t.Fatalf("after a table: %q, want 1000", h.kv[PolledKey])
	}
	m.Answer(2_000, Reply{Status: "304"})
	if h.kv[PolledKey] != "2000" {
		t.Fatalf("after a 304: %q, want 2000", h.kv[PolledKey])
	}
	m.Answer(3_000, Reply{Status: "500"})
	if h.kv[PolledKey] != "2000" {
		t.Fatalf("after a failure: %q, want 2000 still", h.kv[PolledKey])
	}
}

// registrar.token_env: the token is read from the VM's environment when the sync
// starts and sent on every poll; a variable that is not set is said once.
func TestTokenFromEnvironment(t *testing.T) {
	cfg := testCfg
	cfg.TokenEnv = "SWITCHYARD_TEST_REGISTRAR_TOKEN"
	t.Setenv(cfg.TokenEnv, "proxy-secret")
	m := New(cfg, Identity{Proxy: "edge-1"}, newFakeHost(), 1)
	if !slices.Contains(m.Headers(), [2]string{"authorization", "Bearer proxy-secret"}) {
		t.Errorf("headers %v, want the token from %s", m.Headers(), cfg.TokenEnv)
	}
	t.Setenv(cfg.TokenEnv, "")
	h := newFakeHost()
	m = New(cfg, Identity{Proxy: "edge-1"}, h, 1)
	for _, hd := range m.Headers() {
		if hd[0] == "authorization" {
			t.Errorf("an empty variable still sent %v", hd)
		}
	}
	if h.countLogs("registrar.token_env names SWITCHYARD_TEST_REGISTRAR_TOKEN") != 1 {
		t.Errorf("no line about the missing variable:\n%s", strings.Join(h.logs, "\n"))
	}
}
