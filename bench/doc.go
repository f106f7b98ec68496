// Package bench holds rshell's benchmarks: Go benchmarks of the hot paths
// that cross the transport (bench_test.go) and, in cmd/rshell-bench, the
// harness that measures rshell side by side with RPyC classic. See README.md.
package bench
