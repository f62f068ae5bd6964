// Package wait holds the one retry loop tests use to wait for a state that arrives
// asynchronously (a poll applied, a process gone, a member healthy).
package wait

import (
	"testing"
	"time"
)

// Eventually retries check until it returns "" or within has passed; the last
// complaint is the failure message.
func Eventually(t testing.TB, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
