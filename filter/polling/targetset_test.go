package polling

import (
	"strings"
	"testing"

	"switchyard/internal/pluginconfig"
)

// Version 3 answers carry a target-set string per name: a valid set is kept as it
// came (routers read it), an invalid one refuses the whole answer, naming the name.
func TestAnswerTargetSets(t *testing.T) {
	a, err := ParseAnswer([]byte(`{"kind":"full","lineage":"L","revision":4,"routes":{` +
		`"one":"10.0.0.1:80","shop":"*10.0.0.1:9101/90,10.0.0.2:9102/10/d,[::1]:9103/0/x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := pairs(a.Routes); len(r) != 2 || r[1] != [2]string{"shop", "*10.0.0.1:9101/90,10.0.0.2:9102/10/d,[::1]:9103/0/x"} {
		t.Fatalf("routes %q", r)
	}
	for set, want := range map[string]string{
		"*10.0.0.1/1,10.0.0.1/2": "appears twice",
		"*10.0.0.1/101":          "not address/weight",
		"*10.0.0.1/1":            "plain address",
		"*bad host/1,b/1":        "target 1: address",
		"*":                      "no targets",
	} {
		_, err := ParseAnswer([]byte(`{"kind":"delta","lineage":"L","from":3,"revision":4,"upserts":{"shop":"` + set + `"},"removals":[]}`))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "shop") {
			t.Errorf("set %q: %v, want an error naming shop and %q", set, err, want)
		}
	}
}

// A registrar from before target sets refuses v=3 with a 400 naming v; the poller
// then asks version 2 and keeps routing (one target per name).
func TestPollerFallsBackToVersion2(t *testing.T) {
	h := newFakeHost()
	m := New(pluginconfig.Default().Registrar, Identity{}, h, 1)
	m.Tick(1)
	if q := h.lastQuery(t); q.Get("v") != "3" {
		t.Fatalf("first poll asks v=%q, want 3", q.Get("v"))
	}
	// What a version-2 registrar answers to v=3 (registrar/server/routes.go before target sets).
	m.Answer(2, Reply{Status: "400", Body: []byte(`{"result":{"error":"v: the protocol version must be 2, or absent for version 1 (got \"3\")"}}` + "\n")})
	if q := h.lastQuery(t); q.Get("v") != "2" || len(h.sent) != 2 {
		t.Fatalf("after the refusal: %d polls, last v=%q; want a second poll asking v=2", len(h.sent), q.Get("v"))
	}
	if h.countLogs("does not serve sync protocol 3") != 1 {
		t.Fatalf("logs %q", h.logs)
	}
	// Any other 400 is a failure as before, and the version stays.
	m.Answer(3, Reply{Status: "400", Body: []byte(`{"result":{"error":"after: not a number"}}`)})
	if h.fail == 0 || h.countLogs("HTTP 400") == 0 {
		t.Fatalf("another 400: fail %d, logs %q", h.fail, h.logs)
	}
}
