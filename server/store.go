package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/rshell/rshell/session"
	"github.com/rshell/rshell/transport"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The durable store: one bbolt file in the state directory.
//
//	sessions/<id>          CBOR sessionMeta
//	names/<id>/<name>      CBOR session.Record, one per global; a record
//	                       over bigRecord bytes is in a bucket of its own
//	                       instead: names/<id>/<name>/r (see putRecord)
//	sources/<id>/<file>    the source of a chunk or file that defined a function
//	                       (over bigRecord bytes: sources/<id>/<file>/r)
//	quarantine/<key>       records that could not be decoded, kept for a human
var (
	bucketSessions   = []byte("sessions")
	bucketNames      = []byte("names")
	bucketSources    = []byte("sources")
	bucketQuarantine = []byte("quarantine")
)

type sessionMeta struct {
	Secret  string               `cbor:"secret"`
	NS      string               `cbor:"ns,omitempty"`
	Created time.Time            `cbor:"created"`
	Saved   time.Time            `cbor:"saved"`
	Last    *transport.LastChunk `cbor:"last,omitempty"`
}

type store struct {
	db  *bolt.DB
	log *slog.Logger
}

// openStore opens (or creates) the store in dir. A file that bbolt cannot
// open is moved aside and a fresh store started, so the server always
// starts; another server holding the file is an error.
func openStore(dir string, log *slog.Logger) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "sessions.db")
	open := func() (*bolt.DB, error) {
		// The freelist is rebuilt on open instead of written with every
		// commit: a commit then costs one sync of the changed pages.
		return bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	}
	db, err := open()
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("state dir %s is in use by another rshell server (use another --state-dir)", dir)
	}
	if err != nil {
		aside := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("open the session store %s: %v (and could not move it aside: %v)", path, err, rerr)
		}
		log.Error("session store unreadable: moved aside, starting with an empty one", "path", path, "moved_to", aside, "err", err)
		if db, err = open(); err != nil {
			return nil, fmt.Errorf("open the session store %s: %w", path, err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketNames, bucketSources, bucketQuarantine} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise the session store %s: %w", path, err)
	}
	return &store{db: db, log: log}, nil
}

func (st *store) close() error { return st.db.Close() }

// storedSession is one session as loaded from the store.
type storedSession struct {
	id      string
	meta    sessionMeta
	records []session.Record
	sources map[string]string
}

// load reads every session. Records that do not decode are moved to the
// quarantine bucket and logged; the rest load.
func (st *store) load() ([]storedSession, error) {
	var out []storedSession
	var bad [][2][]byte
	err := st.db.View(func(tx *bolt.Tx) error {
		names, sources := tx.Bucket(bucketNames), tx.Bucket(bucketSources)
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			s := storedSession{id: string(k), sources: map[string]string{}}
			if err := cbor.Unmarshal(v, &s.meta); err != nil || s.meta.Secret == "" {
				bad = append(bad, [2][]byte{append([]byte("sessions/"), k...), v})
				st.log.Error("quarantined a corrupt session record", "session", shortID(string(k)), "err", err)
				return nil
			}
			if nb := names.Bucket(k); nb != nil {
				_ = nb.ForEach(func(name, rv []byte) error {
					rv = getRecord(nb, name, rv)
					var r session.Record
					if err := cbor.Unmarshal(rv, &r); err != nil || r.Name != string(name) {
						bad = append(bad, [2][]byte{[]byte("names/" + string(k) + "/" + string(name)), rv})
						st.log.Error("quarantined a corrupt name record", "session", shortID(string(k)), "name", string(name), "err", err)
						return nil
					}
					s.records = append(s.records, r)
					return nil
				})
			}
			if sb := sources.Bucket(k); sb != nil {
				_ = sb.ForEach(func(file, src []byte) error {
					s.sources[string(file)] = string(getRecord(sb, file, src))
					return nil
				})
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		st.quarantine(bad)
	}
	return out, nil
}

func (st *store) quarantine(bad [][2][]byte) {
	err := st.db.Update(func(tx *bolt.Tx) error {
		q := tx.Bucket(bucketQuarantine)
		for _, kv := range bad {
			key := fmt.Sprintf("%d/%s", time.Now().UnixNano(), kv[0])
			if err := q.Put([]byte(key), kv[1]); err != nil {
				return err
			}
			if err := deletePath(tx, string(kv[0])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		st.log.Error("could not quarantine corrupt records", "err", err)
	}
}

// deletePath removes "sessions/<id>" or "names/<id>/<name>".
func deletePath(tx *bolt.Tx, p string) error {
	dir, rest, _ := cut(p)
	switch dir {
	case "sessions":
		return tx.Bucket(bucketSessions).Delete([]byte(rest))
	case "names":
		id, name, _ := cut(rest)
		if b := tx.Bucket(bucketNames).Bucket([]byte(id)); b != nil {
			return dropRecord(b, []byte(name))
		}
	}
	return nil
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// save writes a session's meta and what changed in its namespace in one
// transaction, synced to disk before it returns.
func (st *store) save(h *hosted, d session.Delta) error {
	meta := sessionMeta{Secret: h.secret, NS: h.ns, Created: h.created, Saved: time.Now(), Last: h.lastChunk()}
	mb, err := cbor.Marshal(meta)
	if err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		id := []byte(h.id)
		if err := tx.Bucket(bucketSessions).Put(id, mb); err != nil {
			return err
		}
		nb, err := tx.Bucket(bucketNames).CreateBucketIfNotExists(id)
		if err != nil {
			return err
		}
		if d.Reset {
			if err := tx.Bucket(bucketNames).DeleteBucket(id); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
			if nb, err = tx.Bucket(bucketNames).CreateBucket(id); err != nil {
				return err
			}
		}
		for _, r := range d.Changed {
			rb, err := cbor.Marshal(r)
			if err != nil {
				return err
			}
			if err := putRecord(nb, []byte(r.Name), rb); err != nil {
				return err
			}
		}
		for _, name := range d.Removed {
			if err := dropRecord(nb, []byte(name)); err != nil {
				return err
			}
		}
		if len(d.Sources) > 0 {
			sb, err := tx.Bucket(bucketSources).CreateBucketIfNotExists(id)
			if err != nil {
				return err
			}
			for file, src := range d.Sources {
				if err := putRecord(sb, []byte(file), []byte(src)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// bigRecord is the size over which a record (a name's, or a source file)
// gets a bucket of its own.
//
// bbolt rewrites a whole leaf (with its overflow pages) when any key in it
// changes, and never splits a leaf below two keys. So a 64 MiB value kept
// beside other names was written again, and synced, by every chunk that
// changed any of them: 1.3 s for `t = 1` next to a 64 MiB string. In a
// bucket of its own it sits in a leaf no other name touches; its parent
// holds a 16-byte bucket header.
const bigRecord = 4 << 10

var recordKey = []byte("r")

// putRecord stores a record under name, replacing what was there. A small
// record (every chunk's usual case) is one Put over the old value.
func putRecord(nb *bolt.Bucket, name, rb []byte) error {
	if nb.Bucket(name) != nil {
		if err := nb.DeleteBucket(name); err != nil {
			return err
		}
	}
	if len(rb) <= bigRecord {
		return nb.Put(name, rb)
	}
	if err := nb.Delete(name); err != nil { // a small record stored before
		return err
	}
	b, err := nb.CreateBucket(name)
	if err != nil {
		return err
	}
	return b.Put(recordKey, rb)
}

// getRecord is what ForEach gave for name (v), or, for a big record, what
// its own bucket holds.
func getRecord(b *bolt.Bucket, name, v []byte) []byte {
	if v == nil {
		if rb := b.Bucket(name); rb != nil {
			return rb.Get(recordKey)
		}
	}
	return v
}

// dropRecord deletes name's record, in whichever form it is stored.
func dropRecord(nb *bolt.Bucket, name []byte) error {
	if nb.Bucket(name) != nil {
		return nb.DeleteBucket(name)
	}
	return nb.Delete(name)
}

// remove deletes a session from the store.
func (st *store) remove(id string) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		k := []byte(id)
		if err := tx.Bucket(bucketSessions).Delete(k); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketNames, bucketSources} {
			if err := tx.Bucket(b).DeleteBucket(k); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
		}
		return nil
	})
}
