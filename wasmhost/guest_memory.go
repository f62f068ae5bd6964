package wasmhost

import (
	"unsafe"

	"switchyard/internal/abi"
)

// Moving values between the host and guest memory, as cpp-host does.

// putU32 writes v at ptr in the guest's memory, reporting whether ptr was in bounds.
func (vm *VM) putU32(ptr, v uint32) bool { return vm.mem.WriteUint32Le(ptr, v) }

// status is Ok when a write into guest memory succeeded, else InvalidMemoryAccess.
func status(ok bool) abi.Status {
	if ok {
		return abi.StatusOK
	}
	return abi.StatusInvalidMemoryAccess
}

// copyOut hands data to the guest as cpp-host does: one call of the guest's allocator
// for the whole value, never two per host call (docs/proxy-wasm-host.md, Limits and
// host mechanics), then the pointer and size written to the out-parameters. Empty data
// allocates nothing and writes (0, 0).
func (vm *VM) copyOut(data []byte, ptrPtr, sizePtr uint32) abi.Status {
	var ptr uint32
	if len(data) > 0 {
		var ok bool
		ptr, ok = vm.alloc(uint32(len(data)))
		if !ok || !vm.mem.Write(ptr, data) {
			return abi.StatusInvalidMemoryAccess
		}
	}
	if !vm.putU32(ptrPtr, ptr) || !vm.putU32(sizePtr, uint32(len(data))) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

// copyOutString is copyOut for a string (a header value), without converting it.
func (vm *VM) copyOutString(data string, ptrPtr, sizePtr uint32) abi.Status {
	return vm.copyOut(unsafe.Slice(unsafe.StringData(data), len(data)), ptrPtr, sizePtr)
}

// alloc calls the guest's allocator inside the allocator window, through its own
// cached function and stack: the outer call's stack is in use while the guest sits in
// the import. A trap inside the allocator is re-raised so that the outer guest call
// fails and the VM dies.
func (vm *VM) alloc(size uint32) (uint32, bool) {
	prev := vm.window
	vm.window = windowAlloc
	vm.allocStack[0] = uint64(size)
	err := vm.allocFn.CallWithStack(vm.ctx, vm.allocStack[:])
	vm.window = prev
	if err != nil {
		panic(err)
	}
	ptr := uint32(vm.allocStack[0])
	return ptr, ptr != 0
}

func boolU64(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func itoa(n int64) string {
	var b [24]byte
	i := len(b)
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n)
	}
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
