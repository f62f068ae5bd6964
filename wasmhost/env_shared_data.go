package wasmhost

import "switchyard/internal/abi"

// Shared data and shared queues: docs/proxy-wasm-host.md, Shared data and queues. One
// store per vm_id string, shared by every VM of the Host with that vm_id (a sync root
// and the router roots of all workers), gone with the last such VM.

var sharedDataImports = []*hostFunc{
	proxyGetSharedData, proxySetSharedData, proxyRegisterSharedQueue,
	proxyResolveSharedQueue, proxyDequeueSharedQueue, proxyEnqueueSharedQueue,
}

// proxyGetSharedData is env.proxy_get_shared_data: a value of the VM's vm_id store and
// its cas (never 0).
//
//	proxy_get_shared_data(key_ptr, key_size, ret_value_ptr, ret_value_size, ret_cas_ptr) -> status
//
// Statuses:
//   - Ok: value and cas were copied out.
//   - NotFound: no such key.
//   - InvalidMemoryAccess: key or out-parameters outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyGetSharedData = envCall("proxy_get_shared_data", 5, (*VM).getSharedData)

// proxySetSharedData is env.proxy_set_shared_data with cpp-host's CAS rule: cas 0
// writes unconditionally; a non-zero cas must equal the stored one, and creates an
// absent key. Every write gets a new cas. ABI 0.2.1 has no delete.
//
//	proxy_set_shared_data(key_ptr, key_size, value_ptr, value_size, cas) -> status
//
// Statuses:
//   - Ok: written.
//   - CasMismatch: cas is non-zero and not the stored one.
//   - InvalidMemoryAccess: key or value outside guest memory.
//
// Linked everywhere; callbacks only.
var proxySetSharedData = envCall("proxy_set_shared_data", 5, (*VM).setSharedData)

// proxyRegisterSharedQueue is env.proxy_register_shared_queue: creates (or takes over)
// the named queue of the VM's vm_id; proxy_on_queue_ready then goes to this VM's root
// context.
//
//	proxy_register_shared_queue(name_ptr, name_size, ret_token_ptr) -> status
//
// Statuses:
//   - Ok: the token was written.
//   - InvalidMemoryAccess: name or ret_token_ptr outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyRegisterSharedQueue = envCall("proxy_register_shared_queue", 3, (*VM).registerQueue)

// proxyResolveSharedQueue is env.proxy_resolve_shared_queue: the token of a queue some
// VM registered; an empty vm_id means the caller's.
//
//	proxy_resolve_shared_queue(vm_id_ptr, vm_id_size, name_ptr, name_size, ret_token_ptr) -> status
//
// Statuses:
//   - Ok: the token was written.
//   - NotFound: no such queue.
//   - InvalidMemoryAccess: arguments outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyResolveSharedQueue = envCall("proxy_resolve_shared_queue", 5, (*VM).resolveQueue)

// proxyDequeueSharedQueue is env.proxy_dequeue_shared_queue: the oldest item.
//
//	proxy_dequeue_shared_queue(token, ret_data_ptr, ret_data_size) -> status
//
// Statuses:
//   - Ok: the item was copied out.
//   - Empty: the queue holds nothing.
//   - NotFound: unknown token, or its vm_id's last VM is gone.
//   - InvalidMemoryAccess: out-parameters outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyDequeueSharedQueue = envCall("proxy_dequeue_shared_queue", 3, (*VM).dequeue)

// proxyEnqueueSharedQueue is env.proxy_enqueue_shared_queue: adds an item; the
// registering root context gets proxy_on_queue_ready after the current call, never
// inside it.
//
//	proxy_enqueue_shared_queue(token, data_ptr, data_size) -> status
//
// Statuses:
//   - Ok: queued.
//   - NotFound: unknown token.
//   - InvalidMemoryAccess: data outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyEnqueueSharedQueue = envCall("proxy_enqueue_shared_queue", 3, (*VM).enqueue)

// nextCAS returns a new cas value: a host-wide counter that is never 0. Called with
// sharedMu held.
func (h *Host) nextCAS() uint32 {
	h.cas++
	if h.cas == 0 {
		h.cas = 1
	}
	return h.cas
}

// SetSharedData stores value under key for vmID as proxy_set_shared_data with cas 0
// would, so a test can start VMs on shared data an earlier module left. The store
// goes with the last VM of vmID, as any store does.
func (h *Host) SetSharedData(vmID, key string, value []byte) {
	h.sharedMu.Lock()
	defer h.sharedMu.Unlock()
	h.setShared(vmID, []byte(key), value, 0)
}

// setShared applies proxy_set_shared_data's CAS rule to vmID's store, creating it,
// and stores a copy of value. Called with sharedMu held.
func (h *Host) setShared(vmID string, key, value []byte, cas uint32) abi.Status {
	space := h.shared[vmID]
	if space == nil {
		space = newSharedSpace()
		h.shared[vmID] = space
	}
	if cas != 0 {
		if e, ok := space.get(key); ok && e.cas != cas {
			return abi.StatusCasMismatch
		}
	}
	space.set(key, append([]byte(nil), value...), h.nextCAS())
	return abi.StatusOK
}

// SharedDataSize gives the number of keys in vmID's store and the bytes of their keys
// and values: what the store costs the proxy beyond the map's own overhead.
func (h *Host) SharedDataSize(vmID string) (keys, bytes int) {
	h.sharedMu.Lock()
	defer h.sharedMu.Unlock()
	for _, e := range h.shared[vmID].all() {
		keys++
		bytes += len(e.key) + len(e.value)
	}
	return keys, bytes
}

// SharedDataOverhead gives the bytes vmID's store holds beyond its keys and values: its
// index and entry table, with their spare capacity (the host's own cost of a key; in
// Envoy that is its hash map's).
func (h *Host) SharedDataOverhead(vmID string) int {
	h.sharedMu.Lock()
	defer h.sharedMu.Unlock()
	return h.shared[vmID].overhead()
}

// SharedData returns the value and cas stored under key for vmID, as
// proxy_get_shared_data would.
func (h *Host) SharedData(vmID, key string) (value []byte, cas uint32, ok bool) {
	h.sharedMu.Lock()
	defer h.sharedMu.Unlock()
	e, ok := h.shared[vmID].get([]byte(key))
	if !ok {
		return nil, 0, false
	}
	return append([]byte(nil), e.value...), e.cas, true
}

func (vm *VM) getSharedData(s []uint64) abi.Status {
	key, ok := vm.mem.Read(uint32(s[0]), uint32(s[1]))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	h := vm.host
	h.sharedMu.Lock()
	e, found := h.shared[vm.pc.VMID].get(key)
	var value []byte
	var cas uint32
	if found {
		value, cas = e.value, e.cas // values are never modified in place
	}
	h.sharedMu.Unlock()
	if !found {
		return abi.StatusNotFound
	}
	if st := vm.copyOut(value, uint32(s[2]), uint32(s[3])); st != abi.StatusOK {
		return st
	}
	return status(vm.putU32(uint32(s[4]), cas))
}

// setSharedData applies the CAS rule of proxy_set_shared_data.
func (vm *VM) setSharedData(s []uint64) abi.Status {
	key, ok1 := vm.mem.Read(uint32(s[0]), uint32(s[1]))
	val, ok2 := vm.mem.Read(uint32(s[2]), uint32(s[3]))
	if !ok1 || !ok2 {
		return abi.StatusInvalidMemoryAccess
	}
	h := vm.host
	h.sharedMu.Lock()
	defer h.sharedMu.Unlock()
	return h.setShared(vm.pc.VMID, key, val, uint32(s[4]))
}

// queue is a shared queue; on_queue_ready goes to the root context that registered it.
type queue struct {
	id    uint32
	vmID  string
	owner *VM
	items [][]byte
	gone  bool
}

func (vm *VM) registerQueue(s []uint64) abi.Status {
	name, ok := vm.mem.Read(uint32(s[0]), uint32(s[1]))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	h := vm.host
	h.sharedMu.Lock()
	k := vm.pc.VMID + "\x00" + string(name)
	q, ok := h.queues[k]
	if !ok {
		q = &queue{id: uint32(len(h.queueIDs)+1) << 1, vmID: vm.pc.VMID}
		h.queueIDs = append(h.queueIDs, q)
		h.queues[k] = q
	}
	q.owner = vm
	h.sharedMu.Unlock()
	return status(vm.putU32(uint32(s[2]), q.id))
}

func (vm *VM) resolveQueue(s []uint64) abi.Status {
	vmID, ok1 := vm.mem.Read(uint32(s[0]), uint32(s[1]))
	name, ok2 := vm.mem.Read(uint32(s[2]), uint32(s[3]))
	if !ok1 || !ok2 {
		return abi.StatusInvalidMemoryAccess
	}
	id := string(vmID)
	if id == "" {
		id = vm.pc.VMID
	}
	h := vm.host
	h.sharedMu.Lock()
	q, ok := h.queues[id+"\x00"+string(name)]
	h.sharedMu.Unlock()
	if !ok {
		return abi.StatusNotFound
	}
	return status(vm.putU32(uint32(s[4]), q.id))
}

func (h *Host) queueByID(id uint32) *queue {
	i := int(id>>1) - 1
	if id&1 != 0 || i < 0 || i >= len(h.queueIDs) || h.queueIDs[i].gone {
		return nil
	}
	return h.queueIDs[i]
}

func (vm *VM) dequeue(s []uint64) abi.Status {
	h := vm.host
	h.sharedMu.Lock()
	q := h.queueByID(uint32(s[0]))
	if q == nil {
		h.sharedMu.Unlock()
		return abi.StatusNotFound
	}
	if len(q.items) == 0 {
		h.sharedMu.Unlock()
		return abi.StatusEmpty
	}
	item := q.items[0]
	q.items = q.items[1:]
	h.sharedMu.Unlock()
	return vm.copyOut(item, uint32(s[1]), uint32(s[2]))
}

func (vm *VM) enqueue(s []uint64) abi.Status {
	data, ok := vm.mem.Read(uint32(s[1]), uint32(s[2]))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	h := vm.host
	h.sharedMu.Lock()
	q := h.queueByID(uint32(s[0]))
	if q == nil {
		h.sharedMu.Unlock()
		return abi.StatusNotFound
	}
	q.items = append(q.items, append([]byte(nil), data...))
	owner, id := q.owner, q.id
	h.sharedMu.Unlock()
	// Posted to the owner's "dispatcher": delivered after the current call, never inside it.
	go owner.queueReady(id)
	return abi.StatusOK
}

func (vm *VM) queueReady(id uint32) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.aliveErr() != nil {
		return
	}
	_, _, _ = vm.call(exQueueReady, nil, vm.rootID, uint64(vm.rootID), uint64(id))
	vm.finishCallback()
}
