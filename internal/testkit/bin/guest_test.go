package bin

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

func TestGuestBuildsOnceAWasip1Module(t *testing.T) {
	first := Guest(t, "testdata/guest")
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	m, err := rt.CompileModule(ctx, first)
	if err != nil {
		t.Fatalf("the built guest does not compile: %v", err)
	}
	if _, ok := m.ExportedFunctions()["answer"]; !ok {
		t.Errorf("the guest lacks its exported function \"answer\": not built from testdata/guest")
	}
	if _, ok := m.ExportedFunctions()["_initialize"]; !ok {
		t.Errorf("the guest has no _initialize: not built with -buildmode=c-shared")
	}

	mu.Lock()
	before := len(builds)
	mu.Unlock()
	if again := Guest(t, "./testdata/guest/"); !bytes.Equal(again, first) {
		t.Errorf("a second Guest call for the same folder returned other bytes")
	}
	mu.Lock()
	after := len(builds)
	mu.Unlock()
	if after != before {
		t.Errorf("a second Guest call for the same folder started another build")
	}
}
