// Command rshell is a remote REPL: `rshell serve` on each host, `rshell
// connect HOST...` on the workstation, `rshell` alone for a shell on an
// embedded local server. main stays thin; the work is in repl and server.
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func main() {
	keepMonitorAwake(os.Args)
	os.Exit(run(os.Args[1:]))
}

// exitError carries an exit status out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.1.0"
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	if ee, ok := err.(exitError); ok {
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "rshell:", err)
	return 2
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "rshell",
		Short: "A remote REPL: live Starlark namespaces on many hosts from one prompt",
		Long: `rshell keeps a live Starlark namespace on each host you reach. Run 'rshell serve'
on every host and 'rshell connect HOST...' on your workstation. With no arguments,
rshell opens the shell on an embedded local server (host 'local').`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	root.SetFlagErrorFunc(flagError)
	addShellFlags(root)
	root.RunE = runLocalShell
	root.AddCommand(newServeCmd(), withTargets(newConnectCmd()), newExecCmd(), newCompletionCmd())
	return root
}
