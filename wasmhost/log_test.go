package wasmhost

import (
	"context"
	"errors"
	"testing"
	"time"
)

// WaitLog honours its context.
func TestWaitLogTimesOut(t *testing.T) {
	h := newHost(t, Options{Engine: Interpreter})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.WaitLog(ctx, "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitLog = %v", err)
	}
}
