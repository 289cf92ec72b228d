package replication

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/endcap/endcap/retail"
)

// Bootstrap replaces the replica's region data with a hub snapshot: the
// file at snapPath, already checked by ReadSnapshot. The outbox, the
// attention list and the next outbox sequence are kept: pending mutations
// the snapshot already holds are settled, the rest applied on top again.
// The swap is a rename: a crash leaves the old replica or the new one,
// never a mix.
func (r *Replica) Bootstrap(ctx context.Context, snapPath string, meta SnapshotMeta) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.db
	pending, attention, next, err := r.carry(ctx, old)
	if err != nil {
		return fmt.Errorf("bootstrap: read outbox: %w", err)
	}
	ndb, err := r.open(ctx, snapPath)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	err = ndb.Update(ctx, func(tx *retail.Tx) error {
		rows, err := tx.SQL().QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'hub\\_%' ESCAPE '\\'")
		if err != nil {
			return err
		}
		var hubTables []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			hubTables = append(hubTables, n)
		}
		rows.Close()
		// The hub's record of this edge's highest sequence: never reuse one.
		for _, t := range hubTables {
			if t == "hub_origins" {
				var top sql.NullInt64
				if err := tx.SQL().QueryRowContext(ctx, "SELECT last_seq FROM hub_origins WHERE origin = ?", r.cfg.Edge).Scan(&top); err == nil && top.Int64 >= next {
					r.log.Warn("the hub has mutations of this edge the replica did not know; skipping their sequence numbers", "next_seq", top.Int64+1)
					next = top.Int64 + 1
				}
			}
		}
		for _, t := range hubTables {
			if _, err := tx.SQL().ExecContext(ctx, fmt.Sprintf("DROP TABLE %q", t)); err != nil {
				return err
			}
		}
		for _, q := range []string{"DELETE FROM edge_pending", "DELETE FROM edge_undo", "DELETE FROM edge_attention", "UPDATE edge_capture SET c = 0"} {
			if _, err := tx.SQL().ExecContext(ctx, q); err != nil {
				return err
			}
		}
		for _, p := range pending {
			if _, err := tx.Exec(ctx, "INSERT INTO edge_pending (seq, id, type, raw, created_at, local_status, local_reason, acked_seq, ack_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
				int64(p.Seq), p.ID, p.Type, []byte(p.Raw), p.CreatedAt, p.LocalStatus, p.LocalReason, int64(p.AckedSeq), p.AckStatus); err != nil {
				return err
			}
		}
		for _, a := range attention {
			if err := addAttention(ctx, tx, a); err != nil {
				return err
			}
			if a.DoneAt != 0 {
				if _, err := tx.Exec(ctx, "UPDATE edge_attention SET done_by = ?, done_at = ? WHERE id = ?", a.DoneBy, a.DoneAt, a.ID); err != nil {
					return err
				}
			}
		}
		for k, v := range map[string]int64{"next_seq": next, "applied_seq": int64(meta.HubSeq), "pending_applied": 0} {
			if err := setMeta(ctx, tx, k, v); err != nil {
				return err
			}
		}
		if err := r.settle(ctx, tx); err != nil {
			return err
		}
		return r.redo(ctx, tx)
	})
	if cerr := ndb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(snapPath)
		return fmt.Errorf("bootstrap: %w", err)
	}
	r.release()
	if err := old.Close(); err != nil {
		return fmt.Errorf("bootstrap: close old replica: %w", err)
	}
	// A closed database has no WAL content left; remove the files so
	// they cannot be applied to the new one.
	os.Remove(r.cfg.Path + "-wal")
	os.Remove(r.cfg.Path + "-shm")
	os.Remove(snapPath + "-wal")
	os.Remove(snapPath + "-shm")
	if err := os.Rename(snapPath, r.cfg.Path); err != nil {
		return fmt.Errorf("bootstrap: swap: %w", err)
	}
	db, err := r.open(ctx, r.cfg.Path)
	if err != nil {
		return fmt.Errorf("bootstrap: reopen: %w", err)
	}
	r.db = db
	r.applier = nil // read the new file's schema
	r.log.Info("replica bootstrapped from snapshot", "hub_seq", meta.HubSeq, "bytes", meta.Size, "pending", len(pending))
	return nil
}

// carry reads what a bootstrap keeps from the old replica.
func (r *Replica) carry(ctx context.Context, db *retail.DB) ([]PendingMutation, []Attention, int64, error) {
	next, err := metaInt(ctx, db, "next_seq")
	if err != nil {
		return nil, nil, 0, err
	}
	pending, err := pendingIn(ctx, db, 0, 1<<30, false)
	if err != nil {
		return nil, nil, 0, err
	}
	attention, err := attentionIn(ctx, db, true)
	return pending, attention, next, err
}

// DownloadSnapshot fetches a snapshot from a hub node's GET /v1/snapshot
// with this edge's credentials into dst, checking it (see ReadSnapshot).
// progress, when set, is called as bytes arrive with the total expected
// (0 when unknown).
func DownloadSnapshot(ctx context.Context, hubURL, user, password, dst string, progress func(done, total int64)) (SnapshotMeta, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(hubURL, "/")+"/v1/snapshot", nil)
	if err != nil {
		return SnapshotMeta{}, err
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return SnapshotMeta{}, fmt.Errorf("snapshot from %s: %w", hubURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return SnapshotMeta{}, fmt.Errorf("snapshot from %s: %s: %s", hubURL, resp.Status, msg)
	}
	var body io.Reader = resp.Body
	if progress != nil {
		body = &progressReader{r: resp.Body, total: resp.ContentLength, fn: progress}
	}
	return ReadSnapshot(ctx, body, dst)
}

type progressReader struct {
	r     io.Reader
	done  int64
	total int64
	last  time.Time
	fn    func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if now := time.Now(); err != nil || now.Sub(p.last) >= 500*time.Millisecond {
		p.last = now
		p.fn(p.done, max(p.total, 0))
	}
	return n, err
}
