// Package server accepts rshell connections, authenticates them, serves
// their yamux streams and dispatches each request to its session. It
// enforces the server's limits, logs with log/slog, and shuts down
// gracefully.
//
// server imports session and transport. It must never import repl or cmd.
package server
