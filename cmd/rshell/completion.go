package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newCompletionCmd prints a shell completion script. The scripts call
// back into rshell (cobra's hidden __complete command) for arguments, so
// host and group names come from the config file as it is when Tab is
// pressed.
func newCompletionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script (commands, flags, hosts and @groups of the config)",
		Long: `completion prints a completion script for your shell. Host names and @groups are
completed from the config file when you press Tab.

  bash:  source <(rshell completion bash)     # or save it in /etc/bash_completion.d/rshell
  zsh:   rshell completion zsh > "${fpath[1]}/_rshell"
  fish:  rshell completion fish > ~/.config/fish/completions/rshell.fish`,
		Args:                  cobra.ExactArgs(1),
		ValidArgs:             []string{"bash", "zsh", "fish"},
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return fmt.Errorf("no completion for %q: use bash, zsh or fish", args[0])
		},
	}
}
