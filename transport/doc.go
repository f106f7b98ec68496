// Package transport is the wire of rshell, both ends: dialing and
// listening helpers, TLS and certificate pinning, the token handshake, the
// yamux configuration, frames and message types (messages.go, described in
// PROTOCOL.md), the replicated Value tree and its CBOR encoding, and Client,
// one connection to one host.
//
// transport knows nothing of Starlark's interpreter: it must never import
// session, server, repl or cmd, nor go.starlark.net.
package transport
