package retail

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// openCheckpointed opens a new database with opts and a table of blobs
// to write pages with.
func openCheckpointed(tb testing.TB, opts Options) *DB {
	tb.Helper()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(tb.TempDir(), "ckpt.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(ctx, "CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)"); err != nil {
		tb.Fatal(err)
	}
	return db
}

// writeBlobs commits n rows of size bytes each in one write transaction.
func writeBlobs(tb testing.TB, db *DB, n, size int) {
	tb.Helper()
	err := db.Update(context.Background(), func(tx *Tx) error {
		for range n {
			if _, err := tx.Exec(context.Background(), "INSERT INTO blobs (b) VALUES (randomblob(?))", size); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writerAutocheckpoint(tb testing.TB, db *DB) int {
	tb.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.SQL().QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// Which options start the background checkpointer, and the writer's
// connection checkpoints inside its commits exactly when there is none.
func TestCheckpointingOptions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       Options
		background bool
	}{
		{"zero value (full durability)", Options{}, true},
		{"normal durability", Options{Durability: DurabilityNormal}, false},
		{"inline", Options{Checkpoint: CheckpointInline}, false},
		{"background, normal durability", Options{Durability: DurabilityNormal, Checkpoint: CheckpointBackground}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openCheckpointed(t, tc.opts)
			if got := db.ckpt != nil; got != tc.background {
				t.Fatalf("background checkpointer: %v, want %v", got, tc.background)
			}
			want := 1000 // SQLite's default
			if tc.background {
				want = 0
			}
			if n := writerAutocheckpoint(t, db); n != want {
				t.Errorf("writer's wal_autocheckpoint = %d, want %d", n, want)
			}
		})
	}
	// Read-only: never a checkpointer, whatever is asked.
	path := filepath.Join(t.TempDir(), "ro.db")
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, c := range []Checkpointing{CheckpointDefault, CheckpointBackground} {
		ro, err := Open(context.Background(), path, Options{ReadOnly: true, Checkpoint: c})
		if err != nil {
			t.Fatal(err)
		}
		if ro.ckpt != nil {
			t.Errorf("read-only with %d: a background checkpointer", c)
		}
		ro.Close()
	}
}

// A few commits, far below SQLite's 1,000-page automatic checkpoint, reach
// the database file without another commit: the background checkpointer
// copied them. In WAL mode nothing else writes the database file.
func TestBackgroundCheckpointCopiesTheWAL(t *testing.T) {
	db := openCheckpointed(t, Options{CheckpointInterval: 20 * time.Millisecond})
	before := db.ckpt.snapshot().passive
	mainBefore := fileSize(t, db.Path())
	for range 5 {
		writeBlobs(t, db, 10, 4000) // about 10 pages a commit
	}
	waitFor(t, "no checkpoint copied the commits into the database file", func() bool {
		return fileSize(t, db.Path()) >= mainBefore+50*4000 && db.ckpt.snapshot().passive > before
	})
	st := db.ckpt.snapshot()
	if st.err != nil {
		t.Fatalf("checkpoint stats %+v", st)
	}
	if st.copied != st.log {
		t.Errorf("the last checkpoint copied %d of the WAL's %d pages, with no other reader or writer", st.copied, st.log)
	}
}

// One transaction of more pages than CheckpointLimit leaves a large WAL
// file; the checkpointer copies it and truncates the file. (Without it,
// SQLite reuses the WAL file from its start but never shrinks it.)
func TestBackgroundCheckpointTruncatesALargeWAL(t *testing.T) {
	// The interval leaves time to see the WAL before the checkpoint.
	db := openCheckpointed(t, Options{CheckpointInterval: 500 * time.Millisecond, CheckpointLimit: 100})
	wal := db.Path() + "-wal"
	writeBlobs(t, db, 300, 4000) // about 300 pages
	if n := fileSize(t, wal); n < 200*4096 && db.ckpt.snapshot().truncate == 0 {
		t.Fatalf("WAL of %d bytes after 300 pages' commit", n)
	}
	waitFor(t, "the WAL was not truncated", func() bool {
		return fileSize(t, wal) == 0 && db.ckpt.snapshot().truncate > 0
	})
	if st := db.ckpt.snapshot(); st.err != nil {
		t.Fatalf("checkpoint stats %+v", st)
	}
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM blobs").Scan(&n); err != nil || n != 300 {
		t.Fatalf("after the checkpoint: %d rows (%v), want 300", n, err)
	}
}

// walSalt reads the salts in the WAL file's header, which SQLite changes
// each time it starts the WAL again from its beginning
// (https://sqlite.org/fileformat2.html#walformat); "" without a header.
func walSalt(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.Open(path + "-wal")
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var h [32]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return ""
	}
	return string(h[16:24])
}

// Commits back to back, each a few pages, with no pause for a checkpoint
// to catch up (synchronous=NORMAL, so they come faster than checkpoints
// can copy them): the WAL is started again from its beginning over and
// over. With the writer's own checkpoints off and none in the background,
// or only PASSIVE ones beside the writer, which never find the WAL wholly
// copied while commits keep coming, it would never start again, and the
// file would hold every page written.
func TestBackgroundCheckpointBoundsTheWAL(t *testing.T) {
	const commits, rows, size, limit = 3000, 4, 3000, 200
	db := openCheckpointed(t, Options{
		Durability: DurabilityNormal, Checkpoint: CheckpointBackground,
		CheckpointInterval: 5 * time.Millisecond, CheckpointLimit: limit,
	})
	var largest int64
	restarts, salt := 0, walSalt(t, db.Path())
	for range commits {
		writeBlobs(t, db, rows, size)
		largest = max(largest, fileSize(t, db.Path()+"-wal"))
		if s := walSalt(t, db.Path()); s != salt {
			restarts++
			salt = s
		}
	}
	written := int64(commits * rows * size)
	st := db.ckpt.snapshot()
	t.Logf("WAL started again %d times; largest WAL file %d KiB of %d KiB written; checkpoints: %+v",
		restarts, largest>>10, written>>10, st)
	if restarts < 15 {
		t.Errorf("the WAL started again %d times in %d commits", restarts, commits)
	}
	// 3 to 4.5 MiB here; every page written, without the checkpointer.
	if largest > written/2 {
		t.Errorf("the WAL file grew to %d KiB of the %d KiB written", largest>>10, written>>10)
	}
	if st.err != nil {
		t.Errorf("checkpoint error: %v", st.err)
	}
}

// Close stops the goroutine, whether it waits for a commit or for its
// interval after one, and does not wait for the interval.
func TestCloseStopsTheCheckpointer(t *testing.T) {
	for _, commit := range []bool{false, true} {
		db, err := Open(context.Background(), filepath.Join(t.TempDir(), "c.db"), Options{CheckpointInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		c := db.ckpt
		if commit {
			if err := db.Update(context.Background(), func(tx *Tx) error {
				_, err := tx.Exec(context.Background(), "INSERT INTO settings (key, value) VALUES ('k', 'v')")
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-c.done:
			t.Fatal("the checkpointer stopped before Close")
		default:
		}
		start := time.Now()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.done:
		default:
			t.Fatalf("commit %v: the checkpointer runs after Close returned", commit)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Close took %v", d)
		}
		if err := c.db.PingContext(context.Background()); err == nil {
			t.Errorf("commit %v: the checkpointer's connection is open after Close", commit)
		}
	}
}
