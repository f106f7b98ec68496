package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rshell/rshell/inventory"
	"github.com/rshell/rshell/repl"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// addTargetFlags adds the inventory flags shared by the shell and exec.
func addTargetFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.String("config", "", "hosts and groups file (default: "+repl.DefaultConfigPath()+")")
	fl.Int("fanout", 0, fmt.Sprintf("hosts to connect to at once (default: the config file's fanout, else %d)", repl.DefaultFanout))
}

func flagString(fl *pflag.FlagSet, name string) string {
	v, _ := fl.GetString(name)
	return v
}

func flagInt(fl *pflag.FlagSet, name string) int {
	v, _ := fl.GetInt(name)
	return v
}

func newExecCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec TARGET (-e CODE | -f FILE.star | < FILE)",
		Short: "Run one chunk on one or many hosts at once and exit",
		Long: `exec runs one chunk of Starlark on every host of TARGET at once, prints the results
and exits. TARGET is a host, a comma-separated list of hosts or addresses, a range
(web[1-3,5], db[01-10]) or @GROUP, with hosts and groups from the config file
(` + repl.DefaultConfigPath() + `, or --config). The code comes from -e, from -f FILE,
or from stdin.

Results are gathered: hosts with the same result and output are shown once under
their folded names (web[1-3,5] (4): 42), errors per host, then a line of counts on
stderr. With --json, stdout has one JSON object per host, as each finishes:

  {"host":"web1","address":"10.0.0.1:18812","ok":true,"status":"ok","value":42,
   "repr":"42","output":"","error":null,"duration_ms":0.82}

status is ok, failed, unreachable or cancelled; value is the result as JSON (null
when it has none; value_error then says why, and repr has it as Starlark).

Exit status: 0 when every host succeeded, 1 when the chunk failed (or was
cancelled) on some host, 2 when some host could not be reached or the target is
bad, 130 after Ctrl-C.`,
		Example: `  rshell exec @web -e 'os.getcwd()'
  rshell exec web1,web3 -f check.star --json
  echo 'sys.version' | rshell exec 'db[01-10]' --timeout 5s`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("exec needs one TARGET — e.g. rshell exec @web -e '1 + 1'")
			}
			return nil
		},
		ValidArgsFunction: completeTargetArgs,
		RunE:              runExec,
	}
	addShellFlags(cmd)
	fl := cmd.Flags()
	_ = fl.MarkHidden("history-file")
	fl.StringP("eval", "e", "", "the code to run")
	fl.StringP("file", "f", "", "a .star file to run (tracebacks name it)")
	fl.Bool("json", false, "print one JSON object per host instead of gathered text")
	return cmd
}

func runExec(cmd *cobra.Command, args []string) error {
	setup, err := newShellSetup(cmd)
	if err != nil {
		return err
	}
	fl := cmd.Flags()
	code, file := flagString(fl, "eval"), flagString(fl, "file")
	jsonOut, _ := fl.GetBool("json")
	job := repl.Job{JSON: jsonOut}
	switch {
	case fl.Changed("eval") && file != "":
		return errors.New("give -e CODE or -f FILE, not both")
	case fl.Changed("eval"):
		job.Src = code
	case file != "":
		src, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		job.Src, job.File = string(src), filepath.Base(file)
	default:
		if isTerminal(os.Stdin) {
			return errors.New("no code: give -e CODE, -f FILE.star, or pipe it on stdin")
		}
		src, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		job.Src = string(src)
	}
	if strings.TrimSpace(job.Src) == "" {
		return errors.New("no code to run")
	}
	cfg := setup.cfg
	cfg.Target = args[0]
	cfg.Interactive, cfg.HistoryPath = false, ""
	if c := repl.Exec(cmd.Context(), cfg, job); c != 0 {
		return exitError{c}
	}
	return nil
}

// withTargets lets connect take a target of the config file: one argument
// that is a host of the config, a list (web1,web3), a range (web[1-3]) or
// @GROUP — or several arguments naming any of these, which become one
// target. Other arguments (addresses) keep connect's plain behaviour.
func withTargets(cmd *cobra.Command) *cobra.Command {
	plain := cmd.RunE
	cmd.ValidArgsFunction = completeTargetArgs
	cmd.Use = "connect (HOST[:PORT] | NAME=HOST[:PORT] | @GROUP | HOST,HOST... | web[1-3])..."
	cmd.Long += `

With a config file (` + repl.DefaultConfigPath() + `, or --config), HOST may be a host
it names, and the target may be several hosts at once: @GROUP, a list (web1,web3)
or a range (web[1-3,5]). Each chunk then runs on all of them, and the results are
gathered (:gather, :diff, :help).`
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if !isTarget(c, args) {
			return plain(c, args)
		}
		setup, err := newShellSetup(c)
		if err != nil {
			return err
		}
		setup.cfg.Target = strings.Join(args, ",")
		return runShell(c.Context(), setup.cfg)
	}
	return cmd
}

// isTarget reports whether connect's arguments name hosts of the config
// or several hosts at once.
func isTarget(cmd *cobra.Command, args []string) bool {
	inv := loadInventory(cmd)
	for _, a := range args {
		if inventory.IsMulti(a) || inv.Host(a) != nil {
			return true
		}
	}
	return false
}

// loadInventory reads the config file for completion and argument
// parsing; errors are left for the shell to report.
func loadInventory(cmd *cobra.Command) *inventory.Inventory {
	path := flagString(cmd.Flags(), "config")
	var inv *inventory.Inventory
	var err error
	if path != "" {
		inv, err = inventory.Load(path)
	} else {
		inv, err = inventory.LoadOptional(repl.DefaultConfigPath())
	}
	if err != nil {
		return inventory.Empty()
	}
	return inv
}

// completeTargetArgs completes host names and @groups from the config,
// after the last comma of a list.
func completeTargetArgs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if cmd.Name() == "exec" && len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	inv := loadInventory(cmd)
	head, word := "", toComplete
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		head, word = toComplete[:i+1], toComplete[i+1:]
	}
	var out []string
	if strings.HasPrefix(word, "@") || word == "" {
		for _, g := range inv.GroupNames() {
			if strings.HasPrefix("@"+g, word) {
				n, _ := inv.Group(g)
				out = append(out, fmt.Sprintf("%s@%s\tgroup of %d", head, g, len(n)))
			}
		}
	}
	for _, h := range inv.Hosts() {
		if strings.HasPrefix(h.Name, word) {
			out = append(out, head+h.Name+"\t"+h.Addr)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace*boolDirective(len(out) == 1 && strings.HasSuffix(toComplete, ","))
}

func boolDirective(b bool) cobra.ShellCompDirective {
	if b {
		return 1
	}
	return 0
}
