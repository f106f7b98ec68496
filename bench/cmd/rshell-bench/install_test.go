//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindInstallScriptFromBelow(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// This package's directory is bench/cmd/rshell-bench: the script is
	// three levels up.
	got, err := findInstallScript(wd)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs(filepath.Join("..", "..", "..", installScript))
	if got != want {
		t.Fatalf("found %s, want %s", got, want)
	}
}

func TestFindInstallScriptOutsideTheCheckout(t *testing.T) {
	_, err := findInstallScript(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "run the harness from the rshell checkout") {
		t.Fatalf("got %v, want an error saying where to run the harness", err)
	}
}

// TestInstallDepsLeavesRPyCUsable runs the real installer (it installs
// only what is missing, so on a machine set up by scripts/install-deps.sh
// it changes nothing) and checks the harness then finds RPyC and taskset.
func TestInstallDepsLeavesRPyCUsable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs apt-get when something is missing")
	}
	t.Chdir("..") // anywhere in the checkout
	if err := installDeps(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &harness{}
	h.findRPyC(context.Background())
	if h.rpycServer == "" {
		t.Fatalf("after the installer: %s", h.rpycInfo)
	}
	if tasksetPath == "" {
		t.Fatal("after the installer: taskset not found")
	}
}
