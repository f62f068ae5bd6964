package wasmhost

import "encoding/binary"

// Files: docs/proxy-wasm-host.md, WASI. Envoy has no file system for a plugin: fd 1
// and 2 are its log, nothing is preopened, and every other file call fails or does
// nothing.

var wasiFSImports = []*hostFunc{
	fdWrite, fdRead, fdSeek, fdClose, fdFdstatGet, fdFdstatSetFlags, fdPrestatGet,
	fdPrestatDirName, pathOpen,
	// Current profile only
	fdPwrite, fdFilestatGet, pathFilestatGet,
	stubCurrent("fd_advise", types(i32, i64, i64, i32), wasiStub(errnoBadf, true)),
	stubCurrent("fd_allocate", types(i32, i64, i64), wasiStub(errnoBadf, false)),
	stubCurrent("fd_datasync", ps(1), wasiStub(errnoBadf, true)),
	stubCurrent("fd_fdstat_set_rights", types(i32, i64, i64), wasiStub(errnoBadf, false)),
	stubCurrent("fd_filestat_set_size", types(i32, i64), wasiStub(errnoBadf, false)),
	stubCurrent("fd_filestat_set_times", types(i32, i64, i64, i32), wasiStub(errnoBadf, false)),
	stubCurrent("fd_sync", ps(1), wasiStub(errnoBadf, true)),
	stubCurrent("fd_tell", ps(2), wasiStub(errnoBadf, false)),
	stubCurrent("fd_renumber", ps(2), wasiStub(errnoBadf, false)),
	stubCurrent("fd_readdir", types(i32, i32, i32, i64, i32), wasiStub(errnoNotdir, false)),
	stubCurrent("fd_pread", types(i32, i32, i32, i64, i32), wasiStub(errnoBadf, false)),
	stubCurrent("path_create_directory", ps(3), wasiConst(errnoNotsup)),
	stubCurrent("path_filestat_set_times", types(i32, i32, i32, i32, i64, i64, i32), wasiConst(errnoNotsup)),
	stubCurrent("path_link", ps(7), wasiConst(errnoNotsup)),
	stubCurrent("path_readlink", ps(6), wasiConst(errnoNotsup)),
	stubCurrent("path_remove_directory", ps(3), wasiConst(errnoNotsup)),
	stubCurrent("path_rename", ps(6), wasiConst(errnoNotsup)),
	stubCurrent("path_symlink", ps(5), wasiConst(errnoNotsup)),
	stubCurrent("path_unlink_file", ps(3), wasiConst(errnoNotsup)),
}

// fdWrite is wasi fd_write: fd 1 becomes one Info log line per call, fd 2 one Error
// line (the iovecs joined, one trailing newline removed), as cpp-host does. What a
// guest writes to fd 2 is also kept for the report of its VM's death (a Go panic's
// text).
//
//	fd_write(fd, iovs, iovs_len, ret_nwritten) -> errno
//
// Errnos:
//   - SUCCESS: logged; the byte count was written.
//   - BADF: any fd but 1 and 2.
//   - INVAL: iovecs or ret_nwritten outside guest memory.
//
// Linked everywhere; allowed in every window.
var fdWrite = &hostFunc{
	module: moduleWASI, name: "fd_write",
	params: ps(4), results: r32, link: linkedEverywhere, allowed: inInitAndAlloc,
	fn: func(vm *VM, s []uint64) { s[0] = vm.fdWrite(s) },
}

// fdPwrite is wasi fd_pwrite: fd_write with the offset ignored (Current profile only).
//
//	fd_pwrite(fd, iovs, iovs_len, offset i64, ret_nwritten) -> errno
//
// Errnos: as fd_write. Linked in the Current profile only; allowed during _initialize.
var fdPwrite = stubCurrent("fd_pwrite", types(i32, i32, i32, i64, i32), func(vm *VM, s []uint64) {
	s[3] = s[4] // drop the offset: fdWrite reads ret_nwritten from s[3]
	s[0] = vm.fdWrite(s)
})

// fdRead is wasi fd_read: there is nothing to read.
//
//	fd_read(fd, iovs, iovs_len, ret_nread) -> errno
//
// Errnos: NOSYS, always. Linked everywhere; callbacks only.
var fdRead = &hostFunc{
	module: moduleWASI, name: "fd_read",
	params: ps(4), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: wasiConst(errnoNosys),
}

// fdSeek is wasi fd_seek: cpp-host logs the call at trace and claims success without
// writing the new offset.
//
//	fd_seek(fd, offset i64, whence, ret_offset) -> errno
//
// Errnos: SUCCESS, always. Linked everywhere; callbacks only.
var fdSeek = &hostFunc{
	module: moduleWASI, name: "fd_seek",
	params: types(i32, i64, i32, i32), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		vm.host.log(vm, Trace, "wasi_unstable fd_seek")
		s[0] = errnoSuccess
	},
}

// fdClose is wasi fd_close: cpp-host logs the call at trace and claims success.
//
//	fd_close(fd) -> errno
//
// Errnos: SUCCESS, always. Linked everywhere; callbacks only.
var fdClose = &hostFunc{
	module: moduleWASI, name: "fd_close",
	params: ps(1), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		vm.host.log(vm, Trace, "wasi_unstable fd_close")
		s[0] = errnoSuccess
	},
}

// fdFdstatGet is wasi fd_fdstat_get: fd 1 and 2 are character devices the guest may
// write (flags 0, so Go's os package keeps them blocking and arms no poller).
//
//	fd_fdstat_get(fd, ret_fdstat) -> errno
//
// Errnos:
//   - SUCCESS: the 24-byte fdstat was written.
//   - BADF: any fd but 1 and 2.
//   - INVAL: ret_fdstat outside guest memory.
//
// Linked everywhere; allowed during _initialize.
var fdFdstatGet = &hostFunc{
	module: moduleWASI, name: "fd_fdstat_get",
	params: ps(2), results: r32, link: linkedEverywhere, allowed: inInit,
	fn: func(vm *VM, s []uint64) {
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
	},
}

// fdFdstatSetFlags is wasi fd_fdstat_set_flags (both profiles): NOSYS.
//
//	fd_fdstat_set_flags(fd, flags) -> errno
//
// Errnos: NOSYS, always. Linked everywhere; allowed during _initialize.
var fdFdstatSetFlags = &hostFunc{
	module: moduleWASI, name: "fd_fdstat_set_flags",
	params: ps(2), results: r32, link: linkedEverywhere, allowed: inInit,
	fn: wasiConst(errnoNosys),
}

// fdPrestatGet is wasi fd_prestat_get: no directory is preopened, so a guest's os
// package finds none and stops probing at fd 3.
//
//	fd_prestat_get(fd, ret_prestat) -> errno
//
// Errnos: BADF, always. Linked everywhere; allowed during _initialize.
var fdPrestatGet = &hostFunc{
	module: moduleWASI, name: "fd_prestat_get",
	params: ps(2), results: r32, link: linkedEverywhere, allowed: inInit,
	fn: wasiConst(errnoBadf),
}

// fdPrestatDirName is wasi fd_prestat_dir_name.
//
//	fd_prestat_dir_name(fd, path, path_len) -> errno
//
// Errnos: NOSYS, always. Linked everywhere; allowed during _initialize.
var fdPrestatDirName = &hostFunc{
	module: moduleWASI, name: "fd_prestat_dir_name",
	params: ps(3), results: r32, link: linkedEverywhere, allowed: inInit,
	fn: wasiConst(errnoNosys),
}

// fdFilestatGet is wasi fd_filestat_get (Current profile only).
//
//	fd_filestat_get(fd, ret_filestat) -> errno
//
// Errnos: BADF, always. Linked in the Current profile only; allowed during _initialize.
var fdFilestatGet = stubCurrent("fd_filestat_get", ps(2), wasiConst(errnoBadf))

// pathOpen is wasi path_open: there are no files.
//
//	path_open(dirfd, dirflags, path, path_len, oflags, rights_base i64, rights_inheriting i64,
//	          fdflags, ret_fd) -> errno
//
// Errnos: NOENT, always. Linked everywhere; callbacks only.
var pathOpen = &hostFunc{
	module: moduleWASI, name: "path_open",
	params: types(i32, i32, i32, i32, i32, i64, i64, i32, i32), results: r32,
	link: linkedEverywhere, allowed: callbacksOnly,
	fn: wasiConst(errnoNoent),
}

// pathFilestatGet is wasi path_filestat_get (Current profile only).
//
//	path_filestat_get(dirfd, flags, path, path_len, ret_filestat) -> errno
//
// Errnos: NOTSUP, always. Linked in the Current profile only; allowed during
// _initialize.
var pathFilestatGet = stubCurrent("path_filestat_get", ps(5), wasiConst(errnoNotsup))

// The remaining Current-only stubs (in wasiFSImports) answer SUCCESS for fd 1/2 where
// that makes sense (fd_advise, fd_datasync, fd_sync) and otherwise BADF (fd_*),
// NOTDIR (fd_readdir) or NOTSUP (path_*); Current profile only, allowed during
// _initialize.

// fdWrite implements fd_write and fd_pwrite (whose offset the caller dropped).
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
