package wasmhost

// Sockets: docs/proxy-wasm-host.md, WASI. A plugin has none; the Current profile
// links stubs so that modules importing them load (Legacy refuses such modules).

// The socket stubs: NOSYS, always; Current profile only, allowed during _initialize.
//
//	sock_accept(fd, flags, ret_fd) -> errno
//	sock_recv(fd, ri_data, ri_data_len, ri_flags, ret_ro_datalen, ret_ro_flags) -> errno
//	sock_send(fd, si_data, si_data_len, si_flags, ret_so_datalen) -> errno
//	sock_shutdown(fd, how) -> errno
var wasiSockImports = []*hostFunc{
	stubCurrent("sock_accept", ps(3), wasiConst(errnoNosys)),
	stubCurrent("sock_recv", ps(6), wasiConst(errnoNosys)),
	stubCurrent("sock_send", ps(5), wasiConst(errnoNosys)),
	stubCurrent("sock_shutdown", ps(2), wasiConst(errnoNosys)),
}
