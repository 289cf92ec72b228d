package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/endcap/endcap/hub"
)

// commands returns hubctl's commands, in the order 'hubctl --help' lists them.
func commands() []command {
	return []command{
		{
			name:    "status",
			summary: "this node's raft state and figures, and the cluster's members",
			about: `Prints the node's id, raft state, term, commit, applied and last-log
indexes, hub sequence and leader, then a table of the raft configuration's
members: ID, ROLE (leader/follower, voter/nonvoter), RAFT ADDR, HTTP ADDR.
The figures are the named node's own view; a follower's may trail the
leader's.`,
			example: "hubctl --hub 127.0.0.1:8001 status",
			setup:   noFlags(statusCmd),
		},
		{
			name:    "leader",
			summary: "the leader's id and addresses, as the node knows them",
			about: `Prints the id, raft address and HTTP (API) address of the leader the
named node knows of. Fails when it knows of none (an election is under way
or the node is cut off).`,
			example: "hubctl --hub 127.0.0.1:8002 leader",
			setup:   noFlags(leaderCmd),
		},
		{
			name:     "join",
			synopsis: "--id ID --raft ADDR --http ADDR",
			summary:  "add a started node to the cluster as a voter",
			about: `Adds a node to the cluster as a voter and records its API address.
Start the node first, without --bootstrap; any member takes the request and
forwards it to the leader. Prints the new membership.

First checks that the new node's API answers (with the same token), reports
the id given and does not lead a cluster of its own: a voter that cannot be
reached can leave a small cluster without a quorum, and so without a leader
to remove it again.`,
			example: `hub --id h2 --data /var/lib/endcap/h2 --raft 127.0.0.1:7002 --http 127.0.0.1:8002 &
hubctl --hub 127.0.0.1:8001 join --id h2 --raft 127.0.0.1:7002 --http 127.0.0.1:8002`,
			setup: joinCmd,
		},
		{
			name:     "remove",
			synopsis: "--id ID",
			summary:  "remove a node from the cluster",
			about: `Removes a node from the raft configuration (the leader does it; any member
forwards the request). Remove a node before retiring it for good, and keep
an odd number of voters.`,
			example: "hubctl remove --id h3",
			setup:   removeCmd,
		},
		{
			name:     "leader-transfer",
			synopsis: "[--id ID]",
			summary:  "hand leadership to another node",
			about: `Asks the leader to hand leadership to the node --id names, or without
--id to the most up-to-date follower, e.g. before restarting the leader's
machine. A one-node cluster has no one to hand it to. Then waits (up to 5s)
for the named node to learn the new leader, and prints it; --json prints
the named node's status at that point.`,
			example: "hubctl leader-transfer --id h2",
			setup:   transferCmd,
		},
		{
			name:    "snapshot",
			summary: "make the named node take a raft snapshot now",
			about: `Makes the named node (leader or not) take a raft snapshot now and compact
its raft log. On a large region this takes a while: raise --timeout if need
be (the snapshot goes on even if hubctl stops waiting).`,
			example: "hubctl --hub 127.0.0.1:8003 --timeout 5m snapshot",
			setup:   noFlags(snapshotCmd),
		},
		{
			name:    "checksum",
			summary: "the node's state checksum, applied index and hub sequence",
			about: `Prints the SHA-256 of the named node's state (the canonical dump) with the
raft index it was taken at and the hub sequence. Two nodes at the same
applied index must have the same checksum.`,
			example: `for h in 127.0.0.1:8001 127.0.0.1:8002 127.0.0.1:8003; do hubctl --hub $h checksum; done`,
			setup:   noFlags(checksumCmd),
		},
		{
			name:    "stores",
			summary: "which store edges are online and how far behind the hub they are",
			about: `Lists every edge this node has heard from over MQTT (each edge publishes a
retained presence, and the broker publishes its last will when it drops):
online or not, outbox mutations not yet applied at the hub (PENDING),
the hub sequence it has applied and how many it is BEHIND this node's,
items waiting for a person there (ATTENTION), and when it last reported.
Also prints whether this node's bridge is connected to the broker and
what it has counted (uploads, feed entries, dropped messages).`,
			example: "hubctl stores",
			setup:   noFlags(storesCmd),
		},
		{
			name:       "download-snapshot",
			synopsis:   "--out FILE [--edge ID --secret SECRET]",
			summary:    "download a checked copy of the region database",
			ownTimeout: true,
			about: `Downloads the named node's state (a SQLite database) into FILE, checking the
stream's checksum and the database's integrity. It is written beside FILE
and renamed into place (mode 0600) only when whole and checked, so a failed
download leaves an existing FILE as it was. Progress goes to stderr every
few seconds; at the end it prints the size, applied index, hub sequence
and time taken.

With --edge, authenticates as that edge (HTTP basic auth, as an edge does
when it starts) instead of with the operator token.

Here --timeout bounds how long the download may go without receiving data,
including while the hub copies its database before sending the first byte.`,
			example: "hubctl download-snapshot --out /tmp/region.db",
			setup:   downloadCmd,
		},
		{
			name:     "changes",
			synopsis: "--from SEQ [--limit N]",
			summary:  "list change-log entries from a hub sequence",
			about: `Lists the change log from hub sequence SEQ on, as the named node holds it:
SEQ, MUTATION (its id), STATUS (accepted, rejected, flagged) and ROWS (row
changes logged). With --json, the row changes themselves. When more
entries follow, a hint on stderr says where to continue.`,
			example: "hubctl changes --from 1 --limit 20",
			setup:   changesCmd,
		},
	}
}

func noFlags(f func(context.Context, *cli) error) func(*flag.FlagSet) func(context.Context, *cli) error {
	return func(*flag.FlagSet) func(context.Context, *cli) error { return f }
}

func statusCmd(ctx context.Context, c *cli) error {
	st, err := c.client.Status(ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(st)
	}
	t := c.table()
	t.row("node", st.ID)
	t.row("state", st.State)
	t.row("term", st.Term)
	t.row("commit index", st.CommitIndex)
	t.row("applied index", st.AppliedIndex)
	t.row("last log index", st.LastLogIndex)
	t.row("hub seq", st.HubSeq)
	t.row("leader", describeLeader(st.Leader))
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	if len(st.Peers) == 0 {
		fmt.Fprintf(c.stdout, "%s has no raft configuration yet: add it with 'hubctl join' on a member\n", st.ID)
		return nil
	}
	if err := c.printPeers(st); err != nil {
		return err
	}
	if !slices.ContainsFunc(st.Peers, func(p hub.Peer) bool { return p.ID == st.ID }) {
		fmt.Fprintf(c.stdout, "\n%s is not in its own raft configuration: it was removed, or has not caught up with its join\n", st.ID)
	}
	return nil
}

func describeLeader(m hub.Member) string {
	if m.ID == "" {
		return "none known (an election may be under way)"
	}
	return fmt.Sprintf("%s (raft %s, http %s)", m.ID, dash(m.RaftAddr), dash(m.HTTPAddr))
}

func (c *cli) printPeers(st hub.Status) error {
	t := c.table()
	t.row("ID", "ROLE", "RAFT ADDR", "HTTP ADDR")
	for _, p := range st.Peers {
		role := "follower"
		switch {
		case p.Leader:
			role = "leader"
		case st.Leader.ID == "":
			role = "unknown"
		}
		t.row(p.ID, role+", "+suffrage(p.Suffrage), dash(p.RaftAddr), dash(p.HTTPAddr))
	}
	return t.flush()
}

// suffrage is raft's suffrage name (Voter, Nonvoter, Staging) in lower case.
func suffrage(s string) string {
	switch s {
	case "Voter":
		return "voter"
	case "Nonvoter":
		return "nonvoter"
	case "Staging":
		return "staging"
	}
	return dash(s)
}

func leaderCmd(ctx context.Context, c *cli) error {
	st, err := c.client.Status(ctx)
	if err != nil {
		return err
	}
	if st.Leader.ID == "" {
		return fmt.Errorf("%s (%s) knows of no leader; an election may be under way", st.ID, st.State)
	}
	if c.json {
		return c.printJSON(st.Leader)
	}
	t := c.table()
	t.row("ID", "RAFT ADDR", "HTTP ADDR")
	t.row(st.Leader.ID, dash(st.Leader.RaftAddr), dash(st.Leader.HTTPAddr))
	return t.flush()
}

func joinCmd(fs *flag.FlagSet) func(context.Context, *cli) error {
	var m hub.Member
	fs.StringVar(&m.ID, "id", "", "the new node's `ID`, as it was started with (required)")
	fs.StringVar(&m.RaftAddr, "raft", "", "the new node's raft `ADDR`, host:port the others can reach (required)")
	fs.StringVar(&m.HTTPAddr, "http", "", "the new node's API `ADDR`, host:port (required)")
	skipCheck := fs.Bool("skip-check", false, "do not first check that the new node's API answers with that id (when hubctl cannot reach it)")
	return func(ctx context.Context, c *cli) error {
		if m.ID == "" || m.RaftAddr == "" || m.HTTPAddr == "" {
			return usagef("join: --id, --raft and --http are required; run 'hubctl join --help'")
		}
		for _, f := range [][2]string{{"--raft", m.RaftAddr}, {"--http", m.HTTPAddr}} {
			if _, _, err := net.SplitHostPort(f[1]); err != nil {
				return usagef("join: %s %q: want host:port", f[0], f[1])
			}
		}
		if !*skipCheck {
			if err := c.checkNewNode(ctx, m); err != nil {
				return err
			}
		}
		st, err := c.client.Join(ctx, m)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(st)
		}
		fmt.Fprintf(c.stdout, "%s joined as a voter (raft %s, http %s)\n\n", m.ID, m.RaftAddr, m.HTTPAddr)
		return c.printPeers(st)
	}
}

// checkNewNode checks that the node to join is up, is the one named and
// is not a cluster of its own: a voter that cannot be reached can leave a
// small cluster without a quorum, and then without a leader to remove it.
func (c *cli) checkNewNode(ctx context.Context, m hub.Member) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := (&hub.Client{Addr: m.HTTPAddr, Token: c.token, HTTP: c.client.HTTP}).Status(ctx)
	if err != nil {
		var api *hub.APIError
		if errors.As(err, &api) && api.Code == http.StatusUnauthorized {
			return fmt.Errorf("the new node at %s refused the token: start it with the cluster's token", m.HTTPAddr)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("the new node's API at %s does not answer (%v): start it first, without --bootstrap; "+
			"a voter that cannot be reached can leave the cluster without a quorum (--skip-check if only hubctl cannot reach it)", m.HTTPAddr, err)
	}
	if st.ID != m.ID {
		return fmt.Errorf("the node at %s is %s, not %s", m.HTTPAddr, st.ID, m.ID)
	}
	if len(st.Peers) == 1 && st.Peers[0].ID == st.ID && st.Leader.ID == st.ID {
		return fmt.Errorf("%s at %s leads a one-node cluster of its own (started with --bootstrap?): "+
			"stop it, empty its data directory and start it without --bootstrap", m.ID, m.HTTPAddr)
	}
	return nil
}

func removeCmd(fs *flag.FlagSet) func(context.Context, *cli) error {
	id := fs.String("id", "", "the `ID` of the node to remove (required)")
	return func(ctx context.Context, c *cli) error {
		if *id == "" {
			return usagef("remove: --id is required; run 'hubctl remove --help'")
		}
		st, err := c.client.Remove(ctx, *id)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(st)
		}
		fmt.Fprintf(c.stdout, "%s removed\n\n", *id)
		return c.printPeers(st)
	}
}

func transferCmd(fs *flag.FlagSet) func(context.Context, *cli) error {
	id := fs.String("id", "", "the `ID` of the node to hand leadership to (default: the most up-to-date follower)")
	return func(ctx context.Context, c *cli) error {
		st, err := c.client.TransferLeadership(ctx, *id)
		if err != nil {
			return err
		}
		from := st.ID
		// The old leader answers as soon as it has stepped down, before
		// anyone knows who won: wait a little for the named node to know.
		wait, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	poll:
		for st.Leader.ID == "" || st.Leader.ID == from {
			select {
			case <-wait.Done():
				break poll
			case <-time.After(50 * time.Millisecond):
			}
			if now, err := c.client.Status(wait); err == nil {
				st = now
			}
		}
		if c.json {
			return c.printJSON(st)
		}
		if st.Leader.ID == "" || st.Leader.ID == from {
			fmt.Fprintf(c.stdout, "%s handed leadership over; %s does not know the new leader yet (see 'hubctl leader')\n", from, st.ID)
			return nil
		}
		fmt.Fprintf(c.stdout, "%s handed leadership over; the leader is now %s\n", from, describeLeader(st.Leader))
		return nil
	}
}

// snapshotResult is what snapshot prints with --json: the API's answer
// (which hub.Client.TakeSnapshot does not return) rebuilt from a status
// read just after.
type snapshotResult struct {
	ID           string  `json:"id"`
	AppliedIndex uint64  `json:"applied_index"`
	Seconds      float64 `json:"seconds"`
}

func snapshotCmd(ctx context.Context, c *cli) error {
	start := time.Now()
	if err := c.client.TakeSnapshot(ctx); err != nil {
		return err
	}
	elapsed := time.Since(start)
	st, err := c.client.Status(ctx)
	if err != nil {
		return err
	}
	res := snapshotResult{ID: st.ID, AppliedIndex: st.AppliedIndex, Seconds: elapsed.Seconds()}
	if c.json {
		return c.printJSON(res)
	}
	fmt.Fprintf(c.stdout, "snapshot taken on %s at applied index %d in %s\n", res.ID, res.AppliedIndex, round(elapsed))
	return nil
}

func storesCmd(ctx context.Context, c *cli) error {
	resp, err := c.client.Stores(ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	t := c.table()
	t.row("EDGE", "STATE", "PENDING", "APPLIED", "BEHIND", "ATTENTION", "LAST SEEN")
	for _, s := range resp.Stores {
		state := "offline"
		if s.Online {
			state = "online"
		}
		seen := "-"
		if s.At > 0 {
			seen = time.Since(time.UnixMilli(s.At)).Round(time.Second).String() + " ago"
		}
		t.row(s.Edge, state, s.Pending, s.AppliedSeq, s.Behind, s.Attention, seen)
	}
	if err := t.flush(); err != nil {
		return err
	}
	broker := "connected"
	if !resp.Connected {
		broker = "NOT connected"
	}
	b := resp.Bridge
	fmt.Fprintf(c.stdout, "\nhub seq %d; this node's bridge is %s to the broker; uploads %d (%d mutations, %d gaps), feed entries published %d, catch-ups served %d, messages dropped %d\n",
		resp.HubSeq, broker, b.Uploads, b.Mutations, b.Gaps, b.Published, b.CatchupsServed, b.Dropped)
	return nil
}

func checksumCmd(ctx context.Context, c *cli) error {
	sum, err := c.client.Checksum(ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(sum)
	}
	t := c.table()
	t.row("applied index", sum.AppliedIndex)
	t.row("hub seq", sum.HubSeq)
	t.row("checksum", sum.Checksum)
	return t.flush()
}

func changesCmd(fs *flag.FlagSet) func(context.Context, *cli) error {
	from := fs.Uint64("from", 0, "the first hub sequence `SEQ` to list, 1 or more (required)")
	limit := fs.Int("limit", 100, "list at most `N` entries, 1..10000")
	return func(ctx context.Context, c *cli) error {
		if *from == 0 {
			return usagef("changes: --from SEQ (1 or more) is required; run 'hubctl changes --help'")
		}
		if *limit < 1 || *limit > 10000 {
			return usagef("changes: --limit must be 1..10000")
		}
		resp, err := c.client.Changes(ctx, *from, *limit)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(resp)
		}
		if len(resp.Changes) == 0 {
			fmt.Fprintf(c.stdout, "no changes from seq %d (the node's hub seq is %d)\n", *from, resp.HubSeq)
			return nil
		}
		t := c.table()
		t.row("SEQ", "MUTATION", "STATUS", "ROWS")
		for _, ch := range resp.Changes {
			t.row(ch.Seq, ch.MutationID, ch.Status, len(ch.Changes))
		}
		if err := t.flush(); err != nil {
			return err
		}
		if last := resp.Changes[len(resp.Changes)-1].Seq; last < resp.HubSeq {
			fmt.Fprintf(c.stderr, "more follow (hub seq %d): hubctl changes --from %d\n", resp.HubSeq, last+1)
		}
		return nil
	}
}

// downloadResult is what download-snapshot prints with --json: the
// snapshot's meta, where it went and how long it took.
type downloadResult struct {
	File string `json:"file"`
	hub.SnapshotMeta
	Seconds float64 `json:"seconds"`
}

func downloadCmd(fs *flag.FlagSet) func(context.Context, *cli) error {
	out := fs.String("out", "", "write the database to `FILE` (required)")
	edge := fs.String("edge", "", "authenticate as edge `ID` (HTTP basic auth) instead of with the operator token")
	secret := fs.String("secret", "", "the edge's `SECRET` (default $"+envSecret+")")
	return func(ctx context.Context, c *cli) error {
		if *out == "" {
			return usagef("download-snapshot: --out FILE is required; run 'hubctl download-snapshot --help'")
		}
		if *edge == "" && *secret != "" {
			return usagef("download-snapshot: --secret needs --edge")
		}
		if *edge != "" && *secret == "" {
			*secret = os.Getenv(envSecret)
			if *secret == "" {
				return usagef("download-snapshot: --edge needs --secret or $%s", envSecret)
			}
		}
		if fi, err := os.Stat(*out); err == nil && fi.IsDir() {
			return usagef("download-snapshot: --out %s is a directory; name a file", *out)
		}
		tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*.partial")
		if err != nil {
			return err
		}
		tmp.Close()
		defer os.Remove(tmp.Name()) // gone already once renamed

		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		start := time.Now()
		stalled := fmt.Errorf("download from %s stalled: no data for %s (raise --timeout)", c.hub, c.timeout)
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			c.watchDownload(ctx, done, tmp.Name(), start, func() { cancel(stalled) })
		})
		meta, err := c.client.DownloadSnapshot(ctx, *edge, *secret, tmp.Name())
		close(done)
		wg.Wait()
		if err != nil {
			if context.Cause(ctx) == stalled {
				return stalled
			}
			var api *hub.APIError
			if *edge != "" && errors.As(err, &api) && api.Code == http.StatusUnauthorized {
				return fmt.Errorf("unauthorized: check --edge and --secret (or $%s)", envSecret)
			}
			return err
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return err
		}
		elapsed := time.Since(start)
		if c.json {
			return c.printJSON(downloadResult{File: *out, SnapshotMeta: meta, Seconds: elapsed.Seconds()})
		}
		fmt.Fprintf(c.stdout, "wrote %s: %s, applied index %d, hub seq %d, schema version %d, in %s (%s/s)\n",
			*out, bytesize(meta.Size), meta.AppliedIndex, meta.HubSeq, meta.SchemaVersion, round(elapsed),
			bytesize(int64(float64(meta.Size)/max(elapsed.Seconds(), 1e-3))))
		return nil
	}
}

// watchDownload reports a download's progress on stderr, from the size of
// the file it is written to, until done; it calls stall when no data came
// for --timeout (including before the first byte).
func (c *cli) watchDownload(ctx context.Context, done <-chan struct{}, path string, start time.Time, stall func()) {
	const every = 2 * time.Second
	tick := every / 4
	if c.timeout > 0 {
		tick = min(tick, max(c.timeout/4, 10*time.Millisecond))
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var size int64
	grew, printed, waited := start, start, false
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case now := <-t.C:
			if fi, err := os.Stat(path); err == nil && fi.Size() != size {
				size, grew = fi.Size(), now
			}
			if c.timeout > 0 && now.Sub(grew) >= c.timeout {
				stall()
				return
			}
			if now.Sub(printed) < every {
				continue
			}
			printed = now
			switch {
			case size > 0:
				fmt.Fprintf(c.stderr, "downloading: %s so far, %s/s\n", bytesize(size), bytesize(int64(float64(size)/now.Sub(start).Seconds())))
			case !waited:
				waited = true
				fmt.Fprintf(c.stderr, "waiting for %s to copy its database...\n", c.hub)
			}
		}
	}
}
