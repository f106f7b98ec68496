package transport

// ProtocolVersion is carried in the challenge and the hello. A peer that
// speaks another version is refused with an error naming both.
const ProtocolVersion = 2

// Message types: the value of Msg.T. Every message of the protocol is a Msg;
// PROTOCOL.md says which fields each type uses and who sends it.
const (
	// Handshake, on the raw (TLS) connection before yamux.
	TChallenge = "challenge" // server → client: v, nonce, auth, agent
	THello     = "hello"     // client → server: v, proof, agent
	TWelcome   = "welcome"   // server → client: v, info

	// Any stream: the terminal frame of a failed request.
	TError = "error" // err

	// The eval stream (the first stream a client opens).
	TAttach   = "attach"   // client: session, secret, ns
	TAttached = "attached" // server: session, secret, resumed, not_restored, last
	TEval     = "eval"     // client: seq, src, file, deadline_ms
	TOut      = "out"      // server: seq, text (print output, zero or more)
	TResult   = "result"   // server: seq, value, warn (terminal)
	TCancel   = "cancel"   // client: seq (cancel the running chunk)

	// Side errands: one stream each, one request, its frames, one terminal frame.
	TPing        = "ping"        // client → pong
	TPong        = "pong"        //
	TComplete    = "complete"    // client: prefix → completions: names
	TCompletions = "completions" //
	TNames       = "names"       // client → names: items
	TGet         = "get"         // client: name → value: value
	TValue       = "value"       //
	TPut         = "put"         // client: name, value → ok
	TOK          = "ok"          //
	TUpload      = "upload"      // client: path, size; then data frames; then end: sha256 → ok
	TDownload    = "download"    // client: path → data frames, then end: size, sha256
	TData        = "data"        // data (at most DataChunk bytes)
	TEnd         = "end"         // size, sha256
	TReset       = "reset"       // client → ok
	TForget      = "forget"      // client → ok (drop this session once its connections close)
	TInfo        = "info"        // client → info: info
	TSessions    = "sessions"    // client → sessions: list (every session the server holds)
)

// DataChunk is the largest data frame payload of a file transfer.
const DataChunk = 256 << 10

// Error kinds: ErrorInfo.Kind.
const (
	KindSyntax    = "syntax"    // the chunk does not parse
	KindResolve   = "resolve"   // undefined name and the like, found before running
	KindRuntime   = "runtime"   // an error while running
	KindCancelled = "cancelled" // the client cancelled the chunk
	KindDeadline  = "deadline"  // the chunk's deadline (or --max-eval-time) passed
	KindLimit     = "limit"     // a server limit: steps, result size, memory, streams...
	KindProtocol  = "protocol"  // a malformed or unexpected frame
	KindAuth      = "auth"      // a bad token or session secret
	KindVersion   = "version"   // protocol version mismatch
	KindNotFound  = "notfound"  // a name, session or file that does not exist
	KindIO        = "io"        // a file operation failed on the server
	KindShutdown  = "shutdown"  // the server is shutting down
)

// Msg is the one message shape of the protocol: a CBOR map whose "t" key
// names the type; the other keys are present only where a type uses them.
type Msg struct {
	T string `cbor:"t"`

	// Handshake.
	Version int    `cbor:"v,omitempty"`
	Nonce   []byte `cbor:"nonce,omitempty"`
	Auth    bool   `cbor:"auth,omitempty"`
	Proof   []byte `cbor:"proof,omitempty"`
	Agent   string `cbor:"agent,omitempty"`

	// Attach.
	Session     string     `cbor:"session,omitempty"`
	Secret      string     `cbor:"secret,omitempty"`
	NS          string     `cbor:"ns,omitempty"`
	Resumed     bool       `cbor:"resumed,omitempty"`
	NotRestored []string   `cbor:"not_restored,omitempty"`
	Last        *LastChunk `cbor:"last,omitempty"`

	// Eval.
	Seq        uint64 `cbor:"seq,omitempty"`
	Src        string `cbor:"src,omitempty"`
	File       string `cbor:"file,omitempty"`
	DeadlineMS int64  `cbor:"deadline_ms,omitempty"`
	Text       string `cbor:"text,omitempty"`
	Value      []byte `cbor:"value,omitempty"` // a value's CBOR encoding, carried as a byte string
	Warn       string `cbor:"warn,omitempty"`

	// Side errands.
	Name   string        `cbor:"name,omitempty"`
	Prefix string        `cbor:"prefix,omitempty"`
	Names  []string      `cbor:"names,omitempty"`
	Items  []NameInfo    `cbor:"items,omitempty"`
	Path   string        `cbor:"path,omitempty"`
	Size   int64         `cbor:"size,omitempty"`
	SHA256 []byte        `cbor:"sha256,omitempty"`
	Data   []byte        `cbor:"data,omitempty"`
	Info   *HostInfo     `cbor:"info,omitempty"`
	List   []SessionInfo `cbor:"list,omitempty"`

	// Error: the terminal frame of a failed request or handshake.
	Err *ErrorInfo `cbor:"err,omitempty"`
}

// ErrorInfo is a structured remote error.
type ErrorInfo struct {
	Kind   string      `cbor:"kind"`
	Msg    string      `cbor:"msg"`
	Frames []FrameInfo `cbor:"frames,omitempty"` // outermost call first
	// Syntax errors: where the parser stopped.
	File    string `cbor:"file,omitempty"`
	Line    int    `cbor:"line,omitempty"`
	Col     int    `cbor:"col,omitempty"`
	SrcLine string `cbor:"src_line,omitempty"`
}

// FrameInfo is one frame of a remote traceback.
type FrameInfo struct {
	File   string `cbor:"file"`
	Line   int    `cbor:"line"`
	Col    int    `cbor:"col"`
	Func   string `cbor:"func"`
	Source string `cbor:"source,omitempty"` // the source line, when the server kept it
	// Repeat counts the frames identical to this one that followed it and
	// were left out, as CPython does for a runaway recursion.
	Repeat int `cbor:"repeat,omitempty"`
}

// NameInfo describes one global of a namespace.
type NameInfo struct {
	Name string `cbor:"name"`
	Type string `cbor:"type"`
	Repr string `cbor:"repr"` // short, abbreviated repr
}

// LastChunk is what the server remembers of a session's last chunk, so a
// client that lost its connection mid-chunk learns how that chunk ended.
type LastChunk struct {
	Seq   uint64     `cbor:"seq"`
	State string     `cbor:"state"` // "running", "done", "failed", "cancelled", "interrupted"
	Value []byte     `cbor:"value,omitempty"`
	Err   *ErrorInfo `cbor:"err,omitempty"`
}

// SessionInfo describes one session a server holds (never its secret).
type SessionInfo struct {
	ID       string `cbor:"id"` // the first 8 hex digits only
	NS       string `cbor:"ns,omitempty"`
	AgeS     int64  `cbor:"age_s"`            // seconds since it was created
	IdleS    int64  `cbor:"idle_s,omitempty"` // seconds since its last client left (0 while attached)
	Names    int    `cbor:"names"`            // user globals
	Attached int    `cbor:"attached"`         // clients attached now
	Chunks   int    `cbor:"chunks"`           // chunks run
	Mine     bool   `cbor:"mine,omitempty"`   // the asking client's own session
}

// HostInfo describes the server's host.
type HostInfo struct {
	Hostname  string           `cbor:"hostname"`
	OS        string           `cbor:"os"`
	Arch      string           `cbor:"arch"`
	Version   string           `cbor:"version"`    // rshell version
	GoVersion string           `cbor:"go_version"` // Go runtime
	Protocol  int              `cbor:"protocol"`
	PID       int              `cbor:"pid"`
	Sandbox   bool             `cbor:"sandbox,omitempty"`
	Limits    map[string]int64 `cbor:"limits,omitempty"`
}
