package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	starlarktime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// shared holds the frozen built-in modules, one set for full-power
// sessions and one for sandboxed ones: frozen values may be shared between
// sessions (nothing can change them), and building them per session cost
// an idle connection several KiB.
var shared [2]struct {
	once sync.Once
	d    starlark.StringDict
}

// predeclared returns the session's built-in modules: frozen and shared,
// unless opts.Extra asks for a namespace of its own. The returned dict must
// not be modified.
func predeclared(opts Options) starlark.StringDict {
	if opts.Extra != nil {
		return buildPredeclared(opts)
	}
	i := 0
	if opts.Sandbox {
		i = 1
	}
	sh := &shared[i]
	sh.once.Do(func() {
		sh.d = buildPredeclared(opts)
		sh.d.Freeze()
	})
	return sh.d
}

func buildPredeclared(opts Options) starlark.StringDict {
	d := starlark.StringDict{
		"sys":    sysModule(),
		"time":   timeModule(),
		"math":   copyModule(math.Module),
		"json":   copyModule(json.Module),
		"struct": starlark.NewBuiltin("struct", starlarkstruct.Make),
	}
	if !opts.Sandbox {
		d["os"] = osModule()
	}
	for k, v := range opts.Extra {
		d[k] = v
	}
	return d
}

func copyModule(m *starlarkstruct.Module) *starlarkstruct.Module {
	members := make(starlark.StringDict, len(m.Members))
	for k, v := range m.Members {
		members[k] = v
	}
	return &starlarkstruct.Module{Name: m.Name, Members: members}
}

func sysModule() *starlarkstruct.Module {
	host, _ := os.Hostname()
	exe, _ := os.Executable()
	return &starlarkstruct.Module{Name: "sys", Members: starlark.StringDict{
		"version":    starlark.String(fmt.Sprintf("rshell %s (%s, starlark)", Version, runtime.Version())),
		"platform":   starlark.String(runtime.GOOS),
		"arch":       starlark.String(runtime.GOARCH),
		"hostname":   starlark.String(host),
		"pid":        starlark.MakeInt(os.Getpid()),
		"executable": starlark.String(exe),
	}}
}

func timeModule() *starlarkstruct.Module {
	m := copyModule(starlarktime.Module)
	libTime := m.Members["time"]
	m.Members["time"] = starlark.NewBuiltin("time", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if len(args) == 0 && len(kwargs) == 0 {
			// Python's time.time(): seconds since the epoch.
			return starlark.Float(float64(time.Now().UnixNano()) / 1e9), nil
		}
		// With arguments, the library's time constructor.
		return starlark.Call(thread, libTime, args, kwargs)
	})
	m.Members["sleep"] = starlark.NewBuiltin("sleep", timeSleep)
	return m
}

// timeSleep sleeps, but stops at once when the chunk is cancelled.
func timeSleep(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var secs starlark.Value
	if err := starlark.UnpackPositionalArgs("sleep", args, kwargs, 1, &secs); err != nil {
		return nil, err
	}
	f, ok := starlark.AsFloat(secs)
	if !ok {
		return nil, fmt.Errorf("sleep: got %s, want a number of seconds", secs.Type())
	}
	if f < 0 || f != f {
		return nil, fmt.Errorf("sleep: %v is not a valid number of seconds", f)
	}
	d := time.Duration(f * float64(time.Second))
	if f > float64(1<<62)/float64(time.Second) {
		d = 1 << 62
	}
	ctx := chunkContext(thread)
	if d > time.Millisecond {
		aboutToBlock(thread)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return starlark.None, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("sleep: %w", ctx.Err())
	}
}

type builtinFunc = func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)

func osModule() *starlarkstruct.Module {
	fns := map[string]builtinFunc{
		"uname":      osUname,
		"getcwd":     osGetcwd,
		"listdir":    osListdir,
		"getenv":     osGetenv,
		"environ":    osEnviron,
		"getpid":     osGetpid,
		"read_file":  osReadFile,
		"write_file": osWriteFile,
		"exists":     osExists,
		"remove":     osRemove,
		"run":        osRun,
	}
	members := make(starlark.StringDict, len(fns))
	for name, fn := range fns {
		members[name] = starlark.NewBuiltin(name, fn)
	}
	return &starlarkstruct.Module{Name: "os", Members: members}
}

// osErr prefixes an error with the qualified name of the built-in.
func osErr(b *starlark.Builtin, err error) error {
	return fmt.Errorf("os.%s: %w", b.Name(), err)
}

func osUname(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	u := uname()
	return starlarkstruct.FromStringDict(starlark.String("uname_result"), starlark.StringDict{
		"sysname":  starlark.String(u.sysname),
		"nodename": starlark.String(u.nodename),
		"release":  starlark.String(u.release),
		"version":  starlark.String(u.version),
		"machine":  starlark.String(u.machine),
	}), nil
}

type unameInfo struct{ sysname, nodename, release, version, machine string }

func osGetcwd(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, osErr(b, err)
	}
	return starlark.String(wd), nil
}

func osListdir(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	beforeIO(thread) // the file system may be slow to answer
	path := "."
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path?", &path); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, osErr(b, err)
	}
	names := make([]starlark.Value, len(entries))
	for i, e := range entries {
		names[i] = starlark.String(e.Name())
	}
	return starlark.NewList(names), nil
}

func osGetenv(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var def starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "default?", &def); err != nil {
		return nil, err
	}
	if v, ok := os.LookupEnv(name); ok {
		return starlark.String(v), nil
	}
	return def, nil
}

func osEnviron(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	env := os.Environ()
	d := starlark.NewDict(len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if err := d.SetKey(starlark.String(k), starlark.String(v)); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func osGetpid(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	return starlark.MakeInt(os.Getpid()), nil
}

func osReadFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	beforeIO(thread) // the file system may be slow to answer
	var path string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, osErr(b, err)
	}
	return starlark.String(data), nil
}

func osWriteFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	beforeIO(thread) // the file system may be slow to answer
	var path string
	var data starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "data", &data); err != nil {
		return nil, err
	}
	var content string
	switch d := data.(type) {
	case starlark.String:
		content = string(d)
	case starlark.Bytes:
		content = string(d)
	default:
		return nil, fmt.Errorf("os.%s: data is a %s, want string or bytes", b.Name(), data.Type())
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return nil, osErr(b, err)
	}
	return starlark.None, nil
}

func osExists(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	beforeIO(thread) // the file system may be slow to answer
	var path string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path); err != nil {
		return nil, err
	}
	_, err := os.Stat(path)
	return starlark.Bool(err == nil), nil
}

func osRemove(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	beforeIO(thread) // the file system may be slow to answer
	var path string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil {
		return nil, osErr(b, err)
	}
	return starlark.None, nil
}

// runWaitDelay bounds how long os.run waits for the output pipes after the
// process exited or was killed (a grandchild may hold them open).
const runWaitDelay = 10 * time.Millisecond

// osRun runs a command (no shell) and returns struct(code, stdout, stderr).
// It is killed when the chunk is cancelled or its timeout passes.
func osRun(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var argvV starlark.Value
	var timeoutV starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "argv", &argvV, "timeout?", &timeoutV); err != nil {
		return nil, err
	}
	seq, ok := argvV.(starlark.Indexable)
	if _, isStr := argvV.(starlark.String); !ok || isStr {
		return nil, fmt.Errorf(`os.run: argv must be a list of strings (for a shell, use ["sh", "-c", cmd])`)
	}
	argv := make([]string, seq.Len())
	for i := range argv {
		s, ok := starlark.AsString(seq.Index(i))
		if !ok {
			return nil, fmt.Errorf("os.run: argv[%d] is a %s, want string", i, seq.Index(i).Type())
		}
		argv[i] = s
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("os.run: argv is empty")
	}
	ctx := chunkContext(thread)
	aboutToBlock(thread)
	var timeout time.Duration
	if timeoutV != starlark.None {
		f, ok := starlark.AsFloat(timeoutV)
		if !ok || f <= 0 || f != f {
			return nil, fmt.Errorf("os.run: timeout must be a positive number of seconds")
		}
		timeout = time.Duration(f * float64(time.Second))
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = runWaitDelay
	err := cmd.Run()
	if ctx.Err() != nil {
		if chunkContext(thread).Err() == nil {
			return nil, fmt.Errorf("os.run: %s timed out after %s and was killed", argv[0], timeout)
		}
		return nil, fmt.Errorf("os.run: %w", ctx.Err())
	}
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
		// Exited; a background child still held the output pipes.
	case err != nil:
		return nil, osErr(b, err)
	}
	return starlarkstruct.FromStringDict(starlark.String("run_result"), starlark.StringDict{
		"code":   starlark.MakeInt(code),
		"stdout": starlark.String(stdout.String()),
		"stderr": starlark.String(stderr.String()),
	}), nil
}
