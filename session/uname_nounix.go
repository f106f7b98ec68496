//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || solaris || aix)

package session

func uname() unameInfo { return fallbackUname() }
