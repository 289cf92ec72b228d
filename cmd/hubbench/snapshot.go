package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/endcap/endcap/hub"
)

// snapshotFlags make a snapshot compact the raft log: raft-wal deletes
// whole segments only, so with its default 64 MiB segments a wiped
// follower would catch up from the log rather than by snapshot install.
var snapshotFlags = []string{"--wal-segment-size", "1048576", "--trailing-logs", "10"}

// snapshot loads customers, then times a snapshot on the leader, the
// download of the whole database, and a wiped follower's catch-up by
// snapshot install.
func (b *bench) snapshot(ctx context.Context) error {
	c, leader, r, err := b.seeded(ctx, "snapshot", snapshotFlags...)
	if err != nil {
		return err
	}
	defer c.close()

	n, per := b.cfg.customers, b.cfg.custBatch
	chunks := (n + per - 1) / per
	b.logf("snapshot: loading %d customers, %d per request, %d requests in flight, to leader %s", n, per, b.cfg.loadConns, leader.id)
	t := time.Now()
	tenth := max(1, chunks/10)
	err = submitChunks(ctx, leader, chunks, b.cfg.loadConns, max(b.cfg.timeout, 2*time.Minute), func(i int) ([]json.RawMessage, error) {
		if i > 0 && i%tenth == 0 {
			b.logf("snapshot: %d of %d customers sent (%.0fs)", i*per, n, time.Since(t).Seconds())
		}
		out := make([]json.RawMessage, 0, per)
		for j := i * per; j < min(n, (i+1)*per); j++ {
			raw, err := r.customer(j)
			if err != nil {
				return nil, err
			}
			out = append(out, raw)
		}
		return out, nil
	})
	if err != nil {
		return fmt.Errorf("load customers: %w", err)
	}
	load := time.Since(t)
	if err := c.waitAllApplied(ctx, leader, 10*time.Minute); err != nil {
		return err
	}
	dbSize := fileSizes(filepath.Join(leader.dir, "state", "state.db"))
	b.logf("snapshot: loaded in %.1fs; leader's state.db %s", load.Seconds(), mb(dbSize))

	long, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	t = time.Now()
	if err := leader.client.TakeSnapshot(long); err != nil {
		return fmt.Errorf("snapshot on the leader: %w", err)
	}
	snap := time.Since(t)
	snapFile := newestSnapshotSize(leader.dir)
	b.logf("snapshot: POST /v1/snapshot on leader %s took %.2fs", leader.id, snap.Seconds())

	dst := filepath.Join(c.dir, "download.db")
	t = time.Now()
	meta, err := leader.client.DownloadSnapshot(long, "", "", dst)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	download := time.Since(t)
	os.Remove(dst)
	b.logf("snapshot: downloaded %s in %.2fs", mb(meta.Size), download.Seconds())

	// A wiped follower: kill it, move the cluster on, snapshot (which
	// compacts the log to its last 10 entries), wipe, restart.
	var follower *proc
	for _, p := range c.nodes {
		if p != leader {
			follower = p
			break
		}
	}
	follower.kill()
	for range 20 {
		sale, err := r.sale()
		if err != nil {
			return err
		}
		if err := submitChunks(ctx, leader, 1, 1, b.cfg.timeout, func(int) ([]json.RawMessage, error) { return []json.RawMessage{sale}, nil }); err != nil {
			return fmt.Errorf("writes with %s down: %w", follower.id, err)
		}
	}
	t = time.Now()
	if err := leader.client.TakeSnapshot(long); err != nil {
		return fmt.Errorf("second snapshot: %w", err)
	}
	b.logf("snapshot: second snapshot (log compacted) took %.2fs; wiping %s", time.Since(t).Seconds(), follower.id)
	if err := os.RemoveAll(follower.dir); err != nil {
		return err
	}
	st, err := status(ctx, leader)
	if err != nil {
		return err
	}
	t = time.Now()
	if err := c.restart(ctx, follower); err != nil {
		return err
	}
	ready := time.Since(t)
	if err := c.waitApplied(ctx, follower, st.AppliedIndex, 20*time.Minute); err != nil {
		return err
	}
	caught := time.Since(t)
	// Both at once: each dumps the whole database.
	var lsum, fsum hub.ChecksumResponse
	var lerr, ferr error
	var wg sync.WaitGroup
	wg.Go(func() { lsum, lerr = leader.client.Checksum(long) })
	wg.Go(func() { fsum, ferr = follower.client.Checksum(long) })
	wg.Wait()
	if lerr != nil || ferr != nil {
		return fmt.Errorf("checksums: leader: %v; %s: %v", lerr, follower.id, ferr)
	}
	verified := time.Since(t)
	if lsum.Checksum != fsum.Checksum || lsum.AppliedIndex != fsum.AppliedIndex {
		return fmt.Errorf("%s caught up to index %d with checksum %.12s; the leader is at %d with %.12s", follower.id, fsum.AppliedIndex, fsum.Checksum, lsum.AppliedIndex, lsum.Checksum)
	}
	installed := follower.restores.Load() > 0
	how := "by snapshot install"
	if !installed {
		how = "WITHOUT a snapshot install (from the log): the figure is not a snapshot install's"
	}
	b.logf("snapshot: wiped %s caught up %s in %.2fs (checksums equal at %.2fs)", follower.id, how, caught.Seconds(), verified.Seconds())

	fmt.Fprintf(b.out, "\n## snapshot: region database with %d customers (hubs run with %s)\n", n, strings.Join(snapshotFlags, " "))
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "load (upsert_customer, %d per request, %d in flight)\t%.1f s, %.0f customers/s\n", per, b.cfg.loadConns, load.Seconds(), float64(n)/load.Seconds())
	fmt.Fprintf(tw, "database size (leader's state.db + -wal)\t%s\n", mb(dbSize))
	fmt.Fprintf(tw, "snapshot on the leader (POST /v1/snapshot)\t%.2f s (raft snapshot file %s)\n", snap.Seconds(), mb(snapFile))
	fmt.Fprintf(tw, "download whole database (GET /v1/snapshot)\t%s in %.2f s = %.0f MB/s (copy on the hub, transfer, client's checksum and quick_check)\n",
		mb(meta.Size), download.Seconds(), float64(meta.Size)/1e6/download.Seconds())
	fmt.Fprintf(tw, "wiped follower catch-up (%s)\tready %.2f s, applied the leader's index at %.2f s, checksum equal at %.2f s\n", how, ready.Seconds(), caught.Seconds(), verified.Seconds())
	tw.Flush()
	return nil
}

// fileSizes is the size of a SQLite file with its -wal file.
func fileSizes(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if st, err := os.Stat(p); err == nil {
			n += st.Size()
		}
	}
	return n
}

// newestSnapshotSize is the size of the newest raft snapshot's state file
// in a node's data dir (raft's FileSnapshotStore: snapshots/ID/state.bin).
func newestSnapshotSize(dir string) int64 {
	names, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	var newest os.FileInfo
	for _, name := range names {
		if st, err := os.Stat(name); err == nil && (newest == nil || st.ModTime().After(newest.ModTime())) {
			newest = st
		}
	}
	if newest == nil {
		return 0
	}
	return newest.Size()
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
