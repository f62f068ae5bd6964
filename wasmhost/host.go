package wasmhost

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
)

// Profile selects which Envoy the host reproduces.
type Profile int

const (
	// Current is Envoy ≥ ~1.38: poll_oneoff answers 0 events at once, the full WASI
	// stub set is linked (the file and socket calls Legacy lacks, e.g.
	// fd_filestat_get), and poll_oneoff is allowed in the allocator.
	Current Profile = iota
	// Legacy is Envoy 1.33–1.37: poll_oneoff returns ENOSYS (52), which makes the Go
	// runtime throw; only the shorter WASI list is linked (a module importing one of
	// Current's extra stubs is refused) and the restricted windows are narrower
	// (docs/proxy-wasm-host.md, WASI and Restricted windows).
	Legacy
)

func (p Profile) String() string {
	if p == Legacy {
		return "legacy"
	}
	return "current"
}

// Engine selects wazero's engine.
type Engine int

const (
	// Compiler is wazero's optimizing compiler: ≈1.8 s of CPU to compile a 3–4 MB filter
	// the first time in a process (spread over GOMAXPROCS workers: ≈1 s on two cores),
	// then ≈50 ms from the shared cache; the only engine fast enough for benchmarks.
	Compiler Engine = iota
	// Interpreter compiles ≈10× faster and runs 35–65× slower; for tests of load-time
	// behaviour.
	Interpreter
)

// Options configure a Host. The zero value is a current-profile, compiler-engine host
// on real time with no clusters, keeping Info and above.
type Options struct {
	Profile   Profile
	Engine    Engine
	Clock     Clock             // nil: real time
	Clusters  map[string]string // cluster name → base URL, e.g. "registrar" → "http://127.0.0.1:9000"
	LogOutput io.Writer         // optional: each log line is also written here, Envoy-style text
	LogLevel  LogLevel          // what proxy_get_log_level reports (zero value: Info); lower levels not kept; see SetLogLevel
	// Transport, when set, carries proxy_http_call requests (e.g. one that picks among a
	// cluster's endpoints); nil: a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Node is Envoy's bootstrap node (--service-node, --service-cluster): the
	// properties xds.node.id and xds.node.cluster. Empty, as Envoy without them.
	Node Node
	// NoMetrics makes a host that keeps no metrics: proxy_define_metric answers
	// Unimplemented (so a guest must run without them), as a host without a stats
	// store does.
	NoMetrics bool
}

// Node is the part of Envoy's bootstrap node (config.core.v3.Node) the host serves.
type Node struct {
	ID      string // xds.node.id
	Cluster string // xds.node.cluster
}

// Host is one Envoy-like proxy-wasm host: a wazero runtime with the host's own env and
// WASI modules, its clusters, shared data, metrics and logs. Create one per process or
// per test; it is safe for concurrent use.
type Host struct {
	opts    Options
	clock   Clock
	runtime wazero.Runtime
	ctx     context.Context
	cancel  context.CancelFunc
	client  *http.Client

	// httpCallBodyLimit is the largest http-call answer body (maxHTTPCallBody; tests
	// lower it to reach the limit cheaply).
	httpCallBodyLimit int64

	byName map[string]*hostFunc
	counts []hostcallCounter

	logLevel   atomic.Int32
	logMu      sync.Mutex
	logs       []LogEntry
	logBase    int
	logSignal  chan struct{}
	logWaiting bool

	clusterMu sync.RWMutex
	clusters  map[string]string

	vmSeq     atomic.Uint64
	pollCalls atomic.Int64

	modMu   sync.Mutex
	modules map[[32]byte]*Module

	vmMu   sync.Mutex
	vms    map[*VM]struct{}
	vmRefs map[string]int

	sharedMu sync.Mutex
	shared   map[string]*sharedSpace
	cas      uint32
	queues   map[string]*queue // "vm_id\x00name"
	queueIDs []*queue

	metricMu sync.Mutex
	metrics  map[metricKey]*metric
}

// compilationCache is shared by every Host of the process: the filter compiles once
// (≈1 s on two cores), and every later Host loads it in ≈50 ms (docs/proxy-wasm-host.md, Limits and
// host mechanics).
var compilationCache = wazero.NewCompilationCache()

// New creates a Host. It panics only if wazero cannot link the host modules, which is
// a programming error.
func New(opts Options) *Host {
	h := &Host{
		opts:      opts,
		clock:     opts.Clock,
		byName:    map[string]*hostFunc{},
		logSignal: make(chan struct{}),
		clusters:  map[string]string{},
		modules:   map[[32]byte]*Module{},
		vms:       map[*VM]struct{}{},
		vmRefs:    map[string]int{},
		shared:    map[string]*sharedSpace{},
		queues:    map[string]*queue{},
		metrics:   map[metricKey]*metric{},
		client:    &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},

		httpCallBodyLimit: maxHTTPCallBody,
	}
	if opts.Transport != nil {
		h.client.Transport = opts.Transport
	}
	if h.clock == nil {
		h.clock = RealClock()
	}
	level := opts.LogLevel
	if level == Trace {
		level = Info
	}
	h.logLevel.Store(int32(level))
	for k, v := range opts.Clusters {
		h.clusters[k] = v
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())

	cfg := wazero.NewRuntimeConfigCompiler()
	if opts.Engine == Interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	// cpp-host caps linear memory at 1 GiB (limits.h).
	cfg = cfg.WithCompilationCache(compilationCache).WithMemoryLimitPages(1 << 14)
	h.runtime = wazero.NewRuntimeWithConfig(h.ctx, cfg)

	h.counts = make([]hostcallCounter, len(importTable))
	builders := map[string]wazero.HostModuleBuilder{
		"env":                    h.runtime.NewHostModuleBuilder("env"),
		"wasi_snapshot_preview1": h.runtime.NewHostModuleBuilder("wasi_snapshot_preview1"),
		"wasi_unstable":          h.runtime.NewHostModuleBuilder("wasi_unstable"),
	}
	for i, f := range importTable {
		h.byName[f.module+"."+f.name] = f
		fn := h.goFunc(i, f)
		targets := []string{"env"}
		if f.module == moduleWASI {
			targets = []string{"wasi_snapshot_preview1", "wasi_unstable"}
		}
		for _, t := range targets {
			builders[t].NewFunctionBuilder().WithGoModuleFunction(fn, f.params, f.results).Export(f.name)
		}
	}
	for name, b := range builders {
		if _, err := b.Instantiate(h.ctx); err != nil {
			panic(fmt.Sprintf("host: linking the %s host module: %v", name, err))
		}
	}
	return h
}

// Close stops every VM's timers and http calls and frees the runtime. VMs are not
// given on_done/on_delete: close them first for that.
func (h *Host) Close() error {
	h.vmMu.Lock()
	vms := make([]*VM, 0, len(h.vms))
	for vm := range h.vms {
		vms = append(vms, vm)
	}
	h.vmMu.Unlock()
	for _, vm := range vms {
		vm.mu.Lock()
		vm.teardown()
		vm.mu.Unlock()
	}
	h.cancel()
	return h.runtime.Close(context.Background())
}

// SetCluster adds or replaces a cluster (name → base URL such as
// "http://127.0.0.1:9000") for proxy_http_call, at run time.
func (h *Host) SetCluster(name, baseURL string) {
	h.clusterMu.Lock()
	defer h.clusterMu.Unlock()
	h.clusters[name] = baseURL
}

func (h *Host) cluster(name string) (string, bool) {
	h.clusterMu.RLock()
	defer h.clusterMu.RUnlock()
	u, ok := h.clusters[name]
	return u, ok
}

// PollOneoffCalls returns how many times guests of this host called poll_oneoff. A Go
// guest calls it only once a runtime timer was armed (docs/proxy-wasm-host.md, WASI).
func (h *Host) PollOneoffCalls() int64 { return h.pollCalls.Load() }

// hostcallCounter counts the calls of one import. Each has a cache line of its own:
// a worker's router calling proxy_get_shared_data and the poller calling
// proxy_set_shared_data on another core would otherwise bounce one line between them
// at every call.
type hostcallCounter struct {
	n atomic.Int64
	_ [56]byte
}

// HostcallCounts returns, per import name ("proxy_log", "fd_write", ...), how many
// times guests called it (only names called at least once). The counters are cheap
// atomics, always on.
func (h *Host) HostcallCounts() map[string]int64 {
	out := map[string]int64{}
	for i, f := range importTable {
		if n := h.counts[i].n.Load(); n > 0 {
			out[f.name] = n
		}
	}
	return out
}

// addVM registers a live VM and takes a reference on its vm_id's shared data.
func (h *Host) addVM(vm *VM) {
	h.vmMu.Lock()
	h.vms[vm] = struct{}{}
	h.vmMu.Unlock()
	h.sharedMu.Lock()
	h.vmRefs[vm.pc.VMID]++
	h.sharedMu.Unlock()
}

// removeVM drops a VM; the shared data and queues of a vm_id go with its last VM, as
// in cpp-host (VmIdHandle).
func (h *Host) removeVM(vm *VM) {
	h.vmMu.Lock()
	delete(h.vms, vm)
	h.vmMu.Unlock()
	h.sharedMu.Lock()
	defer h.sharedMu.Unlock()
	id := vm.pc.VMID
	if h.vmRefs[id]--; h.vmRefs[id] <= 0 {
		delete(h.vmRefs, id)
		delete(h.shared, id)
		for k, q := range h.queues {
			if q.vmID == id {
				q.gone = true
				delete(h.queues, k)
			}
		}
	}
}
