package procfs

import (
	"os"
	"testing"
	"time"
)

func TestReadsThisProcess(t *testing.T) {
	// A Go test binary holds at least a MiB resident and far less than a GiB.
	if mib := RSSMiB(t, os.Getpid()); mib < 1 || mib > 1024 {
		t.Errorf("RSSMiB = %.1f MiB for this test process, want between 1 and 1024", mib)
	}
	before := CPUTime(t, os.Getpid())
	for deadline := time.Now().Add(5 * time.Second); CPUTime(t, os.Getpid()) == before && time.Now().Before(deadline); {
		for i := 0; i < 1e6; i++ { // burn CPU until the counter moves
			_ = i * i
		}
	}
	if after := CPUTime(t, os.Getpid()); after <= before {
		t.Errorf("CPUTime stayed at %v while this process spun for up to 5 s", before)
	}
}

func TestParsesStatusAndStatText(t *testing.T) {
	if got := vmRSSMiB(t, "Name:\tx\nVmRSS:\t    2048 kB\n"); got != 2 {
		t.Errorf("vmRSSMiB of a 2048 kB line = %v, want 2", got)
	}
	// A command name with spaces and a ')' must not shift the fields.
	stat := "42 (my (odd) cmd) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0"
	if got := statCPU(t, stat); got != 300*clockTick {
		t.Errorf("statCPU = %v, want utime 250 + stime 50 ticks = %v", got, 300*clockTick)
	}
}
