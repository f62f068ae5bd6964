package store

import "testing"

// Tables built outside the embedded store keep the same size bookkeeping and leave
// the table they came from as it was.
func TestNewTableAndNext(t *testing.T) {
	a := NewTable(3, []Server{{Name: "b", Target: "10.0.0.2:80"}, {Name: "a", Target: "10.0.0.1:80"}, {Name: "a", Target: "10.0.0.11:80"}})
	if a.Revision() != 3 || a.Len() != 2 || a.RoutesSize() != int64(EncodedSize("a", "10.0.0.11:80")+EncodedSize("b", "10.0.0.2:80")) {
		t.Fatalf("NewTable: revision %d, %d servers, size %d", a.Revision(), a.Len(), a.RoutesSize())
	}
	b := a.Next(5, []Server{{Name: "c", Target: "10.0.0.3:80"}, {Name: "a", Target: "1.2.3.4"}}, []string{"b", "missing"})
	want := int64(EncodedSize("a", "1.2.3.4") + EncodedSize("c", "10.0.0.3:80"))
	if b.Revision() != 5 || b.Len() != 2 || b.RoutesSize() != want {
		t.Fatalf("Next: revision %d, %d servers, size %d (want 5, 2, %d)", b.Revision(), b.Len(), b.RoutesSize(), want)
	}
	if sv, _ := a.Get("a"); sv.Target != "10.0.0.11:80" || a.Len() != 2 {
		t.Fatalf("Next changed the table it came from: a=%v, %d servers", sv, a.Len())
	}
	select {
	case <-a.Changed():
		t.Fatal("Changed closed before Supersede")
	default:
	}
	a.Supersede()
	<-a.Changed()
	if p := PageOf(b, "", 1<<20); len(p.Routes) != 2 || p.Routes[0].Name != "a" || p.Next != "" {
		t.Fatalf("PageOf: %+v", p)
	}
}
