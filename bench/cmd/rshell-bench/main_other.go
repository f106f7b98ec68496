//go:build !linux

// Command rshell-bench measures rshell against RPyC side by side. It pins
// processes to CPUs and reads /proc, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "rshell-bench runs on Linux only (it pins processes with taskset and reads /proc)")
	os.Exit(2)
}
