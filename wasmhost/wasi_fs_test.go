package wasmhost

import (
	"encoding/binary"
	"testing"
)

const wasi = "wasi_snapshot_preview1"

// fdWriteArgs puts msg in guest memory as one iovec and returns fd_write's iovs,
// iovs_len and nwritten arguments.
func fdWriteArgs(t *testing.T, vm *VM, msg string) (iovs, n, nwritten uint64) {
	t.Helper()
	p, l := guestData(t, vm, msg)
	iov := make([]byte, 8)
	binary.LittleEndian.PutUint32(iov, uint32(p))
	binary.LittleEndian.PutUint32(iov[4:], uint32(l))
	ip, _ := guestData(t, vm, string(iov))
	return ip, 1, guestBuf(t, vm, 4)
}

// fd 1 and 2 are the log (one line per call, trailing newline dropped); every other
// file call answers cpp-host's errno.
func TestWASIFiles(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	iovs, n, nw := fdWriteArgs(t, vm, "to stdout\n")
	eiovs, en, enw := fdWriteArgs(t, vm, "to stderr")
	buf := guestBuf(t, vm, 64)
	cases := []struct {
		name string
		fn   string
		args []uint64
		want uint32
	}{
		{"fd_write stdout", "fd_write", []uint64{1, iovs, n, nw}, errnoSuccess},
		{"fd_write stderr", "fd_write", []uint64{2, eiovs, en, enw}, errnoSuccess},
		{"fd_write fd 3", "fd_write", []uint64{3, iovs, n, nw}, errnoBadf},
		{"fd_write iovec outside memory", "fd_write", []uint64{1, outside, 1, nw}, errnoInval},
		{"fd_pwrite stdout", "fd_pwrite", []uint64{1, iovs, n, 99, nw}, errnoSuccess},
		{"fd_read", "fd_read", []uint64{0, iovs, n, nw}, errnoNosys},
		{"fd_seek", "fd_seek", []uint64{1, 0, 0, buf}, errnoSuccess},
		{"fd_close", "fd_close", []uint64{1}, errnoSuccess},
		{"fd_fdstat_get stdout", "fd_fdstat_get", []uint64{1, buf}, errnoSuccess},
		{"fd_fdstat_get stdin", "fd_fdstat_get", []uint64{0, buf}, errnoBadf},
		{"fd_fdstat_set_flags", "fd_fdstat_set_flags", []uint64{1, 0}, errnoNosys},
		{"fd_prestat_get", "fd_prestat_get", []uint64{3, buf}, errnoBadf},
		{"fd_prestat_dir_name", "fd_prestat_dir_name", []uint64{3, buf, 8}, errnoNosys},
		{"path_open", "path_open", []uint64{3, 0, buf, 1, 0, 0, 0, 0, buf}, errnoNoent},
		{"fd_filestat_get", "fd_filestat_get", []uint64{1, buf}, errnoBadf},
		{"path_filestat_get", "path_filestat_get", []uint64{3, 0, buf, 1, buf}, errnoNotsup},
		{"fd_sync stdout", "fd_sync", []uint64{1}, errnoSuccess},
		{"fd_sync fd 5", "fd_sync", []uint64{5}, errnoBadf},
		{"fd_tell", "fd_tell", []uint64{1, buf}, errnoBadf},
		{"fd_readdir", "fd_readdir", []uint64{3, buf, 8, 0, buf}, errnoNotdir},
		{"path_unlink_file", "path_unlink_file", []uint64{3, buf, 1}, errnoNotsup},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := hostcall(t, vm, nil, wasi, tc.fn, tc.args...); got != tc.want {
				t.Fatalf("%s = %d, want %d", tc.fn, got, tc.want)
			}
		})
	}
	if got := readU32(t, vm, nw); got != 10 {
		t.Errorf("nwritten = %d, want 10", got)
	}
	lines := map[string]LogLevel{}
	for _, e := range h.Logs() {
		lines[e.Message] = e.Level
	}
	if l, ok := lines["to stdout"]; !ok || l != Info {
		t.Errorf("stdout line: %v %v, want one Info line without the newline", l, ok)
	}
	if l, ok := lines["to stderr"]; !ok || l != Error {
		t.Errorf("stderr line: %v %v, want an Error line", l, ok)
	}
	hostcall(t, vm, nil, wasi, "fd_fdstat_get", 2, buf)
	if ft := readU32(t, vm, buf) & 0xff; ft != 2 {
		t.Errorf("fd 2 filetype %d, want 2 (character device)", ft)
	}
}
