//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// installScript is the project's installer of the harness's own needs
// (python3-rpyc, taskset), relative to the module root.
const installScript = "scripts/install-bench-deps.sh"

// findInstallScript looks for installScript in dir and each directory above
// it, as `go run ./bench/cmd/rshell-bench` may be started anywhere in the
// checkout.
func findInstallScript(dir string) (string, error) {
	for i := 0; i < 64; i++ {
		p := filepath.Join(dir, installScript)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			break
		}
		dir = up
	}
	return "", fmt.Errorf("%s not found in this directory or any above it (run the harness from the rshell checkout)", installScript)
}

// installDeps runs the project's installer when RPyC or taskset is missing,
// so that one command gives the side-by-side table on a fresh machine. The
// installer's output goes to stderr; it needs root or sudo for apt-get.
func installDeps(ctx context.Context) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	script, err := findInstallScript(wd)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "installing what the harness needs: %s\n", script)
	cmd := exec.CommandContext(ctx, script)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%s failed (exit status %d; it needs root or sudo for apt-get)", script, ee.ExitCode())
		}
		return fmt.Errorf("%s: %w", script, err)
	}
	tasksetPath, _ = exec.LookPath("taskset")
	return nil
}
