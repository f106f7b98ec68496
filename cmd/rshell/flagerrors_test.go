package main

import "testing"

// TestFlagErrors checks that a bad flag says what the flag takes and
// where to read more, for each kind of value, without running anything.
func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--sleep-when-idle=maybe"}, `--sleep-when-idle takes true or false, not "maybe" (see 'rshell serve --help')`},
		{[]string{"serve", "--max-eval-time", "abc"}, `--max-eval-time takes a duration such as 500ms, 10s or 2h, not "abc" (see 'rshell serve --help')`},
		{[]string{"serve", "--max-conns", "x"}, `--max-conns takes a whole number, not "x" (see 'rshell serve --help')`},
		{[]string{"serve", "--max-steps=-1"}, `--max-steps takes a whole number, 0 or more, not "-1" (see 'rshell serve --help')`},
		{[]string{"exec", "--json=maybe", "web", "-e", "1"}, `--json takes true or false, not "maybe" (see 'rshell exec --help')`},
		{[]string{"serve", "--bogus"}, `unknown flag: --bogus (see 'rshell serve --help')`},
		{[]string{"--bogus"}, `unknown flag: --bogus (see 'rshell --help')`},
	} {
		root := newRootCmd()
		root.SetArgs(tc.args)
		err := root.Execute()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v, want %s", tc.args, err, tc.want)
		}
	}
}
