package hub

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
	"github.com/hashicorp/raft"
)

// The snapshot stream format (raft snapshots and GET /v1/snapshot alike) is
// defined in package replication, because edges read it too: see
// replication.ReadSnapshot.
const snapshotMagic = replication.SnapshotMagic

// SnapshotMeta describes a snapshot's database.
type SnapshotMeta = replication.SnapshotMeta

// ErrCorruptSnapshot: a snapshot stream failed its checks.
var ErrCorruptSnapshot = replication.ErrCorruptSnapshot

// Snapshot returns a handle; the copy is made in Persist, off raft's path.
// The copy may include entries applied after this call: it records its
// own applied index, and ApplyBatch skips what it already holds, so
// replaying the log from raft's snapshot index applies each entry once.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) { return &fsmSnapshot{f: f}, nil }

type fsmSnapshot struct{ f *FSM }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.f.WriteSnapshot(context.Background(), sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// WriteSnapshot writes a consistent copy of the state to w in the
// snapshot stream format and returns its meta.
func (f *FSM) WriteSnapshot(ctx context.Context, w io.Writer) (SnapshotMeta, error) {
	ps, err := f.PrepareSnapshot(ctx)
	if err != nil {
		return SnapshotMeta{}, err
	}
	defer ps.Close()
	return ps.Meta, ps.Stream(w)
}

// PreparedSnapshot is a consistent copy of the state in a temporary file,
// ready to stream. Close removes the file.
type PreparedSnapshot struct {
	Meta SnapshotMeta
	path string
}

// StreamSize is the length of the stream Stream writes.
func (ps *PreparedSnapshot) StreamSize() int64 {
	head, _ := json.Marshal(ps.Meta)
	return int64(len(snapshotMagic)+len(head)+1) + ps.Meta.Size + sha256.Size
}

// Close removes the copy.
func (ps *PreparedSnapshot) Close() error { return os.Remove(ps.path) }

// PrepareSnapshot copies the state (VACUUM INTO, which reads one consistent
// view while writes go on) into a temporary file beside it. Doing the copy
// before anything is sent lets an HTTP handler still answer an error.
func (f *FSM) PrepareSnapshot(ctx context.Context) (*PreparedSnapshot, error) {
	tmp, err := os.CreateTemp(f.dir, "snapshot-*.db")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	os.Remove(tmp.Name()) // VACUUM INTO wants to create it
	db, done := f.DB()
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", tmp.Name())
	done()
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("snapshot copy: %w", err)
	}
	meta, err := readMeta(ctx, tmp.Name())
	if err == nil {
		var st os.FileInfo
		if st, err = os.Stat(tmp.Name()); err == nil {
			meta.Size = st.Size()
		}
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, err
	}
	return &PreparedSnapshot{Meta: meta, path: tmp.Name()}, nil
}

// Stream writes the copy in the snapshot format.
func (ps *PreparedSnapshot) Stream(w io.Writer) error {
	file, err := os.Open(ps.path)
	if err != nil {
		return err
	}
	defer file.Close()
	h := sha256.New()
	mw := io.MultiWriter(w, h)
	head, _ := json.Marshal(ps.Meta)
	if _, err := io.WriteString(mw, snapshotMagic+string(head)+"\n"); err != nil {
		return err
	}
	if n, err := io.Copy(mw, file); err != nil || n != ps.Meta.Size {
		return fmt.Errorf("snapshot write: %d of %d bytes: %v", n, ps.Meta.Size, err)
	}
	_, err = w.Write(h.Sum(nil))
	return err
}

// readMeta reads the applied index and hub sequence stored in a state file.
func readMeta(ctx context.Context, path string) (SnapshotMeta, error) {
	db, err := retail.Open(ctx, path, retail.Options{ReadOnly: true})
	if err != nil {
		return SnapshotMeta{}, err
	}
	defer db.Close()
	var m SnapshotMeta
	var idx, seq int64
	if err := db.QueryRowContext(ctx, "SELECT coalesce((SELECT value FROM hub_meta WHERE key = 'applied_index'), 0), coalesce((SELECT value FROM hub_meta WHERE key = 'hub_seq'), 0)").Scan(&idx, &seq); err != nil {
		return SnapshotMeta{}, fmt.Errorf("snapshot meta: %w", err)
	}
	m.AppliedIndex, m.HubSeq = uint64(idx), uint64(seq)
	m.SchemaVersion, err = db.UserVersion(ctx)
	return m, err
}

// ReadSnapshot reads a snapshot stream into a new file at dst, checking
// it; see replication.ReadSnapshot.
func ReadSnapshot(ctx context.Context, r io.Reader, dst string) (SnapshotMeta, error) {
	return replication.ReadSnapshot(ctx, r, dst)
}

// Restore replaces the state with a snapshot's, atomically: the stream is
// read and checked into a file beside the database, then swapped in. A
// corrupt snapshot leaves the state as it was and returns an error.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	ctx := context.Background()
	tmp := filepath.Join(f.dir, "restore.db.tmp")
	if _, err := ReadSnapshot(ctx, rc, tmp); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rollbackPending()
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("restore: close state: %w", err)
	}
	f.db = nil
	f.rows = nil
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(f.path() + suffix); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if err := os.Rename(tmp, f.path()); err != nil {
		return fmt.Errorf("restore: swap: %w", err)
	}
	if d, err := os.Open(f.dir); err == nil {
		d.Sync()
		d.Close()
	}
	if err := f.open(ctx); err != nil {
		return fmt.Errorf("restore: reopen: %w", err)
	}
	f.log.Info("restored state from snapshot", "applied_index", f.AppliedIndex(), "hub_seq", f.HubSeq())
	return nil
}
