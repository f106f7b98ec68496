package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rshell/rshell/transport"
)

// `rshell exec` ends the sessions it made once its chunk has run, ok or
// failed: the servers do not keep them for the session TTL.
func TestExecEndsItsSessions(t *testing.T) {
	configDir, _ := execFleet(t, 3)
	t.Setenv("XDG_CONFIG_HOME", configDir)
	t.Setenv("RSHELL_TOKEN_FILE", "")
	if got := run([]string{"exec", "@web", "-e", "x = 1\nx"}); got != 0 {
		t.Fatalf("exec: status %d", got)
	}
	if got := run([]string{"exec", "@web", "-e", "1 // 0"}); got != 1 {
		t.Fatalf("exec of a failing chunk: status %d", got)
	}
	cfg, err := os.ReadFile(filepath.Join(configDir, "rshell", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	addrs := regexp.MustCompile(`address = "([^"]+)"`).FindAllStringSubmatch(string(cfg), -1)
	if len(addrs) != 3 {
		t.Fatalf("addresses in the config: %q", addrs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, a := range addrs {
		c, err := transport.Dial(ctx, a[1], transport.Options{Token: []byte(strings.Repeat("x", 32)), Plaintext: true})
		if err != nil {
			t.Fatal(err)
		}
		var list []transport.SessionInfo
		// A round trip per try, at most 500: exec's connections may still
		// be closing on the server.
		for range 500 {
			if list, err = c.Sessions(ctx); err != nil {
				t.Fatal(err)
			}
			if len(list) == 1 {
				break
			}
		}
		c.Close()
		if len(list) != 1 || !list[0].Mine {
			t.Fatalf("%s still holds exec's sessions: %+v", a[1], list)
		}
	}
}
