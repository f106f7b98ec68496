//go:build !windows

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rshell/rshell/server"
)

// execFleet starts n plaintext servers in-process and writes a config file
// naming them web01…webNN in group @web, in a private XDG config dir.
func execFleet(t *testing.T, n int) (configDir string, stop []func()) {
	t.Helper()
	home := t.TempDir()
	configDir = filepath.Join(home, "config")
	dir := filepath.Join(configDir, "rshell")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	tok := []byte(strings.Repeat("x", 32))
	if err := os.WriteFile(filepath.Join(dir, "token"), tok, 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("[defaults]\ntoken_file = \"token\"\nplaintext = true\n")
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(server.Config{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ln) }()
		f := func() { srv.Close(); ln.Close(); <-done } // a Serve that starts after Close leaves ln open
		t.Cleanup(f)
		stop = append(stop, f)
		fmt.Fprintf(&b, "\n[[hosts]]\nname = \"web%02d\"\naddress = %q\n", i+1, ln.Addr().String())
	}
	fmt.Fprintf(&b, "\n[groups]\nweb = [\"web[01-%02d]\"]\nfirst = [\"web01\", \"web02\"]\n", n)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return configDir, stop
}

// execJSONLine is one line of `rshell exec --json`.
type execJSONLine struct {
	Host       string   `json:"host"`
	Address    string   `json:"address"`
	OK         bool     `json:"ok"`
	Status     string   `json:"status"`
	Value      any      `json:"value"`
	Output     string   `json:"output"`
	Error      *string  `json:"error"`
	DurationMS *float64 `json:"duration_ms"`
}

// TestExecStatus runs the exec command in-process: its exit statuses.
func TestExecStatus(t *testing.T) {
	configDir, stop := execFleet(t, 50)
	t.Setenv("XDG_CONFIG_HOME", configDir)
	t.Setenv("RSHELL_TOKEN_FILE", "")
	cfg := filepath.Join(configDir, "rshell", "config.toml")
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"exec", "@web", "-e", "1 + 1", "--json"}, 0},
		{[]string{"exec", "web[01-05]", "-e", "1 // 0"}, 1},
		{[]string{"exec", "@first", "--config", cfg, "-e", "None"}, 0},
		{[]string{"exec", "@nope", "-e", "1"}, 2},
		{[]string{"exec", "@web", "-e", "1", "-f", "x.star"}, 2},
	}
	for _, c := range cases {
		if got := run(c.args); got != c.want {
			t.Errorf("rshell %s: status %d, want %d", strings.Join(c.args, " "), got, c.want)
		}
	}
	stop[7]()
	if got := run([]string{"exec", "@web", "-e", "1 // 0"}); got != 2 {
		t.Errorf("with a host down: status %d, want 2", got)
	}
}

// TestExecBinary runs the built binary: JSON lines on stdout, gathered
// text, and completion of hosts and groups from the config.
func TestExecBinary(t *testing.T) {
	binary(t) // skips in -short mode before the fleet starts
	configDir, stop := execFleet(t, 50)
	env := append(testEnv(t), "XDG_CONFIG_HOME="+configDir)
	runBin := func(stdin string, args ...string) (string, string, int) {
		return runBinary(t, env, stdin, args...)
	}
	out, errs, code := runBin("x = 6\nprint('hi')\nx * 7\n", "exec", "@web", "--json")
	if code != 0 {
		t.Fatalf("status %d: %s", code, errs)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	hosts := map[string]bool{}
	for sc.Scan() {
		var j execJSONLine
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("%v: %q", err, sc.Text())
		}
		if !j.OK || j.Value != float64(42) || j.Output != "hi\n" || j.Error != nil || j.DurationMS == nil {
			t.Errorf("line %s", sc.Text())
		}
		hosts[j.Host] = true
	}
	if len(hosts) != 50 {
		t.Errorf("%d hosts", len(hosts))
	}
	out, errs, code = runBin("", "exec", "web[01-10]", "-e", "'same'")
	if code != 0 || out != "web[01-10] (10): \"same\"\n" || !strings.HasPrefix(errs, "10 ok") {
		t.Errorf("gathered: %d %q %q", code, out, errs)
	}
	stop[2]()
	out, errs, code = runBin("", "exec", "web[01-05]", "-e", "7")
	if code != 2 || out != "web[01-02,04-05] (4): 7\n" || !strings.Contains(errs, "web03: unreachable (connection refused") {
		t.Errorf("partial: %d %q %q", code, out, errs)
	}
	// completion scripts, and host and group names from the config
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out, _, code := runBin("", "completion", sh); code != 0 || !strings.Contains(out, "rshell") || len(out) < 1000 {
			t.Errorf("completion %s: %d, %d bytes", sh, code, len(out))
		}
	}
	out, _, _ = runBin("", "__complete", "connect", "@")
	if !strings.Contains(out, "@web\t") || !strings.Contains(out, "@first\t") {
		t.Errorf("groups not completed: %q", out)
	}
	out, _, _ = runBin("", "__complete", "exec", "web01,web1")
	if !strings.Contains(out, "web01,web10\t") || strings.Contains(out, "web09") {
		t.Errorf("list not completed: %q", out)
	}
}
