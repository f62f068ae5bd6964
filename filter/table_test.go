package main

import "testing"

func TestRouteKeyView(t *testing.T) {
	a := routeKeyView("web-1")
	if a != "switchyard/route/web-1" {
		t.Errorf("routeKeyView = %q", a)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = routeKeyView("some-server-name") }); allocs != 0 {
		t.Errorf("routeKeyView allocates %v times, want 0", allocs)
	}
}

func TestSerializePairs(t *testing.T) {
	got := serializePairs([][2]string{{"content-type", "application/json"}, {"retry-after", "1"}})
	want := "\x02\x00\x00\x00" + "\x0c\x00\x00\x00\x10\x00\x00\x00" + "\x0b\x00\x00\x00\x01\x00\x00\x00" +
		"content-type\x00application/json\x00retry-after\x001\x00"
	if got != want {
		t.Errorf("serializePairs = %q, want %q", got, want)
	}
}
