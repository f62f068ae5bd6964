// Package procfs reads what benchmarks report about a running process from Linux's
// /proc: its resident memory and the CPU time it has used.
package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RSSMiB is the resident set size of process pid in MiB, from the VmRSS line of
// /proc/PID/status. A missing or unreadable line fails the test.
func RSSMiB(t testing.TB, pid int) float64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	return vmRSSMiB(t, string(raw))
}

// vmRSSMiB finds the "VmRSS:  N kB" line in the text of a /proc/PID/status file.
func vmRSSMiB(t testing.TB, status string) float64 {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb / 1024
		}
	}
	t.Fatalf("no VmRSS line in /proc/PID/status:\n%s", status)
	return 0
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// CPUTime is the user+system CPU time process pid has used so far, all threads, from
// /proc/PID/stat.
func CPUTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("reading the CPU time of process %d: %v", pid, err)
	}
	return statCPU(t, string(raw))
}

// statCPU reads utime and stime from the text of a /proc/PID/stat file. Fields are
// counted after the command name, which is in parentheses and may hold spaces: state
// is field 3, utime 14 and stime 15.
func statCPU(t testing.TB, stat string) time.Duration {
	t.Helper()
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(f) < 13 {
		t.Fatalf("unexpected /proc/PID/stat line %q", stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("unexpected /proc/PID/stat line %q", stat)
	}
	return time.Duration(utime+stime) * clockTick
}
