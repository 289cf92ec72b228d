package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// Config configures a hub node. Zero values take the defaults noted.
type Config struct {
	ID       string // this node's raft server id; required
	DataDir  string // raft log, snapshots and state; required
	RaftAddr string // raft TCP bind address, e.g. 127.0.0.1:7000; required
	HTTPAddr string // operator API bind address, e.g. 127.0.0.1:8080; required
	// Bootstrap makes this node a one-node cluster if it has no state yet;
	// the others are added with hubctl join.
	Bootstrap bool
	// Token is the operator API's bearer token; required.
	Token string
	// EdgeCredentials maps an edge id to its secret; an edge uses them
	// (HTTP basic auth) to download the snapshot.
	EdgeCredentials map[string]string
	// EdgeAuth, when set, checks an edge's credentials instead (the
	// region's broker password file: one password per edge everywhere).
	EdgeAuth func(user, password string) bool
	// OpenMetrics serves /metrics without the token.
	OpenMetrics bool
	// RetainChanges is how many change-log entries are kept; 0: 1,000,000.
	RetainChanges uint64
	// SnapshotThreshold is how many log entries trigger a snapshot; 0: 8192.
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks whether SnapshotThreshold
	// entries have accumulated; 0: 2 minutes.
	SnapshotInterval time.Duration
	// TrailingLogs is how many log entries are kept after a snapshot, so a
	// follower that is a little behind catches up from the log rather than
	// a whole snapshot; 0: 10240.
	TrailingLogs uint64
	// WALSegmentSize is the raft log's segment size in bytes; 0: raft-wal's
	// default (64 MiB). Compaction deletes whole segments only, and entries
	// of the newest segment stay readable, so a small size is only for
	// tests that must see a follower caught up by snapshot.
	WALSegmentSize int
	// BatchMax bounds the mutations in one raft entry; 0: 1000.
	BatchMax int
	// BatchWait bounds how long the first mutation of a batch waits for
	// company; 0: 2ms. Negative: never wait.
	BatchWait time.Duration
	// Region is the region the hub serves (topic names); required with MQTT.
	Region string
	// MQTT connects the node to the region's broker (URL, user, password,
	// TLS): edges' uploads come in and the change feed goes out there.
	// An empty URL runs the node without the bridge.
	MQTT replication.MQTTConfig
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// RaftLogOutput receives raft's own logs; nil discards them.
	RaftLogOutput io.Writer
}

func (c *Config) setDefaults() error {
	switch {
	case c.ID == "":
		return errors.New("hub: node id is required")
	case c.DataDir == "":
		return errors.New("hub: data dir is required")
	case c.RaftAddr == "" || c.HTTPAddr == "":
		return errors.New("hub: raft and http addresses are required")
	case c.Token == "":
		return errors.New("hub: an operator token is required")
	}
	if c.RetainChanges == 0 {
		c.RetainChanges = 1_000_000
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.BatchMax == 0 {
		c.BatchMax = 1000
	}
	if c.BatchWait == 0 {
		c.BatchWait = 2 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RaftLogOutput == nil {
		c.RaftLogOutput = io.Discard
	}
	return nil
}

// Node is a running hub node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	fsm   *FSM
	raft  *raft.Raft
	trans *raft.NetworkTransport
	wal   *wal.WAL
	meta  *metadb.BoltMetaDB
	http  *http.Server
	ln    net.Listener

	proposals chan *proposal
	// needBarrier: this node became leader; the batch loop waits for
	// the log before its term to be applied before it executes.
	needBarrier atomic.Bool
	stop        chan struct{}
	wg          sync.WaitGroup
	metrics     *metrics
	client      *http.Client
	bridge      *replication.Bridge
}

// ErrNotLeader: a write reached a node that is not the leader and could
// not be forwarded.
var ErrNotLeader = errors.New("not the leader")

// Start opens the node's state and starts raft and the HTTP API.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.ID),
		proposals: make(chan *proposal, 4096), stop: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second}}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	var err error
	if n.fsm, err = OpenFSM(ctx, FSMConfig{Dir: filepath.Join(cfg.DataDir, "state"), Logger: n.log, RetainChanges: cfg.RetainChanges}); err != nil {
		return nil, err
	}
	walDir := filepath.Join(cfg.DataDir, "raft-wal")
	if err := os.MkdirAll(walDir, 0o755); err != nil {
		return nil, err
	}
	n.meta = &metadb.BoltMetaDB{}
	segment := wal.DefaultSegmentSize
	if cfg.WALSegmentSize > 0 {
		segment = cfg.WALSegmentSize
	}
	if n.wal, err = wal.Open(walDir, wal.WithMetaStore(n.meta), wal.WithSegmentSize(segment)); err != nil {
		return nil, fmt.Errorf("hub: raft log %s: %w", walDir, err)
	}
	snaps, err := raft.NewFileSnapshotStore(cfg.DataDir, 2, cfg.RaftLogOutput) // in DataDir/snapshots
	if err != nil {
		return nil, fmt.Errorf("hub: snapshots: %w", err)
	}
	if err := n.catchUpFromSnapshot(snaps); err != nil {
		return nil, err
	}
	if n.trans, err = raft.NewTCPTransport(cfg.RaftAddr, nil, 3, 10*time.Second, cfg.RaftLogOutput); err != nil {
		return nil, fmt.Errorf("hub: raft transport %s: %w", cfg.RaftAddr, err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Info, Output: cfg.RaftLogOutput})
	rc.BatchApplyCh = true
	// Effects entries carry whole rows: up to BatchMax mutations' worth,
	// 2 to 3 MB at the default 1,000 3-line sales. 32 of them bound one AppendEntries
	// to a follower catching up near 100 MB; in steady state the leader
	// has one entry in flight anyway.
	rc.MaxAppendEntries = 32
	rc.NoSnapshotRestoreOnStart = true // the state file is durable; see catchUpFromSnapshot
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.SnapshotInterval = cfg.SnapshotInterval
	existing, err := raft.HasExistingState(n.wal, n.wal, snaps)
	if err != nil {
		return nil, err
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.wal, n.wal, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("hub: raft: %w", err)
	}
	if cfg.Bootstrap && !existing {
		f := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: n.trans.LocalAddr()}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("hub: bootstrap: %w", err)
		}
	}
	if cfg.MQTT.URL != "" {
		if n.bridge, err = replication.StartBridge(context.WithoutCancel(ctx), replication.BridgeConfig{
			Region: cfg.Region, Backend: backend{n}, MQTT: cfg.MQTT, Logger: n.log}); err != nil {
			return nil, fmt.Errorf("hub: bridge: %w", err)
		}
	}
	n.metrics = newMetrics(n)
	if n.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("hub: http %s: %w", cfg.HTTPAddr, err)
	}
	n.http = &http.Server{Handler: n.routes(), ReadHeaderTimeout: 10 * time.Second}
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.http.Serve(n.ln) }()
	go func() { defer n.wg.Done(); n.batchLoop() }()
	go func() { defer n.wg.Done(); n.leaderLoop() }()
	ok = true
	n.log.Info("hub node started", "raft", n.trans.LocalAddr(), "http", n.HTTPAddr(), "applied_index", n.fsm.AppliedIndex())
	return n, nil
}

// catchUpFromSnapshot restores the newest snapshot when the state file is
// behind it (the file was lost or restored from an old backup): raft
// starts with NoSnapshotRestoreOnStart, because normally the state file
// is ahead of every snapshot and restoring one would only waste time.
func (n *Node) catchUpFromSnapshot(snaps *raft.FileSnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	if list[0].Index <= n.fsm.AppliedIndex() {
		return nil
	}
	_, rc, err := snaps.Open(list[0].ID) // checks the file's CRC
	if err != nil {
		return fmt.Errorf("hub: state is behind snapshot %s, which cannot be read (%w: %v); wipe this node's data directory and let it rejoin",
			list[0].ID, ErrCorruptSnapshot, err)
	}
	n.log.Info("state is behind the newest snapshot; restoring it", "state_index", n.fsm.AppliedIndex(), "snapshot_index", list[0].Index)
	if err := n.fsm.Restore(rc); err != nil {
		return fmt.Errorf("hub: snapshot %s: %w", list[0].ID, err)
	}
	return nil
}

// HTTPAddr is the address the operator API listens on.
func (n *Node) HTTPAddr() string {
	if n.ln == nil {
		return ""
	}
	return n.ln.Addr().String()
}

// RaftAddr is the address raft listens on.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// FSM is the node's state machine.
func (n *Node) FSM() *FSM { return n.fsm }

// Raft is the node's raft instance.
func (n *Node) Raft() *raft.Raft { return n.raft }

// Close stops the node: the HTTP API, raft, the log and the state.
func (n *Node) Close() error {
	select {
	case <-n.stop:
		return nil
	default:
		close(n.stop)
	}
	if n.bridge != nil {
		n.bridge.Close()
	}
	if n.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.http.Shutdown(ctx)
		cancel()
	}
	if n.raft != nil {
		n.raft.Shutdown().Error()
	}
	n.wg.Wait()
	if n.trans != nil {
		n.trans.Close()
	}
	if n.wal != nil {
		n.wal.Close()
	}
	if n.meta != nil {
		n.meta.Close()
	}
	if n.fsm != nil {
		n.fsm.Close()
	}
	return nil
}

// leaderLoop records this node's addresses in the replicated member table
// whenever it becomes leader, so every node can find every node's API.
func (n *Node) leaderLoop() {
	for {
		select {
		case <-n.stop:
			return
		case isLeader := <-n.raft.LeaderCh():
			if isLeader {
				n.needBarrier.Store(true)
				n.putMember(Member{ID: n.cfg.ID, RaftAddr: n.RaftAddr(), HTTPAddr: n.HTTPAddr()})
			}
		}
	}
}

func (n *Node) putMember(m Member) error {
	b, _ := json.Marshal(m)
	return n.raft.Apply(append([]byte{entryMember}, b...), 10*time.Second).Error()
}

// proposal is one Submit call waiting for its mutations to commit.
type proposal struct {
	muts  []retail.Mutation
	start time.Time
	done  chan proposalResult
}

type proposalResult struct {
	results []MutationResult
	err     error
}

// Submit commits decoded mutations and waits for their results. Only the leader can: elsewhere it
// returns ErrNotLeader. Concurrent submissions are grouped into one raft
// entry (group commit). An error means the outcome is unknown: retrying is
// safe, because the hub applies a mutation id once.
func (n *Node) Submit(ctx context.Context, muts []retail.Mutation) ([]MutationResult, error) {
	if n.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	p := &proposal{muts: muts, start: time.Now(), done: make(chan proposalResult, 1)}
	select {
	case n.proposals <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.stop:
		return nil, errors.New("hub: shutting down")
	}
	select {
	case r := <-p.done:
		n.metrics.commitLatency.Observe(time.Since(p.start).Seconds())
		return r.results, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// batchLoop takes waiting proposals and commits them as one raft entry
// (group commit), up to BatchMax mutations: the leader executes them on
// its state and proposes their effects (see effects.go). One batch is
// executed and committed at a time, because the next one must be
// executed on the state that includes it; the proposals that come in
// meanwhile make up the next batch. When the loop is idle a lone writer
// is not delayed; after a commit, the next batch waits up to BatchWait
// for more company.
func (n *Node) batchLoop() {
	busy := false
	for {
		var first *proposal
		select {
		case first = <-n.proposals:
		case <-n.stop:
			return
		}
		batch, count := []*proposal{first}, len(first.muts)
		var deadline <-chan time.Time
		var timer *time.Timer
		if n.cfg.BatchWait > 0 && busy {
			timer = time.NewTimer(n.cfg.BatchWait)
			deadline = timer.C
		}
	collect:
		for count < n.cfg.BatchMax {
			select {
			case p := <-n.proposals:
				batch = append(batch, p)
				count += len(p.muts)
				continue
			case <-n.stop:
				return
			default:
			}
			if deadline == nil {
				break
			}
			select {
			case p := <-n.proposals:
				batch = append(batch, p)
				count += len(p.muts)
			case <-deadline:
				break collect
			case <-n.stop:
				return
			}
		}
		if timer != nil {
			timer.Stop()
		}
		n.commit(batch, count)
		busy = len(n.proposals) > 0
	}
}

// maxStale bounds how often a batch is executed again because its entry
// met another state than the one it was executed on.
const maxStale = 3

// commit executes a batch on the leader's state, proposes its effects
// and answers every proposal of it.
func (n *Node) commit(batch []*proposal, count int) {
	all := make([]retail.Mutation, 0, count)
	for _, p := range batch {
		all = append(all, p.muts...)
	}
	n.metrics.batchSize.Observe(float64(count))
	results, err := n.executeAndPropose(all)
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		err = fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	i := 0
	for _, p := range batch {
		r := proposalResult{err: err}
		if err == nil {
			r.results = results[i : i+len(p.muts)]
		}
		i += len(p.muts)
		p.done <- r
	}
}

func (n *Node) executeAndPropose(all []retail.Mutation) ([]MutationResult, error) {
	for attempt := 0; ; attempt++ {
		// A new leader first applies every entry of the log before its
		// term, so that it executes on the newest state.
		if n.needBarrier.Load() || attempt > 0 {
			if err := n.raft.Barrier(30 * time.Second).Error(); err != nil {
				return nil, err
			}
			n.needBarrier.Store(false)
		}
		if n.raft.State() != raft.Leader {
			return nil, raft.ErrNotLeader
		}
		ex, err := n.fsm.execute(context.Background(), all, true)
		if err != nil {
			return nil, err
		}
		if ex.entry == nil {
			return ex.results, nil // duplicates only: already committed
		}
		fut := n.raft.Apply(ex.entry, 30*time.Second)
		err = fut.Error()
		n.fsm.dropPending(ex.pending)
		if err != nil {
			return nil, err
		}
		if r, ok := fut.Response().(effectsResult); !ok {
			return nil, fmt.Errorf("hub: effects entry answered %T", fut.Response())
		} else if !r.Stale {
			return ex.results, nil
		}
		n.metrics.staleBatches.Inc()
		if attempt+1 >= maxStale {
			return nil, fmt.Errorf("%w: the state moved %d times while the batch was executed", ErrNotLeader, maxStale)
		}
	}
}

// leader returns the leader's member record, if known.
func (n *Node) leader(ctx context.Context) (Member, bool) {
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return Member{}, false
	}
	members, err := n.fsm.Members(ctx)
	if err != nil {
		return Member{}, false
	}
	m, ok := members[string(id)]
	if !ok {
		return Member{ID: string(id), RaftAddr: string(addr)}, false
	}
	return m, true
}

// Status is what /v1/status reports.
type Status struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastLogIndex uint64 `json:"last_log_index"`
	HubSeq       uint64 `json:"hub_seq"`
	Leader       Member `json:"leader"`
	Peers        []Peer `json:"peers"`
	// Consistency: these figures are this node's own view, read without
	// asking the leader.
	Consistency string `json:"consistency"`
}

// Peer is a member of the raft configuration.
type Peer struct {
	Member
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// Status reports the node's raft and state figures.
func (n *Node) Status(ctx context.Context) (Status, error) {
	stats := n.raft.Stats()
	u := func(k string) uint64 { v, _ := strconv.ParseUint(stats[k], 10, 64); return v }
	st := Status{ID: n.cfg.ID, State: n.raft.State().String(), Term: u("term"), CommitIndex: u("commit_index"),
		AppliedIndex: n.fsm.AppliedIndex(), LastLogIndex: u("last_log_index"), HubSeq: n.fsm.HubSeq(), Consistency: "local"}
	st.Leader, _ = n.leader(ctx)
	members, err := n.fsm.Members(ctx)
	if err != nil {
		return st, err
	}
	fut := n.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return st, err
	}
	for _, s := range fut.Configuration().Servers {
		m := members[string(s.ID)]
		m.ID, m.RaftAddr = string(s.ID), string(s.Address)
		st.Peers = append(st.Peers, Peer{Member: m, Suffrage: s.Suffrage.String(), Leader: string(s.ID) == st.Leader.ID})
	}
	return st, nil
}

// Join adds a node as a voter (leader only). A voter that cannot be
// reached can cost a small cluster its quorum, and then there is no leader
// to remove it again; so the node must answer on its API as m.ID first, and
// it joins as a non-voter and becomes a voter only once it has caught up.
func (n *Node) Join(ctx context.Context, m Member) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	peer := &Client{Addr: m.HTTPAddr, Token: n.cfg.Token, HTTP: n.client}
	st, err := peer.Status(ctx)
	if err != nil {
		return fmt.Errorf("join %s: its API at %s does not answer (%v): start it first, without --bootstrap", m.ID, m.HTTPAddr, err)
	}
	if st.ID != m.ID {
		return fmt.Errorf("join %s: the node at %s says it is %s", m.ID, m.HTTPAddr, st.ID)
	}
	if st.State == raft.Leader.String() && len(st.Peers) == 1 {
		return fmt.Errorf("join %s: it leads a cluster of its own (started with --bootstrap?); wipe it and start it without", m.ID)
	}
	if err := n.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, 30*time.Second).Error(); err != nil {
		return fmt.Errorf("join %s: add as non-voter: %w", m.ID, err)
	}
	if err := n.putMember(m); err != nil {
		return fmt.Errorf("join %s: %w", m.ID, err)
	}
	target := n.raft.LastIndex()
	if applied, err := waitApplied(ctx, peer, target, 60*time.Second); err != nil {
		n.raft.RemoveServer(raft.ServerID(m.ID), 0, 10*time.Second)
		return fmt.Errorf("join %s: it did not catch up to index %d within 60s (at %d: %v); removed again", m.ID, target, applied, err)
	}
	if err := n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, 30*time.Second).Error(); err != nil {
		return fmt.Errorf("join %s: promote to voter: %w", m.ID, err)
	}
	// Return once the node itself knows it is a voter.
	if _, err := waitApplied(ctx, peer, n.raft.LastIndex(), 30*time.Second); err != nil {
		return fmt.Errorf("join %s: promoted, but it has not applied its promotion: %w", m.ID, err)
	}
	return nil
}

// waitApplied polls a node's status until it has applied index target.
func waitApplied(ctx context.Context, peer *Client, target uint64, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	var last uint64
	for {
		st, err := peer.Status(ctx)
		if err == nil {
			if last = st.AppliedIndex; last >= target {
				return last, nil
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("timed out")
			}
			return last, err
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Remove removes a server (leader only).
func (n *Node) Remove(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 30*time.Second).Error(); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	b, _ := json.Marshal(Member{ID: id})
	return n.raft.Apply(append([]byte{entryMemberGone}, b...), 10*time.Second).Error()
}

// TransferLeadership hands leadership to id, or to the most up-to-date
// follower when id is empty (leader only).
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		members, _ := n.fsm.Members(ctx)
		m, ok := members[id]
		if !ok {
			return fmt.Errorf("unknown member %s", id)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(m.RaftAddr))
	}
	return f.Error()
}

// Snapshot asks raft to take a snapshot now (and compact its log).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }
