package hub

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/endcap/endcap/retail"
	"github.com/hashicorp/raft"
)

// Snapshot stream format (raft snapshots and GET /v1/snapshot alike):
//
//	"ENDCAP-SNAPSHOT 1\n"
//	one line of JSON: SnapshotMeta
//	Size bytes: a SQLite database file
//	32 bytes: SHA-256 of everything before it
//
// A stream that is truncated, padded or altered anywhere fails the
// checksum, and nothing is swapped in.
const snapshotMagic = "ENDCAP-SNAPSHOT 1\n"

// SnapshotMeta describes a snapshot's database.
type SnapshotMeta struct {
	AppliedIndex  uint64 `json:"applied_index"`
	HubSeq        uint64 `json:"hub_seq"`
	SchemaVersion int    `json:"schema_version"`
	Size          int64  `json:"size"`
}

// ErrCorruptSnapshot: a snapshot stream failed its checks.
var ErrCorruptSnapshot = errors.New("corrupt snapshot")

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
// its checksum and the database's integrity. On any error dst is removed.
func ReadSnapshot(ctx context.Context, r io.Reader, dst string) (SnapshotMeta, error) {
	meta, err := readSnapshot(ctx, r, dst)
	if err != nil {
		os.Remove(dst)
	}
	return meta, err
}

func readSnapshot(ctx context.Context, r io.Reader, dst string) (SnapshotMeta, error) {
	h := sha256.New()
	br := bufio.NewReader(r)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return SnapshotMeta{}, fmt.Errorf("%w: not an Endcap snapshot (header %q)", ErrCorruptSnapshot, magic)
	}
	h.Write(magic)
	line, err := br.ReadBytes('\n')
	if err != nil || len(line) > 4096 {
		return SnapshotMeta{}, fmt.Errorf("%w: no meta line", ErrCorruptSnapshot)
	}
	h.Write(line)
	var meta SnapshotMeta
	if err := json.Unmarshal(bytes.TrimSpace(line), &meta); err != nil || meta.Size <= 0 {
		return SnapshotMeta{}, fmt.Errorf("%w: meta %q", ErrCorruptSnapshot, line)
	}
	if meta.SchemaVersion > retail.SchemaVersion() {
		return SnapshotMeta{}, fmt.Errorf("snapshot schema version %d: %w", meta.SchemaVersion, retail.ErrSchemaTooNew)
	}
	n, err := copyTo(dst, io.TeeReader(io.LimitReader(br, meta.Size), h))
	if err != nil {
		return SnapshotMeta{}, fmt.Errorf("snapshot: %w", err)
	}
	if n != meta.Size {
		return SnapshotMeta{}, fmt.Errorf("%w: truncated: %d of %d bytes", ErrCorruptSnapshot, n, meta.Size)
	}
	if err := checkSum(br, h); err != nil {
		return SnapshotMeta{}, err
	}
	// The checksum proves the bytes are the ones written; check the
	// database too, in case it was written from a damaged file.
	db, err := retail.Open(ctx, dst, retail.Options{ReadOnly: true})
	if err != nil {
		return SnapshotMeta{}, fmt.Errorf("%w: %v", ErrCorruptSnapshot, err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil || check != "ok" {
		return SnapshotMeta{}, fmt.Errorf("%w: database check: %q %v", ErrCorruptSnapshot, check, err)
	}
	return meta, nil
}

func checkSum(r io.Reader, h hash.Hash) error {
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(r, want); err != nil {
		return fmt.Errorf("%w: truncated: no checksum", ErrCorruptSnapshot)
	}
	if !bytes.Equal(want, h.Sum(nil)) {
		return fmt.Errorf("%w: checksum mismatch", ErrCorruptSnapshot)
	}
	if n, _ := io.Copy(io.Discard, io.LimitReader(r, 1)); n > 0 {
		return fmt.Errorf("%w: data after the checksum", ErrCorruptSnapshot)
	}
	return nil
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
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("restore: close state: %w", err)
	}
	f.db = nil
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
