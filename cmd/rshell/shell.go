package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rshell/rshell/history"
	"github.com/rshell/rshell/repl"
	"github.com/rshell/rshell/transport"
	"github.com/spf13/cobra"
)

// addShellFlags adds the flags of the interactive shell (and of the hosts
// it connects to) to cmd: the root command and connect share them.
func addShellFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.String("token-file", "", "token file proving who you are (default: $RSHELL_TOKEN_FILE, then "+transport.DefaultTokenFile()+" if it exists)")
	fl.Duration("timeout", 0, "deadline for each chunk, e.g. 30s (default: none; change it in the shell with :timeout)")
	fl.Duration("connect-timeout", 15*time.Second, "give up on a host that does not answer within this long (a shorter --timeout also bounds it)")
	fl.String("color", "auto", "color output: auto (only on a terminal, and not when NO_COLOR is set), always or never")
	fl.String("history-file", "", "history file (default: "+defaultHistoryPath()+"); history is kept only when stdin is a terminal")
	fl.Bool("raw-output", false, "pass control characters in remote output to the terminal as they are (default: shown escaped)")
	fl.String("fingerprint", "", "accept only the server certificate with this fingerprint (sha256:..., shown by 'rshell serve')")
	fl.Bool("trust-new-host", false, "trust and pin a server certificate seen for the first time without asking")
	fl.String("tls-ca", "", "verify servers against this CA (PEM) instead of pinning their certificates")
	fl.String("tls-client-cert", "", "present this client certificate (PEM) to servers started with --client-ca")
	fl.String("tls-client-key", "", "the key (PEM) for --tls-client-cert")
	fl.Bool("insecure-plaintext", false, "connect without TLS (only to servers started with --insecure-plaintext)")
	fl.String("known-hosts", "", "file of pinned server certificates (default: "+transport.DefaultKnownHosts()+")")
	addTargetFlags(cmd) // --config, --fanout (exec.go)
	fl.Duration("keepalive", 0, "interval of keepalive pings; a dead connection is noticed within two intervals (default 15s)")
	_ = fl.MarkHidden("keepalive")
}

func defaultHistoryPath() string {
	p, err := history.DefaultPath()
	if err != nil {
		return "none"
	}
	return p
}

// shellSetup is what the shell flags decide.
type shellSetup struct {
	cfg  repl.Config
	opts transport.Options // for hosts named on the command line and :connect
}

// newShellSetup reads the shell flags of cmd.
func newShellSetup(cmd *cobra.Command) (*shellSetup, error) {
	fl := cmd.Flags()
	tokenFile, _ := fl.GetString("token-file")
	timeout, _ := fl.GetDuration("timeout")
	colorMode, _ := fl.GetString("color")
	histFile, _ := fl.GetString("history-file")
	raw, _ := fl.GetBool("raw-output")
	fp, _ := fl.GetString("fingerprint")
	trustNew, _ := fl.GetBool("trust-new-host")
	plaintext, _ := fl.GetBool("insecure-plaintext")
	knownHosts, _ := fl.GetString("known-hosts")

	if timeout < 0 {
		return nil, fmt.Errorf("--timeout must not be negative, got %s", timeout)
	}
	connectTimeout, _ := fl.GetDuration("connect-timeout")
	if connectTimeout <= 0 {
		return nil, fmt.Errorf("--connect-timeout must be positive, got %s", connectTimeout)
	}
	stdinTTY := isTerminal(os.Stdin)
	stdoutTTY := isTerminal(os.Stdout)
	var color bool
	switch colorMode {
	case "auto":
		_, noColor := os.LookupEnv("NO_COLOR")
		color = stdoutTTY && !noColor && os.Getenv("TERM") != "dumb"
	case "always":
		color = true
	case "never":
		color = false
	default:
		return nil, fmt.Errorf("--color must be auto, always or never, not %q", colorMode)
	}
	if fp != "" && !strings.HasPrefix(fp, "sha256:") {
		return nil, fmt.Errorf("--fingerprint must look like sha256:BASE64 (as 'rshell serve' prints it), not %q", fp)
	}
	if plaintext && (fp != "" || trustNew) {
		return nil, errors.New("--insecure-plaintext has no certificate to check: drop --fingerprint and --trust-new-host")
	}

	opts := transport.Options{Plaintext: plaintext, Agent: "rshell " + version()}
	tok, err := findToken(tokenFile)
	if err != nil {
		return nil, err
	}
	opts.Token = tok
	if knownHosts == "" {
		knownHosts = transport.DefaultKnownHosts()
	}
	opts.Trust = transport.TrustOptions{KnownHosts: knownHosts, Fingerprint: fp, TrustNewHost: trustNew}
	if err := clientTLSFlags(cmd, &opts.Trust); err != nil {
		return nil, err
	}
	if ka, _ := fl.GetDuration("keepalive"); ka > 0 {
		// A keepalive ping gets the same time to be answered, so a silent
		// connection is declared lost within two intervals.
		opts.Mux.KeepAlive, opts.Mux.WriteTimeout = ka, ka
	} else if ka < 0 {
		return nil, fmt.Errorf("--keepalive must not be negative, got %s", ka)
	}

	interactive := stdinTTY && stdoutTTY
	cfg := repl.Config{
		InventoryPath:   flagString(fl, "config"),
		Fanout:          flagInt(fl, "fanout"),
		Options:         opts,
		In:              os.Stdin,
		Out:             os.Stdout,
		Err:             os.Stderr,
		Color:           color,
		RawOutput:       raw,
		Timeout:         timeout,
		DialTimeout:     connectTimeout,
		Interactive:     interactive,
		Signals:         true,
		ConfirmNewHosts: stdinTTY,
	}
	if interactive {
		if histFile == "" {
			histFile, _ = history.DefaultPath()
		}
		cfg.HistoryPath = histFile
	}
	return &shellSetup{cfg: cfg, opts: opts}, nil
}

// findToken looks for the token in --token-file, then $RSHELL_TOKEN_FILE,
// then the default token file of a server run by this user on this
// machine. No token at all is not an error: the server may run without
// auth, and says so if it does not.
func findToken(flagFile string) ([]byte, error) {
	if flagFile != "" {
		return transport.ReadTokenFile(flagFile)
	}
	if env := os.Getenv("RSHELL_TOKEN_FILE"); env != "" {
		tok, err := transport.ReadTokenFile(env)
		if err != nil {
			return nil, fmt.Errorf("RSHELL_TOKEN_FILE: %w", err)
		}
		return tok, nil
	}
	def := transport.DefaultTokenFile()
	if _, err := os.Stat(def); err != nil {
		return nil, nil
	}
	return transport.ReadTokenFile(def)
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// runLocalShell is `rshell` with no arguments: a shell on an embedded
// server on loopback, host "local".
func runLocalShell(cmd *cobra.Command, _ []string) error {
	setup, err := newShellSetup(cmd)
	if err != nil {
		return err
	}
	e, err := startEmbedded()
	if err != nil {
		return err
	}
	defer e.Close()
	setup.cfg.Hosts = []repl.HostSpec{{Name: "local", Addr: e.Addr, Options: e.Options()}}
	return runShell(cmd.Context(), setup.cfg)
}

func runShell(ctx context.Context, cfg repl.Config) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if code := repl.Run(ctx, cfg); code != 0 {
		return exitError{code}
	}
	return nil
}
