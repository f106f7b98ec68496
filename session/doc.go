// Package session is one remote namespace of rshell: the Starlark globals
// and the one thread that evaluates a client's chunks in order, the
// built-in modules (sys, os, time, math, json, struct), evaluation with
// cancellation, deadlines and step/output/result budgets, structured
// tracebacks that carry the remote source line, and the conversion between
// starlark.Value and the replicated value of the wire (Encode, ToStarlark).
//
// The server owns sessions and drives them; this package knows nothing of
// connections. It imports only transport (for Value, ErrorInfo, NameInfo
// and Encoder) from this project — never server, repl or cmd, so that the
// import graph keeps pointing one way.
package session
