package wasmhost

import (
	"context"
	"fmt"
	"strings"
	"time"

	"switchyard/internal/abi"
)

// LogLevel is a proxy-wasm log level (the values of proxy_log's first argument).
type LogLevel int

// The proxy-wasm log levels (abi.LogLevel's numbers).
const (
	Trace    = LogLevel(abi.LogTrace)
	Debug    = LogLevel(abi.LogDebug)
	Info     = LogLevel(abi.LogInfo)
	Warn     = LogLevel(abi.LogWarn)
	Error    = LogLevel(abi.LogError)
	Critical = LogLevel(abi.LogCritical)
)

var levelNames = [...]string{"trace", "debug", "info", "warning", "error", "critical"}

// String returns Envoy's name for the level ("info", "warning", ...).
func (l LogLevel) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// LogEntry is one log line: a guest's proxy_log, a line it wrote to fd 1 (Info) or
// fd 2 (Error), or a line of the host's own about a VM (a trap, at Critical).
type LogEntry struct {
	Time    time.Time
	Level   LogLevel
	VMID    string // plugin_vm_id of the VM, "" for lines not tied to a VM
	Plugin  string // plugin_name
	RootID  string // plugin_root_id
	Message string
}

// String formats the entry the way Envoy prints a wasm log line.
func (e LogEntry) String() string {
	return fmt.Sprintf("[%s][%s][wasm] wasm log %s %s: %s",
		e.Time.UTC().Format("2006-01-02 15:04:05.000"), e.Level, e.Plugin, e.RootID, e.Message)
}

// maxLogs bounds the kept log: a long benchmark that logs per request must not grow
// the host without end. The oldest half is dropped when the bound is reached.
const maxLogs = 100_000

// log records an entry when its level is at or above the host's level.
func (h *Host) log(vm *VM, level LogLevel, msg string) {
	if level < h.LogLevel() {
		return
	}
	e := LogEntry{Time: h.clock.Now(), Level: level, Message: msg}
	if vm != nil {
		e.VMID, e.Plugin, e.RootID = vm.pc.VMID, vm.pc.Name, vm.pc.RootID
	}
	h.logMu.Lock()
	if len(h.logs) >= maxLogs {
		n := copy(h.logs, h.logs[maxLogs/2:])
		h.logs = h.logs[:n]
		h.logBase += maxLogs / 2
	}
	h.logs = append(h.logs, e)
	if h.logWaiting { // wake WaitLog callers; no channel churn when nobody waits
		close(h.logSignal)
		h.logSignal = make(chan struct{})
		h.logWaiting = false
	}
	out := h.opts.LogOutput
	h.logMu.Unlock()
	if out != nil {
		fmt.Fprintln(out, e.String())
	}
}

// Logs returns a copy of the log lines kept so far (at most the last 100,000).
func (h *Host) Logs() []LogEntry {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return append([]LogEntry(nil), h.logs...)
}

// WaitLog blocks until a log line whose Message contains substr has been recorded
// (including lines recorded before the call) and returns the first such line. It
// returns ctx's error when ctx ends first. Tests use it for asynchronous events such
// as an http-call response delivered on the host's own goroutine.
func (h *Host) WaitLog(ctx context.Context, substr string) (LogEntry, error) {
	next := 0 // absolute index of the next line to look at
	for {
		h.logMu.Lock()
		start := next - h.logBase
		if start < 0 {
			start = 0
		}
		for i := start; i < len(h.logs); i++ {
			if strings.Contains(h.logs[i].Message, substr) {
				e := h.logs[i]
				h.logMu.Unlock()
				return e, nil
			}
		}
		next = h.logBase + len(h.logs)
		signal := h.logSignal
		h.logWaiting = true
		h.logMu.Unlock()
		select {
		case <-signal:
		case <-ctx.Done():
			return LogEntry{}, fmt.Errorf("host: no log line containing %q: %w", substr, ctx.Err())
		}
	}
}

// LogLevel returns the level proxy_get_log_level reports; lines below it are not kept.
func (h *Host) LogLevel() LogLevel { return LogLevel(h.logLevel.Load()) }

// SetLogLevel changes the level proxy_get_log_level reports and below which lines are
// dropped. It is the way to keep Trace lines, since a zero Options.LogLevel means Info.
func (h *Host) SetLogLevel(l LogLevel) { h.logLevel.Store(int32(l)) }
