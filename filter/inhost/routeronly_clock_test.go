package inhost

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/wasmhost"
)

// TestRouterOnlyTakeoverAfterWallClockStep: the poll lease expires by the host's
// monotonic clock, so a wall clock stepped back an hour right after the holder dies
// does not keep its lease: another router polls within the lease plus one tick.
func TestRouterOnlyTakeoverAfterWallClockStep(t *testing.T) {
	clk, e, vms := routersOnDrivenClock(t, 3)
	holder, _ := holderVM(t, e, vms, clk)
	vms[holder].Kill() // it dies: no proxy_on_done releases the lease
	clk.StepWall(-time.Hour)
	e.reg.pollers()
	e.reg.put("web-1", "10.0.0.2:82")
	took := advanceUntil(t, clk, leaseBound+time.Second, "another router took the lease after the wall clock stepped back 1 h", func() bool {
		return len(e.reg.byProxyNow()) > 0
	})
	t.Logf("r%d killed, wall clock stepped back 1 h; another router polled after %v of host time (bound %v)", holder, took, leaseBound)
	if took > leaseBound+200*time.Millisecond {
		t.Errorf("takeover after %v of host time, documented bound %v", took, leaseBound)
	}
	rest := slices.Delete(slices.Clone(vms), holder, holder+1)
	for _, vm := range rest {
		advanceUntil(t, clk, 3*time.Second, "the change after the takeover", func() bool { return routes(t, vm, "web-1", "10.0.0.2:82") })
	}
	if l := e.lease(); l.Role != contract.RootRouter || l.WallClock {
		t.Errorf("lease %+v, want a router's with a monotonic expiry", l)
	}
	for _, vm := range rest {
		if err := vm.Err(); err != nil {
			t.Fatalf("a VM died: %v", err)
		}
	}
}

// TestTableAgeAcrossWallClockStep: the table's age is timed by the monotonic clock
// too, so a wall clock stepped an hour forward, while polls are answered, neither
// raises the age gauge nor logs the table stale.
func TestTableAgeAcrossWallClockStep(t *testing.T) {
	clk, e, vms := routersOnDrivenClock(t, 2)
	advanceRealPace(clk, 2*time.Second)
	clk.StepWall(time.Hour)
	advanceRealPace(clk, 2*time.Second)
	if age := e.metric(contract.MetricTableAge); age > 3 {
		t.Errorf("table age %d s after the wall clock stepped forward, with polls answered", age)
	}
	if n := e.countLogs("route table is stale"); n != 0 {
		t.Errorf("%d stale lines after the wall clock stepped forward\n%s", n, e.logText())
	}
	for _, vm := range vms {
		if err := vm.Err(); err != nil {
			t.Fatalf("a VM died: %v", err)
		}
	}
}

// routersOnDrivenClock starts n router VMs (proxy_id r0…, no sync) on a ManualClock
// and drives it until the last one routes web-1 by the first table.
func routersOnDrivenClock(t *testing.T, n int) (*wasmhost.ManualClock, *fEnv, []*wasmhost.VM) {
	t.Helper()
	clk := wasmhost.NewManualClock(time.Now())
	e := newFEnv(t, wasmhost.Options{Clock: clk}, map[string]string{"web-1": "10.0.0.1:81"})
	vms := make([]*wasmhost.VM, n)
	for i := range vms {
		vms[i] = e.vm(contract.RootRouter, filterConfig(`"stale_after_seconds": 30, "proxy_id": "r`+strconv.Itoa(i)+`"`))
	}
	advanceUntil(t, clk, 5*time.Second, "the first table", func() bool { return routes(t, vms[n-1], "web-1", "10.0.0.1:81") })
	return clk, e, vms
}
