// Package repl is the terminal side of rshell: readline, prompts, chunking,
// the :command table, rendering values and tracebacks, fan-out display. It
// talks to hosts only through transport.Client and must never import session
// or server.
package repl
