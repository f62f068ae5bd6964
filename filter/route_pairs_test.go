package main

import "testing"

func TestScanPairs(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		want   requestView
		wantOK bool
	}{
		{"empty map", "", requestView{}, true},
		{"all three", serializePairs([][2]string{{":method", "GET"}, {":path", "/sys/x"}, {":authority", "proxy:8443"}, {"x-server-name", "web-1"}}),
			requestView{path: "/sys/x", name: "web-1", authority: "proxy:8443", hasPath: true}, true},
		{"first value of a repeated header wins", serializePairs([][2]string{{"x-server-name", "a"}, {":path", "/p"}, {"x-server-name", "b"}, {":path", "/q"}}),
			requestView{path: "/p", name: "a", hasPath: true}, true},
		{"empty path is present", serializePairs([][2]string{{":path", ""}}), requestView{hasPath: true}, true},
		{"no path", serializePairs([][2]string{{"x-server-name", "web-1"}}), requestView{name: "web-1"}, true},
		{"other header with the name as a prefix", serializePairs([][2]string{{"x-server-name-2", "no"}}), requestView{}, true},
		{"short count", "\x01\x00", requestView{}, false},
		{"count past the data", "\x05\x00\x00\x00", requestView{}, false},
		{"lengths past the data", serializePairs([][2]string{{":path", "/sys"}})[:20], requestView{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := scanPairs(tt.data, "x-server-name")
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("scanPairs = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
