// Package history is rshell's persistent, multi-process-safe line history.
//
// Every chunk the user submits to the REPL (possibly spanning several lines)
// is one [Entry]: it is stored together with its timestamp and the host name
// and is recalled whole, with its lines intact.
//
// # File format
//
// The history file holds JSON lines, one object per entry:
//
//	{"t":"2024-05-01T12:00:00.123456789Z","host":"box","text":"for i in 1 2\ndo echo $i\ndone"}
//
// Newlines inside a chunk are escaped by JSON, so one line is always one
// entry. A line that cannot be decoded (a torn write after a crash, garbage)
// is skipped when loading; it is never fatal. Text that is not valid UTF-8 is
// stored with the invalid bytes replaced by U+FFFD.
//
// # Location and permissions
//
// [DefaultPath] returns $XDG_STATE_HOME/rshell/history, or
// ~/.local/state/rshell/history when XDG_STATE_HOME is unset (or not
// absolute). On Windows the fallback is rshell\history under
// [os.UserConfigDir]. [Open] creates missing directories with mode 0700 and
// the file with mode 0600; if an existing history file is more open than
// 0600 its group and other bits are removed. Permissions are never widened
// and existing directories are left untouched.
//
// # Concurrency
//
// Several shells may share one file. Every append and every compaction holds
// an exclusive [github.com/gofrs/flock] lock on the sibling file path+".lock";
// loading holds a shared lock. An append is a single write(2) of one complete
// record to a descriptor opened with O_APPEND, so entries from different
// processes are never lost or interleaved. A [History] value is additionally
// safe for concurrent use by several goroutines.
//
// Entries appended by other shells become visible through [History.Reload];
// [History.Entries] otherwise only reflects what was loaded plus what this
// History appended.
//
// # Size cap
//
// The file is capped at [Options.MaxEntries] entries (default 10000). When
// the file holds more than 1.25 times the cap it is rewritten — under the
// lock, into a temporary file in the same directory which is fsynced and then
// renamed over the original — keeping the newest MaxEntries entries.
//
// # What is not recorded
//
// [History.Append] silently ignores (returns nil for) chunks that start with
// a space, chunks that are empty or whitespace-only, and a chunk whose text is
// identical to the previous entry held in memory (no consecutive duplicates).
//
// The caller decides whether to record at all: when stdin is not a terminal
// (scripts piped into rshell) it should not open or append to the history.
//
// This package imports nothing of the rest of rshell; it depends only on the
// standard library and github.com/gofrs/flock.
package history
