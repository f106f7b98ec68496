package server

import "syscall"

// cedeCPU lets any thread the kernel has queued on this CPU run before
// the calling one goes on (sched_yield); with none queued it returns at
// once. It is a raw system call: like QuietConn's, it does not wake the
// runtime's monitor thread.
func cedeCPU() {
	syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
}
