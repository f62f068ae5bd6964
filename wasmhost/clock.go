package wasmhost

import (
	"sort"
	"sync"
	"time"
)

// Clock is the time source of a Host: proxy_get_current_time_nanoseconds, the WASI
// realtime clock, tick timers and http-call timeouts all read it. Tests pass a
// ManualClock to drive ticks and timeouts; the dev proxy uses RealClock.
//
// The WASI monotonic clock always follows real time, whatever the Clock: the Go runtime
// busy-waits on it (time.Sleep under the current profile), so freezing it would hang
// a guest instead of reproducing Envoy. A ManualClock adds what Advance moved to it,
// and its wall clock can be stepped (StepWall) while the monotonic one goes on.
type Clock interface {
	// Now returns the current wall-clock time.
	Now() time.Time
	// AfterFunc calls f once, on its own goroutine or (ManualClock) from Advance,
	// after d has passed. stop cancels it and reports whether it was still pending.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// RealClock returns the Clock of the machine (time.Now and time.AfterFunc).
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// ManualClock is a Clock that moves only when Advance is called. It is safe for
// concurrent use.
//
// Its timers run on the driven time that Advance moves; Now is that time plus the
// steps of StepWall, as a host's timers run on its monotonic clock whatever the wall
// clock does.
type ManualClock struct {
	mu     sync.Mutex
	start  time.Time
	now    time.Time     // driven time: Advance moves it, timers fall due on it
	step   time.Duration // StepWall's sum: Now is now+step
	seq    uint64
	timers map[uint64]*manualTimer
}

type manualTimer struct {
	when time.Time
	seq  uint64
	f    func()
}

// NewManualClock returns a ManualClock that reads start until advanced.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{start: start, now: start, timers: map[uint64]*manualTimer{}}
}

// Now returns the clock's current wall-clock time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now.Add(c.step)
}

// StepWall steps the wall clock (Now, the WASI realtime clock,
// proxy_get_current_time_nanoseconds) by d, back when d is negative, as an NTP step or
// an operator's date does; the monotonic clock and the timers do not move.
func (c *ManualClock) StepWall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.step += d
}

// monotonic is the WASI monotonic clock under this Clock: real time since the host
// process started plus what Advance moved, so it only goes forward.
func (c *ManualClock) monotonic() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Since(processStart) + c.now.Sub(c.start)
}

// AfterFunc arranges for f to be called by the Advance that reaches now+d. A d ≤ 0
// fires at the next Advance (even Advance(0)).
func (c *ManualClock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &manualTimer{when: c.now.Add(d), seq: c.seq, f: f}
	c.timers[t.seq] = t
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, pending := c.timers[t.seq]
		delete(c.timers, t.seq)
		return pending
	}
}

// Advance moves the clock forward by d and fires every timer that falls due, in time
// order (ties in the order they were armed), synchronously on the caller's goroutine.
// Timers armed by those callbacks (a re-armed tick, for example) fire too when they
// fall within the same window. When Advance returns, every callback into a VM that it
// caused (ticks, http-call timeouts) has returned. Do not call Advance from inside a
// VM callback (a log writer, for example): the VM's lock is held there.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		due := make([]*manualTimer, 0, len(c.timers))
		for _, t := range c.timers {
			if !t.when.After(target) {
				due = append(due, t)
			}
		}
		if len(due) == 0 {
			c.now = target
			c.mu.Unlock()
			return
		}
		sort.Slice(due, func(i, j int) bool {
			if !due[i].when.Equal(due[j].when) {
				return due[i].when.Before(due[j].when)
			}
			return due[i].seq < due[j].seq
		})
		next := due[0]
		delete(c.timers, next.seq)
		if next.when.After(c.now) {
			c.now = next.when
		}
		c.mu.Unlock()
		next.f()
	}
}
