package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/registrar/store"
)

// syncAnswer is a decoded version-2 /v1/routes answer.
type syncAnswer struct {
	Kind     string            `json:"kind"`
	Lineage  string            `json:"lineage"`
	From     uint64            `json:"from"`
	Revision uint64            `json:"revision"`
	Routes   map[string]string `json:"routes"`
	Next     string            `json:"next"`
	Upserts  map[string]string `json:"upserts"`
	Removals []string          `json:"removals"`
	Error    string            `json:"error"`
}

// sync2 sends GET /v1/routes?v=2&<query> and decodes the answer; code is its status.
func sync2(t *testing.T, reg *testRegistrar, query string) (int, syncAnswer, int) {
	t.Helper()
	r := call(t, "GET", reg.URL+"/v1/routes?v=2&"+query, "")
	var a syncAnswer
	if r.Code == 200 || r.Code == 410 {
		dec := json.NewDecoder(strings.NewReader(string(r.Body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			if r.Code == 200 || !strings.Contains(err.Error(), "unknown field") {
				t.Fatalf("answer %d does not parse: %v: %s", r.Code, err, r.Body)
			}
		}
	}
	return r.Code, a, len(r.Body)
}

func put(t *testing.T, reg *testRegistrar, name, target string) uint64 {
	t.Helper()
	out := reg.Store.Write(store.Change{Name: name, Server: &store.Server{Target: target, Service: "sync"}})
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	return out.Revision
}

func del(t *testing.T, reg *testRegistrar, name string) {
	t.Helper()
	if out := reg.Store.Write(store.Change{Name: name}); out.Err != nil {
		t.Fatal(out.Err)
	}
}

// fullTable pages through the full table from a first answer, requiring every page
// to have the first page's revision and lineage and to fit the page limit; between
// pages it runs between (writes that must not show).
func fullTable(t *testing.T, reg *testRegistrar, first syncAnswer, limit int, between func(page int)) map[string]string {
	t.Helper()
	got := map[string]string{}
	a := first
	for page := 1; ; page++ {
		if a.Kind != "full" || a.Revision != first.Revision || a.Lineage != first.Lineage {
			t.Fatalf("page %d: %+v, want a full page at revision %d of lineage %s", page, a, first.Revision, first.Lineage)
		}
		for n, tg := range a.Routes {
			if _, dup := got[n]; dup {
				t.Fatalf("page %d repeats %s", page, n)
			}
			got[n] = tg
		}
		if a.Next == "" {
			return got
		}
		if between != nil {
			between(page)
		}
		code, next, size := sync2(t, reg, fmt.Sprintf("snapshot=%d&start=%s", first.Revision, url.QueryEscape(a.Next)))
		if code != 200 || size > limit {
			t.Fatalf("page %d: %d, %d bytes (limit %d)", page+1, code, size, limit)
		}
		a = next
	}
}

func TestSyncV2DeltaAndFull(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	put(t, reg, "a", "10.0.0.1")
	put(t, reg, "b", "10.0.0.2")
	code, full, _ := sync2(t, reg, "")
	if code != 200 || full.Kind != "full" || full.Revision != 2 || len(full.Lineage) != 32 || full.Next != "" ||
		!reflect.DeepEqual(full.Routes, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"}) {
		t.Fatalf("first answer: %d %+v", code, full)
	}
	L := full.Lineage
	put(t, reg, "a", "10.0.0.11")
	put(t, reg, "c", "10.0.0.3")
	put(t, reg, "a", "10.0.0.12")
	del(t, reg, "b")
	put(t, reg, "d", "10.0.0.4")
	del(t, reg, "d") // came and went: not in the delta
	code, d, size := sync2(t, reg, "after=2&lineage="+L)
	want := syncAnswer{Kind: "delta", Lineage: L, From: 2, Revision: 8,
		Upserts: map[string]string{"a": "10.0.0.12", "c": "10.0.0.3"}, Removals: []string{"b"}}
	if code != 200 || !reflect.DeepEqual(d, want) {
		t.Fatalf("delta: %d %+v, want %+v", code, d, want)
	}
	t.Logf("a delta of 2 upserts and 1 removal: %d bytes", size)

	// Full tables instead of deltas: no table, another lineage (a new history, even
	// when it is behind the proxy).
	for _, q := range []string{"after=0&lineage=" + L, "after=2", "after=2&lineage=00000000000000000000000000000000", "after=99&lineage=00000000000000000000000000000000"} {
		code, a, _ := sync2(t, reg, q)
		if code != 200 || a.Kind != "full" || a.Revision != 8 || !reflect.DeepEqual(a.Routes, map[string]string{"a": "10.0.0.12", "c": "10.0.0.3"}) {
			t.Errorf("%s: %d %+v, want the full table at 8", q, code, a)
		}
	}
	// Current: 304 after wait; a change wakes the long-poll with a one-name delta.
	if code, _, _ := sync2(t, reg, "after=8&wait=0.2&lineage="+L); code != 304 {
		t.Fatalf("current proxy: %d, want 304", code)
	}
	got := make(chan syncAnswer, 1)
	go func() {
		_, a, _ := sync2(t, reg, "after=8&wait=10&lineage="+L)
		got <- a
	}()
	waitGauge(t, reg, 1)
	put(t, reg, "e", "10.0.0.5")
	select {
	case a := <-got:
		if a.Kind != "delta" || a.From != 8 || a.Revision != 9 || !reflect.DeepEqual(a.Upserts, map[string]string{"e": "10.0.0.5"}) || len(a.Removals) != 0 {
			t.Fatalf("woken long-poll: %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll was not woken by the write")
	}

	// A proxy ahead of the embedded store in its lineage holds another history under
	// it (the store never hands out a revision it could lose): the store starts a new
	// lineage above its revision, and the proxy takes the table whole at once. A
	// second poll ahead within forkEvery does not fork again.
	code, a, _ := sync2(t, reg, "after=99&wait=0.2&lineage="+L)
	if code != 200 || a.Kind != "full" || a.Lineage == L || a.Revision != 10 || !reflect.DeepEqual(a.Routes, map[string]string{"a": "10.0.0.12", "c": "10.0.0.3", "e": "10.0.0.5"}) {
		t.Errorf("a proxy ahead in the same lineage: %d %+v, want the full table at 10 under a new lineage", code, a)
	}
	if code, a, _ := sync2(t, reg, "after=99&wait=0.2&lineage="+a.Lineage); code != 304 || reg.Store.Current().Revision() != 10 {
		t.Errorf("a second poll ahead within a minute: %d %+v, revision %d; want 304 and no new lineage", code, a, reg.Store.Current().Revision())
	}
}

// A proxy further behind than the retained history gets the full table.
func TestSyncV2BehindHistory(t *testing.T) {
	reg := startRegistrarTB(t, regOptions{history: 3})
	for i := range 6 {
		put(t, reg, fmt.Sprintf("n%d", i), "10.0.0.1")
	}
	L := reg.Store.Lineage()
	if _, a, _ := sync2(t, reg, "after=2&lineage="+L); a.Kind != "full" || len(a.Routes) != 6 || a.Revision != 6 {
		t.Fatalf("behind the history: %+v, want the full table", a)
	}
	if _, a, _ := sync2(t, reg, "after=3&lineage="+L); a.Kind != "delta" || len(a.Upserts) != 3 {
		t.Fatalf("within the history: %+v, want a delta", a)
	}
}

// Pages of a full table cut by -page-bytes, asked for while writes go on, make one
// table at one revision; a delta that would not fit a page is answered full; version
// 1 refuses such a table with 507.
func TestSyncV2Pages(t *testing.T) {
	const limit = MinPageBytes
	reg := startRegistrarTB(t, regOptions{pageBytes: limit})
	want := map[string]string{}
	for i := range 300 {
		name, target := fmt.Sprintf("name-%04d.example", i), fmt.Sprintf("host-%04d.internal:8080", i)
		put(t, reg, name, target)
		want[name] = target
	}
	code, first, size := sync2(t, reg, "")
	if code != 200 || size > limit || first.Next == "" {
		t.Fatalf("first page: %d, %d bytes, next %q", code, size, first.Next)
	}
	got := fullTable(t, reg, first, limit, func(page int) {
		put(t, reg, fmt.Sprintf("name-%04d.example", page*7), "changed.internal")
		del(t, reg, fmt.Sprintf("name-%04d.example", 299-page))
		put(t, reg, fmt.Sprintf("added-%d", page), "added.internal")
	})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("assembled %d names, want the %d of revision %d", len(got), len(want), first.Revision)
	}
	// Every name changed since: the delta is larger than a page.
	for i := range 300 {
		put(t, reg, fmt.Sprintf("name-%04d.example", i), fmt.Sprintf("moved-%04d.internal", i))
	}
	if _, a, _ := sync2(t, reg, fmt.Sprintf("after=%d&lineage=%s", first.Revision, first.Lineage)); a.Kind != "full" || a.Next == "" {
		t.Fatalf("an oversized delta: %+v, want a full first page", a.Kind)
	}
	r := call(t, "GET", reg.URL+"/v1/routes", "")
	if r.Code != 507 || !strings.Contains(r.Result(t).Error, "upgrade the filter") {
		t.Fatalf("version 1 over the page limit: %d %s", r.Code, r.Body)
	}
}

// A revision the registrar no longer holds answers 410 snapshot_gone.
func TestSyncV2SnapshotGone(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	for i := range 20 {
		put(t, reg, fmt.Sprintf("n%02d", i), "10.0.0.1")
	}
	code, a, _ := sync2(t, reg, "snapshot=1&start=n00")
	if code != 410 || a.Error != "snapshot_gone" {
		t.Fatalf("a revision never paged and long replaced: %d %+v, want 410 snapshot_gone", code, a)
	}
}

func TestSyncV2BadParameters(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	for _, c := range []struct{ query, field string }{
		{"v=4", "v:"}, {"v=3&after=x", "after:"}, {"v=2&wait=-1", "wait:"},
		{"v=2&snapshot=x", "snapshot:"}, {"v=2&start=a", "snapshot:"},
		{"v=2&lineage=%FF", "lineage:"}, {"v=2&lineage=" + strings.Repeat("c", 257), "lineage:"},
	} {
		r := call(t, "GET", reg.URL+"/v1/routes?"+c.query, "")
		if r.Code != 400 || !strings.HasPrefix(r.Result(t).Error, c.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.query, r.Code, r.Body, c.field)
		}
	}
}

// Who asks is passed to the sync observer, and never required.
func TestSyncV2Identity(t *testing.T) {
	var mu sync.Mutex
	var seen []SyncRequest
	reg := startRegistrarTB(t, regOptions{observe: func(r SyncRequest) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
	}})
	sync2(t, reg, "proxy=envoy-7&cluster=edge&version=1.4.0&after=0")
	sync2(t, reg, "")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].Proxy != "envoy-7" || seen[0].Cluster != "edge" || seen[0].Version != "1.4.0" || seen[1].Proxy != "" || seen[0].Remote == "" {
		t.Fatalf("observed %+v", seen)
	}
}
