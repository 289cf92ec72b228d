package replication

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

	"github.com/endcap/endcap/retail"
)

// Snapshot stream format (the hub's raft snapshots and its GET
// /v1/snapshot, which edges bootstrap from):
//
//	"ENDCAP-SNAPSHOT 1\n"
//	one line of JSON: SnapshotMeta
//	Size bytes: a SQLite database file
//	32 bytes: SHA-256 of everything before it
//
// A stream that is truncated, padded or altered anywhere fails the
// checksum, and nothing is swapped in.
const SnapshotMagic = "ENDCAP-SNAPSHOT 1\n"

// SnapshotMeta describes a snapshot's database.
type SnapshotMeta struct {
	AppliedIndex  uint64 `json:"applied_index"`
	HubSeq        uint64 `json:"hub_seq"`
	SchemaVersion int    `json:"schema_version"`
	Size          int64  `json:"size"`
}

// ErrCorruptSnapshot: a snapshot stream failed its checks.
var ErrCorruptSnapshot = errors.New("corrupt snapshot")

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
	br := bufio.NewReaderSize(r, 1<<16)
	magic := make([]byte, len(SnapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != SnapshotMagic {
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

// copyTo is io.Copy into a new file at dst, fsynced.
func copyTo(dst string, src io.Reader) (int64, error) {
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, src)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
