package main

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseSnapshotAccepts(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		current uint64
		loaded  bool
		want    Snapshot
	}{
		{"first table", `{"revision":3,"routes":{"web-1":"10.1.2.3:8080","v6":"[2001:db8::1]","dns":"logs.internal"}}`, 0, false,
			Snapshot{3, map[string]string{"web-1": "10.1.2.3:8080", "v6": "[2001:db8::1]", "dns": "logs.internal"}}},
		{"empty table at revision 0", `{"revision":0,"routes":{}}`, 0, false, Snapshot{0, map[string]string{}}},
		{"newer revision", `{"revision":8,"routes":{"a":"10.0.0.1"}}`, 7, true, Snapshot{8, map[string]string{"a": "10.0.0.1"}}},
		{"extra keys ignored", `{"revision":1,"routes":{},"generatedAt":"now"}`, 0, false, Snapshot{1, map[string]string{}}},
		{"escaped strings", `{"revision":1,"routes":{"w\u0065b":"10.0.0.1"}}`, 0, false, Snapshot{1, map[string]string{"web": "10.0.0.1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSnapshot([]byte(tt.body), tt.current, tt.loaded)
			if err != nil {
				t.Fatalf("ParseSnapshot: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseSnapshotRefuses(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		current   uint64
		loaded    bool
		wantInErr string
	}{
		{"empty body", ``, 0, false, "empty body"},
		{"not JSON", `<html>502</html>`, 0, false, "not valid JSON"},
		{"truncated", `{"revision":1,"routes":{"a":"10.0.0.1"`, 0, false, "not valid JSON"},
		{"array", `[1]`, 0, false, "not a JSON object"},
		{"no revision", `{"routes":{}}`, 0, false, `"revision" is missing`},
		{"revision string", `{"revision":"4","routes":{}}`, 0, false, `"revision" is not a number`},
		{"revision negative", `{"revision":-1,"routes":{}}`, 0, false, "not a non-negative integer"},
		{"revision fraction", `{"revision":1.5,"routes":{}}`, 0, false, "not a non-negative integer"},
		{"revision same", `{"revision":7,"routes":{}}`, 7, true, "not newer than the live revision 7"},
		{"revision older", `{"revision":6,"routes":{}}`, 7, true, "not newer than the live revision 7"},
		{"no routes", `{"revision":1}`, 0, false, `"routes" is missing`},
		{"revision twice", `{"revision":1,"routes":{},"revision":9}`, 0, false, `"revision" appears twice`},
		{"routes twice", `{"revision":1,"routes":{},"routes":{"a":"10.0.0.1"}}`, 0, false, `"routes" appears twice`},
		{"escaped key twice", `{"revision":1,"routes":{},"r\u006futes":{}}`, 0, false, `"routes" appears twice`},
		{"routes array", `{"revision":1,"routes":[]}`, 0, false, `"routes" is not an object`},
		{"bad name", `{"revision":1,"routes":{"web 1":"10.0.0.1"}}`, 0, false, `server name "web 1" is invalid`},
		{"empty name", `{"revision":1,"routes":{"":"10.0.0.1"}}`, 0, false, `server name "" is invalid`},
		{"long name", `{"revision":1,"routes":{"` + strings.Repeat("a", 101) + `":"10.0.0.1"}}`, 0, false, "at most 100"},
		{"target number", `{"revision":1,"routes":{"a":10}}`, 0, false, "target of a is not a string"},
		{"target empty", `{"revision":1,"routes":{"a":""}}`, 0, false, `target "" of a is invalid`},
		{"target bad", `{"revision":1,"routes":{"a":"http://10.0.0.1/"}}`, 0, false, `target "http://10.0.0.1/" of a is invalid`},
		{"target bare IPv6", `{"revision":1,"routes":{"a":"2001:db8::1"}}`, 0, false, "of a is invalid"},
		{"target bad port", `{"revision":1,"routes":{"a":"10.0.0.1:0"}}`, 0, false, "of a is invalid"},
		{"duplicate name", `{"revision":1,"routes":{"a":"10.0.0.1","a":"10.0.0.2"}}`, 0, false, "server name a appears twice"},
		{"bad entry after good ones", `{"revision":1,"routes":{"a":"10.0.0.1","b":"10.0.0.2","c":"x y"}}`, 0, false, "of c is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSnapshot([]byte(tt.body), tt.current, tt.loaded)
			if err == nil {
				t.Fatalf("ParseSnapshot(%s) accepted it, want an error containing %q", tt.body, tt.wantInErr)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantInErr)
			}
		})
	}
}

// snapshotJSON writes a registrar answer of n names, name-i → 10.x.y.z:8080.
func snapshotJSON(revision uint64, n int) []byte {
	var b strings.Builder
	b.WriteString(`{"revision":` + strconv.FormatUint(revision, 10) + `,"routes":{`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"name-` + strconv.Itoa(i) + `":"10.` + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + `:8080"`)
	}
	b.WriteString("}}")
	return []byte(b.String())
}

func TestParseSnapshot100k(t *testing.T) {
	body := snapshotJSON(1, 100_000)
	s, err := ParseSnapshot(body, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Routes) != 100_000 || s.Routes["name-99999"] != "10.1.134.159:8080" {
		t.Fatalf("got %d routes, name-99999 → %q", len(s.Routes), s.Routes["name-99999"])
	}
}

func BenchmarkParseSnapshot100k(b *testing.B) {
	body := snapshotJSON(1, 100_000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseSnapshot(body, 0, false); err != nil {
			b.Fatal(err)
		}
	}
}
