package session

import (
	"os"
	"runtime"
)

// fallbackUname describes the host from what Go knows, where uname(2) is
// missing or failed.
func fallbackUname() unameInfo {
	host, _ := os.Hostname()
	return unameInfo{sysname: runtime.GOOS, nodename: host, machine: runtime.GOARCH}
}
