package inhost

import "syscall"

// cpuTime is the CPU time the process has used (user and system, all threads), in ns.
// Per request it is a steadier figure than wall time when other processes share
// the machine, though it also counts the host's GC.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
