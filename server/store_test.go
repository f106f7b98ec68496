package server

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/rshell/rshell/session"
	bolt "go.etcd.io/bbolt"
)

func testStore(t *testing.T, dir string) *store {
	t.Helper()
	st, err := openStore(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func valueRecord(name string, size int, b byte) session.Record {
	return session.Record{Name: name, Kind: session.RecordValue, Value: bytes.Repeat([]byte{b}, size)}
}

// loadOne loads the store's only session as name -> record value.
func loadOne(t *testing.T, st *store) map[string][]byte {
	t.Helper()
	ss, err := st.load()
	if err != nil || len(ss) != 1 {
		t.Fatalf("load: %d sessions, %v", len(ss), err)
	}
	got := map[string][]byte{}
	for _, r := range ss[0].records {
		got[r.Name] = r.Value
	}
	return got
}

// TestBigRecordIsNotRewrittenBySmallChanges: a small change to a session
// that holds a big value writes a few pages, not the big value again
// (bbolt rewrites whole leaves, so a big record must not share one).
func TestBigRecordIsNotRewrittenBySmallChanges(t *testing.T) {
	st := testStore(t, t.TempDir())
	defer st.close()
	h := &hosted{id: "s1", secret: "secret", created: time.Now()}
	if err := st.save(h, session.Delta{Changed: []session.Record{valueRecord("big", 4<<20, 1), valueRecord("a", 8, 2)}}); err != nil {
		t.Fatal(err)
	}
	pageAlloc := func() int64 { s := st.db.Stats(); return s.TxStats.GetPageAlloc() }
	before := pageAlloc()
	if err := st.save(h, session.Delta{Changed: []session.Record{valueRecord("b", 8, 3)}}); err != nil {
		t.Fatal(err)
	}
	if grew := pageAlloc() - before; grew > 256<<10 {
		t.Fatalf("an 8-byte change beside a 4 MiB record allocated %d bytes of pages: the big record was written again", grew)
	}
	got := loadOne(t, st)
	if len(got) != 3 || !bytes.Equal(got["big"], bytes.Repeat([]byte{1}, 4<<20)) || got["b"][0] != 3 {
		t.Fatalf("loaded %d records; big intact: %v", len(got), bytes.Equal(got["big"], bytes.Repeat([]byte{1}, 4<<20)))
	}
	// A big record that shrinks, a small one that grows, one removed.
	if err := st.save(h, session.Delta{Changed: []session.Record{valueRecord("big", 8, 4), valueRecord("a", 64<<10, 5)}, Removed: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	got = loadOne(t, st)
	if len(got) != 2 || !bytes.Equal(got["big"], bytes.Repeat([]byte{4}, 8)) || !bytes.Equal(got["a"], bytes.Repeat([]byte{5}, 64<<10)) {
		t.Fatalf("after shrinking, growing and removing: %d records", len(got))
	}
}

// TestBigRecordStoredTheOldWayLoads: a store written before big records
// had buckets of their own (every record a plain value) loads, and its big
// record can be changed and removed.
func TestBigRecordStoredTheOldWayLoads(t *testing.T) {
	dir := t.TempDir()
	st := testStore(t, dir)
	h := &hosted{id: "s1", secret: "secret", created: time.Now()}
	if err := st.save(h, session.Delta{Changed: []session.Record{valueRecord("a", 8, 1)}}); err != nil {
		t.Fatal(err)
	}
	old := valueRecord("big", 1<<20, 2)
	rb, err := cbor.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	err = st.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNames).Bucket([]byte("s1")).Put([]byte("big"), rb) })
	if err != nil {
		t.Fatal(err)
	}
	st.close()
	st = testStore(t, dir)
	defer st.close()
	if got := loadOne(t, st); !bytes.Equal(got["big"], old.Value) {
		t.Fatal("the old-style big record did not load")
	}
	if err := st.save(h, session.Delta{Changed: []session.Record{valueRecord("big", 2<<20, 3)}}); err != nil {
		t.Fatal(err)
	}
	if got := loadOne(t, st); !bytes.Equal(got["big"], bytes.Repeat([]byte{3}, 2<<20)) {
		t.Fatal("the big record, changed, did not load")
	}
	if err := st.save(h, session.Delta{Removed: []string{"big"}}); err != nil {
		t.Fatal(err)
	}
	if got := loadOne(t, st); len(got) != 1 || got["big"] != nil {
		t.Fatalf("after removing big: %d records", len(got))
	}
}

// TestBigSourceIsNotRewrittenByNewSources: a big source file (a :load of a
// long .star) is not written again each time a chunk defines a function.
func TestBigSourceIsNotRewrittenByNewSources(t *testing.T) {
	st := testStore(t, t.TempDir())
	defer st.close()
	h := &hosted{id: "s1", secret: "secret", created: time.Now()}
	big := string(bytes.Repeat([]byte("# a comment line\n"), 256<<10/17))
	if err := st.save(h, session.Delta{Sources: map[string]string{"big.star": big, "<in[1]>": "def f(): pass"}}); err != nil {
		t.Fatal(err)
	}
	pageAlloc := func() int64 { s := st.db.Stats(); return s.TxStats.GetPageAlloc() }
	before := pageAlloc()
	if err := st.save(h, session.Delta{Sources: map[string]string{"<in[2]>": "def g(): pass"}}); err != nil {
		t.Fatal(err)
	}
	if grew := pageAlloc() - before; grew > 64<<10 {
		t.Fatalf("a new 13-byte source beside a 256 KiB one allocated %d bytes of pages", grew)
	}
	ss, err := st.load()
	if err != nil || len(ss) != 1 {
		t.Fatalf("load: %v", err)
	}
	if src := ss[0].sources; len(src) != 3 || src["big.star"] != big || src["<in[2]>"] != "def g(): pass" {
		t.Fatalf("loaded %d sources; big intact: %v", len(src), src["big.star"] == big)
	}
}
