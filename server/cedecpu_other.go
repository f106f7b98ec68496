//go:build !linux

package server

// cedeCPU is a no-op here: the kernel behaviour it answers (see
// cedecpu_linux.go) was measured on Linux only.
func cedeCPU() {}
