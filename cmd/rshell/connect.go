package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rshell/rshell/repl"
	"github.com/spf13/cobra"
)

func newConnectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connect HOST[:PORT] [NAME=HOST[:PORT]]...",
		Short: "Open the shell on one or more rshell servers",
		Long: `connect opens a shell on each HOST (default port 18812); the first one is current.
NAME=HOST[:PORT] gives a host a short name for the prompt and for :use.

On a terminal, each chunk you type runs on the current host; :help lists the commands
(:use, :load, :copy...). With stdin not a terminal, connect reads chunks from it (a
block ends at a blank line), prints each non-None result on stdout and print() output
as it comes, tracebacks on stderr, and exits 1 if any chunk failed:

  printf 'x = 21\nx *= 2\nx\n' | rshell connect web1

The token is read from --token-file, else $RSHELL_TOKEN_FILE, else the default token
file of a server on this machine. The server's certificate is pinned on first use
(as ssh does): you are asked to confirm it on a terminal; otherwise pass
--trust-new-host, or --fingerprint with the fingerprint 'rshell serve' printed.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("connect needs at least one HOST[:PORT] — e.g. rshell connect web1")
			}
			return nil
		},
		RunE: runConnect,
	}
	addShellFlags(cmd)
	cmd.Flags().String("ns", "", "attach to the shared namespace NAME on each host (seen by every client that names it)")
	return cmd
}

func runConnect(cmd *cobra.Command, args []string) error {
	setup, err := newShellSetup(cmd)
	if err != nil {
		return err
	}
	if ns, _ := cmd.Flags().GetString("ns"); ns != "" {
		setup.opts.NS = ns // the hosts named here; :connect hosts get their own sessions
	}
	seen := map[string]bool{}
	for _, a := range args {
		name, addr := "", a
		if i := strings.Index(a, "="); i >= 0 {
			name, addr = a[:i], a[i+1:]
			if name == "" || addr == "" {
				return fmt.Errorf("%q: expected NAME=HOST[:PORT]", a)
			}
		}
		if addr == "" {
			return errors.New("empty host address")
		}
		if name != "" {
			if seen[name] {
				return fmt.Errorf("two hosts are named %s", name)
			}
			seen[name] = true
		}
		setup.cfg.Hosts = append(setup.cfg.Hosts, repl.HostSpec{Name: name, Addr: addr, Options: setup.opts})
	}
	if fp, _ := cmd.Flags().GetString("fingerprint"); fp != "" && len(args) > 1 {
		return errors.New("--fingerprint names one server's certificate: give one host with it")
	}
	return runShell(cmd.Context(), setup.cfg)
}
