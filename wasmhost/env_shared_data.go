package wasmhost

import "switchyard/internal/abi"

// Shared data and shared queues: one store per vm_id string, shared by every VM of the
// Host with that vm_id (a sync root and the router roots of all workers), gone with
// the last such VM (proxy-wasm-host-reference.md §3c).

// sharedEntry is stored by value: a lookup in a large table (100,000 route keys)
// then costs one fewer dependent memory load.
type sharedEntry struct {
	value []byte
	cas   uint32
}

// nextCAS returns a new cas value: a host-wide counter that is never 0. Called with
// sharedMu held.
func (h *Host) nextCAS() uint32 {
	h.cas++
	if h.cas == 0 {
		h.cas = 1
	}
	return h.cas
}

// SharedData returns the value and cas stored under key for vmID, as
// proxy_get_shared_data would.
func (h *Host) SharedData(vmID, key string) (value []byte, cas uint32, ok bool) {
	h.sharedMu.Lock()
	defer h.sharedMu.Unlock()
	e, ok := h.shared[vmID][key]
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
	e, found := h.shared[vm.pc.VMID][string(key)]
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

// setSharedData applies cpp-host's CAS rule: cas 0 writes unconditionally; a non-zero
// cas must match the stored one (CasMismatch otherwise), and creates an absent key.
func (vm *VM) setSharedData(s []uint64) abi.Status {
	key, ok1 := vm.mem.Read(uint32(s[0]), uint32(s[1]))
	val, ok2 := vm.mem.Read(uint32(s[2]), uint32(s[3]))
	if !ok1 || !ok2 {
		return abi.StatusInvalidMemoryAccess
	}
	cas := uint32(s[4])
	h := vm.host
	h.sharedMu.Lock()
	defer h.sharedMu.Unlock()
	space := h.shared[vm.pc.VMID]
	if space == nil {
		space = map[string]sharedEntry{}
		h.shared[vm.pc.VMID] = space
	}
	if e, ok := space[string(key)]; ok && cas != 0 && e.cas != cas {
		return abi.StatusCasMismatch
	}
	space[string(key)] = sharedEntry{value: append([]byte(nil), val...), cas: h.nextCAS()}
	return abi.StatusOK
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
