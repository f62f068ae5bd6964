package wasmhost

import (
	"strings"
	"testing"
	"time"
)

func TestManualClock(t *testing.T) {
	start := time.Unix(100, 0)
	c := NewManualClock(start)
	var fired []string
	c.AfterFunc(2*time.Second, func() { fired = append(fired, "b") })
	c.AfterFunc(time.Second, func() {
		fired = append(fired, "a")
		c.AfterFunc(500*time.Millisecond, func() { fired = append(fired, "a2") }) // within the window
	})
	stop := c.AfterFunc(1500*time.Millisecond, func() { fired = append(fired, "stopped") })
	c.AfterFunc(5*time.Second, func() { fired = append(fired, "late") })
	if !stop() {
		t.Error("stop of a pending timer reported false")
	}
	c.Advance(2 * time.Second)
	if strings.Join(fired, ",") != "a,a2,b" {
		t.Errorf("fired %v, want [a a2 b]", fired)
	}
	if !c.Now().Equal(start.Add(2 * time.Second)) {
		t.Errorf("Now = %v", c.Now())
	}
	if stop() {
		t.Error("stop of a removed timer reported true")
	}
}
