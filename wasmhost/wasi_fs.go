package wasmhost

import (
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// The host's own wasi_snapshot_preview1 (also linked as wasi_unstable), reproducing
// cpp-host's table (proxy-wasm-host-reference.md §2.1) instead of wazero's full WASI:
// wazero's would let a guest sleep, read files and see the process environment, none
// of which Envoy allows. Results follow CPH exports.cc; the Legacy profile links only
// the pre-#533 list and answers poll_oneoff with ENOSYS.

// wasiStub returns a function that answers fd 1/2 with okForStdio (when non-negative)
// and everything else with errno.
func wasiStub(errno uint64, okForStdio bool) func(vm *VM, s []uint64) {
	return func(vm *VM, s []uint64) {
		if fd := uint32(s[0]); okForStdio && (fd == 1 || fd == 2) {
			s[0] = errnoSuccess
			return
		}
		s[0] = errno
	}
}

func wasiConst(errno uint64) func(vm *VM, s []uint64) {
	return func(vm *VM, s []uint64) { s[0] = errno }
}

func (h *Host) defineWASI() {
	w := func(name string, params []api.ValueType, results []api.ValueType, flags int, fn func(vm *VM, s []uint64)) {
		h.def("wasi", name, params, results, flags, fn)
	}
	p := func(ts ...api.ValueType) []api.ValueType { return ts }

	// Present before #427 ("old").
	w("fd_write", ps(4), r32, everyWhen, func(vm *VM, s []uint64) { s[0] = vm.fdWrite(s) })
	w("fd_read", ps(4), r32, old, wasiConst(errnoNosys))
	w("fd_seek", p(i32, i64, i32, i32), r32, old, func(vm *VM, s []uint64) {
		vm.host.log(vm, Trace, "wasi_unstable fd_seek")
		s[0] = errnoSuccess
	})
	w("fd_close", ps(1), r32, old, func(vm *VM, s []uint64) {
		vm.host.log(vm, Trace, "wasi_unstable fd_close")
		s[0] = errnoSuccess
	})
	w("fd_fdstat_get", ps(2), r32, initBoth, func(vm *VM, s []uint64) {
		fd, ptr := uint32(s[0]), uint32(s[1])
		if fd != 1 && fd != 2 {
			s[0] = errnoBadf
			return
		}
		var st [24]byte
		st[0] = 2                                 // filetype: character device
		binary.LittleEndian.PutUint64(st[8:], 64) // rights_base: FD_WRITE
		if !vm.mem.Write(ptr, st[:]) {
			s[0] = errnoInval
			return
		}
		s[0] = errnoSuccess
	})
	w("fd_prestat_get", ps(2), r32, initBoth, wasiConst(errnoBadf))
	w("fd_prestat_dir_name", ps(3), r32, initBoth, wasiConst(errnoNosys))
	w("path_open", p(i32, i32, i32, i32, i32, i64, i64, i32, i32), r32, old, wasiConst(errnoNoent))
	w("environ_sizes_get", ps(2), r32, initBoth, func(vm *VM, s []uint64) {
		n, size := 0, 0
		for _, kv := range vm.environ {
			n++
			size += len(kv) + 1
		}
		if !vm.putU32(uint32(s[0]), uint32(n)) || !vm.putU32(uint32(s[1]), uint32(size)) {
			s[0] = errnoInval
			return
		}
		s[0] = errnoSuccess
	})
	w("environ_get", ps(2), r32, initBoth, func(vm *VM, s []uint64) {
		ptrs, buf := uint32(s[0]), uint32(s[1])
		for i, kv := range vm.environ {
			if !vm.putU32(ptrs+uint32(4*i), buf) || !vm.mem.Write(buf, append([]byte(kv), 0)) {
				s[0] = errnoInval
				return
			}
			buf += uint32(len(kv) + 1)
		}
		s[0] = errnoSuccess
	})
	w("args_sizes_get", ps(2), r32, initBoth, func(vm *VM, s []uint64) {
		if !vm.putU32(uint32(s[0]), 0) || !vm.putU32(uint32(s[1]), 0) {
			s[0] = errnoInval
			return
		}
		s[0] = errnoSuccess
	})
	w("args_get", ps(2), r32, initBoth, wasiConst(errnoSuccess))
	w("clock_time_get", p(i32, i64, i32), r32, everyWhen, func(vm *VM, s []uint64) {
		var t uint64
		switch uint32(s[0]) {
		case 0:
			t = uint64(vm.host.clock.Now().UnixNano())
		case 1:
			t = uint64(time.Since(processStart))
		default:
			s[0] = errnoNotsup
			return
		}
		if !vm.mem.WriteUint64Le(uint32(s[2]), t) {
			s[0] = errnoInval
			return
		}
		s[0] = errnoSuccess
	})
	w("random_get", ps(2), r32, initBoth, func(vm *VM, s []uint64) {
		ptr, n := uint32(s[0]), uint32(s[1])
		if n > 64<<10 {
			s[0] = errnoInval
			return
		}
		buf, ok := vm.mem.Read(ptr, n)
		if !ok {
			s[0] = errnoInval
			return
		}
		_, _ = rand.Read(buf) // crypto/rand.Read never fails (Go ≥ 1.24)
		s[0] = errnoSuccess
	})
	w("proc_exit", ps(1), nil, old, func(vm *VM, s []uint64) {
		// Envoy logs and returns; it does not end the VM.
		vm.host.log(vm, Error, "wasi proc_exit called with code "+itoa(int64(uint32(s[0]))))
	})

	// Added by cpp-host #427 (Envoy 1.33): linked in both profiles.
	w("fd_fdstat_set_flags", ps(2), r32, initBoth, wasiConst(errnoNosys))
	w("sched_yield", nil, r32, linkLegacy, wasiConst(errnoSuccess))
	w("poll_oneoff", ps(4), r32, poll, func(vm *VM, s []uint64) {
		vm.host.pollCalls.Add(1)
		if vm.host.opts.Profile == Legacy {
			s[0] = errnoNosys // cpp-host between #427 and #533: the Go runtime throws
			return
		}
		// cpp-host #533: no events, at once; the guest never sleeps.
		if !vm.putU32(uint32(s[3]), 0) {
			s[0] = errnoInval
			return
		}
		s[0] = errnoSuccess
	})

	// Added by cpp-host #533 (current profile only); stubs allowed during _initialize.
	w("fd_pwrite", p(i32, i32, i32, i64, i32), r32, stub533, func(vm *VM, s []uint64) {
		s[3] = s[4] // same as fd_write, offset ignored
		s[0] = vm.fdWrite(s)
	})
	w("fd_filestat_get", ps(2), r32, stub533, wasiConst(errnoBadf))
	w("path_filestat_get", ps(5), r32, stub533, wasiConst(errnoNotsup))
	w("clock_res_get", ps(2), r32, stub533, func(vm *VM, s []uint64) {
		if id := uint32(s[0]); id != 0 && id != 1 {
			s[0] = errnoNotsup
			return
		}
		if !vm.mem.WriteUint64Le(uint32(s[1]), 1) {
			s[0] = errnoInval
			return
		}
		s[0] = errnoSuccess
	})
	w("fd_advise", p(i32, i64, i64, i32), r32, stub533, wasiStub(errnoBadf, true))
	w("fd_allocate", p(i32, i64, i64), r32, stub533, wasiStub(errnoBadf, false))
	w("fd_datasync", ps(1), r32, stub533, wasiStub(errnoBadf, true))
	w("fd_fdstat_set_rights", p(i32, i64, i64), r32, stub533, wasiStub(errnoBadf, false))
	w("fd_filestat_set_size", p(i32, i64), r32, stub533, wasiStub(errnoBadf, false))
	w("fd_filestat_set_times", p(i32, i64, i64, i32), r32, stub533, wasiStub(errnoBadf, false))
	w("fd_sync", ps(1), r32, stub533, wasiStub(errnoBadf, true))
	w("fd_tell", ps(2), r32, stub533, wasiStub(errnoBadf, false))
	w("fd_renumber", ps(2), r32, stub533, wasiStub(errnoBadf, false))
	w("fd_readdir", p(i32, i32, i32, i64, i32), r32, stub533, wasiStub(errnoNotdir, false))
	w("fd_pread", p(i32, i32, i32, i64, i32), r32, stub533, wasiStub(errnoBadf, false))
	w("path_create_directory", ps(3), r32, stub533, wasiConst(errnoNotsup))
	w("path_filestat_set_times", p(i32, i32, i32, i32, i64, i64, i32), r32, stub533, wasiConst(errnoNotsup))
	w("path_link", ps(7), r32, stub533, wasiConst(errnoNotsup))
	w("path_readlink", ps(6), r32, stub533, wasiConst(errnoNotsup))
	w("path_remove_directory", ps(3), r32, stub533, wasiConst(errnoNotsup))
	w("path_rename", ps(6), r32, stub533, wasiConst(errnoNotsup))
	w("path_symlink", ps(5), r32, stub533, wasiConst(errnoNotsup))
	w("path_unlink_file", ps(3), r32, stub533, wasiConst(errnoNotsup))
	w("sock_accept", ps(3), r32, stub533, wasiConst(errnoNosys))
	w("sock_recv", ps(6), r32, stub533, wasiConst(errnoNosys))
	w("sock_send", ps(5), r32, stub533, wasiConst(errnoNosys))
	w("sock_shutdown", ps(2), r32, stub533, wasiConst(errnoNosys))
}

var processStart = time.Now()

// fdWrite implements fd_write (and fd_pwrite, whose offset the caller dropped): fd 1
// becomes an Info line, fd 2 an Error line; the iovecs of one call are joined and one
// trailing newline removed, as CPH does. Stderr is also kept for the VM's death report.
func (vm *VM) fdWrite(s []uint64) uint64 {
	fd, iovs, n, nwritten := uint32(s[0]), uint32(s[1]), uint32(s[2]), uint32(s[3])
	if fd != 1 && fd != 2 {
		return errnoBadf
	}
	var msg []byte
	for i := uint32(0); i < n; i++ {
		ptr, ok1 := vm.mem.ReadUint32Le(iovs + 8*i)
		size, ok2 := vm.mem.ReadUint32Le(iovs + 8*i + 4)
		if !ok1 || !ok2 {
			return errnoInval
		}
		b, ok := vm.mem.Read(ptr, size)
		if !ok {
			return errnoInval
		}
		msg = append(msg, b...)
	}
	if !vm.putU32(nwritten, uint32(len(msg))) {
		return errnoInval
	}
	if fd == 2 {
		vm.keepStderr(msg)
	}
	written := len(msg)
	if written > 0 && msg[written-1] == '\n' {
		msg = msg[:written-1]
	}
	level := Info
	if fd == 2 {
		level = Error
	}
	vm.host.log(vm, level, string(msg))
	return errnoSuccess
}
