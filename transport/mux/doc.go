// Package mux carries many byte streams over one connection, in yamux's
// frame format (12-byte headers: data, window update, ping, go-away;
// SYN/ACK/FIN/RST flags; a 256 KiB initial window per stream), so the
// wire stays what PROTOCOL.md describes.
//
// It replaces hashicorp/yamux's session, whose design costs rshell where
// its benchmarks look: every frame goes through a writer goroutine (a
// hand-off and a wake-up per write, and two writes per frame), and an
// idle connection holds a reader, a writer and a 4 KiB read buffer. Here
// the goroutine that writes a frame writes it, in one Write; the only
// goroutine a session keeps is its reader (plus a keepalive ticker if
// asked for); a server may take each new stream in a callback instead of
// a goroutine blocked in Accept; and a write that times out ends the
// session, so the peer never waits on half a frame (yamux's GO-2025-3408).
//
// It must not import any other rshell package.
package mux
