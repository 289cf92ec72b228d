package replication

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/endcap/endcap/retail"
)

// HubBackend is what the bridge needs of a hub node. Package hub
// implements it; replication does not import hub.
type HubBackend interface {
	// NodeID names this node.
	NodeID() string
	// Leader reports whether this node leads now, and the term.
	Leader() (leader bool, term uint64)
	// Barrier waits until everything committed before it is applied here.
	Barrier(ctx context.Context) error
	// Submit commits mutations through the leader's group commit and
	// returns their results in order.
	Submit(ctx context.Context, raws []json.RawMessage) ([]AckResult, error)
	// OriginSeq is the highest outbox sequence of origin applied.
	OriginSeq(ctx context.Context, origin string) (uint64, error)
	// Changes reads up to limit change-log entries from from on. When
	// from is older than the retained log it returns a *CompactedError.
	Changes(ctx context.Context, from uint64, limit int) ([]Change, error)
	// HubSeq is the latest hub sequence applied on this node.
	HubSeq() uint64
	// WaitSeq blocks until HubSeq passes after or ctx ends.
	WaitSeq(ctx context.Context, after uint64)
}

// ResultReader is an optional HubBackend interface: the results of
// mutations this node has applied, read from its own state without raft,
// keyed by id, each with Duplicate set and Seq 0 (as the FSM answers a
// duplicate). An id it has not applied is left out. The bridge answers a
// resent upload's duplicates with it.
type ResultReader interface {
	PreviousResults(ctx context.Context, ids []string) (map[string]AckResult, error)
}

// ErrCompacted: the change log no longer holds the range asked for; the
// edge must bootstrap from a snapshot.
var ErrCompacted = errors.New("change log compacted")

// CompactedError is ErrCompacted with where the retained log starts.
type CompactedError struct{ Oldest uint64 }

func (e *CompactedError) Unwrap() error { return ErrCompacted }

func (e *CompactedError) Error() string {
	return fmt.Sprintf("change log compacted: oldest retained is %d", e.Oldest)
}

// BridgeConfig configures a hub node's bridge.
type BridgeConfig struct {
	Region  string
	Backend HubBackend
	// MQTT: URL, user, password, TLS; the client id is set per node.
	MQTT   MQTTConfig
	Logger *slog.Logger
	// FeedBatch bounds the entries in one feed message; 0 means 500.
	FeedBatch int
	// CatchupBudget bounds the entries sent for one catch-up request; 0
	// means 5000.
	CatchupBudget int
	// HeadEvery: the head heartbeat period; 0 means 1 s.
	HeadEvery time.Duration
}

// BridgeStats are a bridge's counters.
type BridgeStats struct {
	Uploads          int64 `json:"uploads"`           // upload messages handled
	Mutations        int64 `json:"mutations"`         // mutations submitted from uploads
	Gaps             int64 `json:"gaps"`              // uploads that started past the expected sequence
	Published        int64 `json:"published"`         // feed entries published
	CatchupsServed   int64 `json:"catchups_served"`   // catch-up requests answered
	Dropped          int64 `json:"dropped"`           // malformed, oversized or unknown messages dropped
	ForeignMutations int64 `json:"foreign_mutations"` // mutations whose origin was not the uploading edge
}

// StoreStatus is what the hub knows of one edge, from its presence.
type StoreStatus struct {
	Edge       string `json:"edge"`
	Online     bool   `json:"online"`
	Pending    int    `json:"pending"`
	AppliedSeq uint64 `json:"applied_seq"`
	Behind     uint64 `json:"behind"` // hub sequences not yet applied there
	Attention  int    `json:"attention"`
	At         int64  `json:"at"` // unix ms of the edge's last presence
}

// Bridge connects a hub node to the broker. Every node follows edges'
// presence; the leader also takes uploads (submitting them through raft
// and acking each edge), publishes the change feed with a head heartbeat,
// and answers catch-up requests.
type Bridge struct {
	cfg    BridgeConfig
	b      HubBackend
	topics Topics
	log    *slog.Logger
	conn   *Conn

	mu       sync.Mutex
	presence map[string]Presence
	workers  map[string]chan []byte // per-edge queue of up messages, leader only
	leading  context.CancelFunc     // owned by followLeadership

	stats  struct{ uploads, muts, gaps, published, catchups, dropped, foreign atomic.Int64 }
	cancel context.CancelFunc
	done   chan struct{}
}

// StartBridge starts the bridge. It returns at once; it connects and
// follows leadership in the background.
func StartBridge(ctx context.Context, cfg BridgeConfig) (*Bridge, error) {
	if err := ValidID(cfg.Region); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FeedBatch == 0 {
		cfg.FeedBatch = 500
	}
	if cfg.CatchupBudget == 0 {
		cfg.CatchupBudget = 5000
	}
	if cfg.HeadEvery == 0 {
		cfg.HeadEvery = time.Second
	}
	br := &Bridge{cfg: cfg, b: cfg.Backend, topics: Topics{Region: cfg.Region}, log: cfg.Logger.With("bridge", cfg.Backend.NodeID()),
		presence: map[string]Presence{}, workers: map[string]chan []byte{}, done: make(chan struct{})}
	mc := cfg.MQTT
	mc.ClientID = "hub-" + cfg.Region + "-" + cfg.Backend.NodeID()
	mc.Logger = br.log
	ctx, br.cancel = context.WithCancel(ctx)
	br.conn = Dial(ctx, mc)
	br.conn.Subscribe(br.topics.AllPresence(), br.onPresence)
	go br.followLeadership(ctx)
	return br, nil
}

// Close stops the bridge.
func (br *Bridge) Close() {
	br.cancel()
	<-br.done
	br.conn.Close()
}

// Conn is the bridge's MQTT connection.
func (br *Bridge) Conn() *Conn { return br.conn }

// Stats returns the bridge's counters.
func (br *Bridge) Stats() BridgeStats {
	return BridgeStats{Uploads: br.stats.uploads.Load(), Mutations: br.stats.muts.Load(), Gaps: br.stats.gaps.Load(),
		Published: br.stats.published.Load(), CatchupsServed: br.stats.catchups.Load(), Dropped: br.stats.dropped.Load(),
		ForeignMutations: br.stats.foreign.Load()}
}

// Stores lists the edges heard of, by id.
func (br *Bridge) Stores() []StoreStatus {
	head := br.b.HubSeq()
	br.mu.Lock()
	defer br.mu.Unlock()
	out := make([]StoreStatus, 0, len(br.presence))
	for _, p := range br.presence {
		s := StoreStatus{Edge: p.Edge, Online: p.Online, Pending: p.Pending, AppliedSeq: p.AppliedSeq, Attention: p.Attention, At: p.At}
		if head > p.AppliedSeq {
			s.Behind = head - p.AppliedSeq
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Edge < out[j].Edge })
	return out
}

func (br *Bridge) drop(topic string, n int, err error) {
	br.stats.dropped.Add(1)
	br.log.Warn("dropped a message", "topic", topic, "bytes", n, "err", err)
}

func (br *Bridge) onPresence(topic string, payload []byte) {
	edge, ok := br.topics.EdgeOf(topic)
	if !ok {
		br.drop(topic, len(payload), ErrWrongTopic)
		return
	}
	if len(payload) == 0 {
		return // a retained message cleared
	}
	m, err := Decode(br.cfg.Region, ClassPresence, payload)
	if err == nil && m.Presence.Edge != edge {
		err = fmt.Errorf("%w: presence of %q on %s's topic", ErrMalformed, m.Presence.Edge, edge)
	}
	if err != nil {
		br.drop(topic, len(payload), err)
		return
	}
	br.mu.Lock()
	prev := br.presence[edge]
	p := *m.Presence
	if !p.Online && p.At == 0 { // a last will carries no numbers: keep the last known
		p.Pending, p.AppliedSeq, p.Attention, p.At = prev.Pending, prev.AppliedSeq, prev.Attention, prev.At
	}
	br.presence[edge] = p
	br.mu.Unlock()
}

func (br *Bridge) followLeadership(ctx context.Context) {
	defer close(br.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var term uint64
	for {
		leader, tm := br.b.Leader()
		switch {
		case leader && (br.leading == nil || tm != term):
			br.stopLeading()
			term = tm
			lctx, cancel := context.WithCancel(ctx)
			br.leading = cancel
			go br.lead(lctx, fmt.Sprintf("%s/%d", br.b.NodeID(), tm))
		case !leader && br.leading != nil:
			br.stopLeading()
		}
		select {
		case <-ctx.Done():
			br.stopLeading()
			return
		case <-t.C:
		}
	}
}

func (br *Bridge) stopLeading() {
	if br.leading == nil {
		return
	}
	br.leading()
	br.leading = nil
	br.conn.Unsubscribe(br.topics.AllUp())
	br.log.Info("no longer leading: stopped the feed and uploads")
}

// lead runs the leader's side until lctx ends.
func (br *Bridge) lead(ctx context.Context, epoch string) {
	if err := br.b.Barrier(ctx); err != nil {
		br.log.Warn("barrier before leading the feed", "err", err)
		return
	}
	start := br.b.HubSeq()
	// Republish what online edges may have missed while the old leader
	// went away (bounded): duplicates are skipped at the edges.
	br.mu.Lock()
	for _, p := range br.presence {
		if p.Online && p.AppliedSeq < start && start-p.AppliedSeq <= 5000 {
			start = p.AppliedSeq
		}
	}
	br.workers = map[string]chan []byte{}
	br.mu.Unlock()
	br.log.Info("leading: publishing the feed and taking uploads", "epoch", epoch, "from", start+1)
	if err := br.conn.Subscribe(br.topics.AllUp(), func(topic string, p []byte) { br.onUp(ctx, epoch, topic, p) }); err != nil {
		br.log.Warn("subscribe to uploads", "err", err)
	}
	br.publishFeed(ctx, epoch, start)
}

// publishFeed publishes committed changes in sequence order, and the head
// every HeadEvery, until ctx ends.
func (br *Bridge) publishFeed(ctx context.Context, epoch string, from uint64) {
	heartbeat := time.NewTicker(br.cfg.HeadEvery)
	defer heartbeat.Stop()
	var pub atomic.Uint64 // the last sequence published
	pub.Store(from)
	wake := make(chan struct{}, 1)
	go func() {
		for ctx.Err() == nil {
			last := pub.Load()
			br.b.WaitSeq(ctx, last)
			select {
			case wake <- struct{}{}:
			case <-ctx.Done():
				return
			}
			// Wait for the publisher to move on (or fail and retry on
			// the next wake), rather than spin while the broker is down.
			for i := 0; i < 200 && pub.Load() == last && ctx.Err() == nil; i++ {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	published := from
	br.publishHead(ctx, br.topics.Feed(), epoch, published)
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			br.publishHead(ctx, br.topics.Feed(), epoch, published)
		case <-wake:
		}
		for published < br.b.HubSeq() && ctx.Err() == nil {
			entries, err := br.b.Changes(ctx, published+1, br.cfg.FeedBatch)
			var ce *CompactedError
			if errors.As(err, &ce) {
				published = ce.Oldest - 1 // edges that need older entries catch up or bootstrap
				continue
			}
			if err != nil || len(entries) == 0 {
				br.log.Warn("read the change log", "from", published+1, "err", err)
				break
			}
			if err := br.sendChanges(ctx, br.topics.Feed(), entries, false, false); err != nil {
				if !errors.Is(err, ErrOffline) {
					br.log.Warn("publish the feed", "err", err)
				}
				break // retried on the next wake or heartbeat
			}
			published = entries[len(entries)-1].Seq
			pub.Store(published)
			br.stats.published.Add(int64(len(entries)))
		}
	}
}

func (br *Bridge) publishHead(ctx context.Context, topic, epoch string, head uint64) {
	b, err := Encode(Message{Kind: KindHead, Region: br.cfg.Region, Head: head, Epoch: epoch})
	if err == nil {
		err = br.conn.Publish(ctx, topic, b, false)
	}
	if err != nil && !errors.Is(err, ErrOffline) && ctx.Err() == nil {
		br.log.Warn("publish head", "err", err)
	}
}

// sendChanges publishes entries in as many messages as MaxPayload needs.
// On the feed, Head is the last entry's sequence (what the feed has
// reached); in a catch-up answer it is the hub's latest, and final marks
// the answer's last message Last.
func (br *Bridge) sendChanges(ctx context.Context, topic string, entries []Change, catchup, final bool) error {
	for len(entries) > 0 {
		b, n, err := encodeChanges(br.cfg.Region, entries, func(n int) (head uint64, last bool) {
			head = entries[n-1].Seq
			if catchup {
				head = max(head, br.b.HubSeq())
				last = final && n == len(entries)
			}
			return head, last
		})
		if err != nil {
			return fmt.Errorf("entry %d: %w", entries[0].Seq, err)
		}
		if err := br.conn.Publish(ctx, topic, b, false); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

// onUp runs on paho's goroutine: it only routes the message to the
// edge's worker (which decodes it), so one slow edge never holds up
// another and paho's single delivery goroutine stays free.
func (br *Bridge) onUp(ctx context.Context, epoch, topic string, payload []byte) {
	edge, ok := br.topics.EdgeOf(topic)
	if !ok {
		br.drop(topic, len(payload), ErrWrongTopic)
		return
	}
	br.mu.Lock()
	q, ok := br.workers[edge]
	if !ok {
		q = make(chan []byte, 256)
		br.workers[edge] = q
		go br.edgeWorker(ctx, epoch, edge, topic, q)
	}
	br.mu.Unlock()
	select {
	case q <- payload:
	default:
		// The edge is sending faster than raft commits: drop; it resends
		// after its ack timeout.
		br.drop(topic, len(payload), errors.New("edge's upload queue is full"))
	}
}

// edgeWorker handles one edge's up messages in order. Uploads that
// queued while the last was being committed are merged and submitted
// together (up to mergeUploads mutations): an edge uploads each sale as
// it is written, and a raft round trip per upload message would make
// them wait in line behind each other.
func (br *Bridge) edgeWorker(ctx context.Context, epoch, edge, topic string, q chan []byte) {
	for {
		var first []byte
		select {
		case <-ctx.Done():
			return
		case first = <-q:
		}
		var up []json.RawMessage
		msgs := 0
		flush := func() {
			if len(up) == 0 {
				return
			}
			br.stats.uploads.Add(int64(msgs))
			err := br.handleUpload(ctx, edge, Message{Kind: KindUpload, Region: br.cfg.Region, Mutations: up})
			if err != nil && ctx.Err() == nil {
				br.log.Warn("edge request failed; the edge will retry", "edge", edge, "kind", KindUpload, "err", err)
			}
			up, msgs = nil, 0
		}
		for payload, more := first, true; more; {
			m, err := Decode(br.cfg.Region, ClassUp, payload)
			switch {
			case err != nil:
				br.drop(topic, len(payload), err)
			case m.Kind == KindUpload:
				up = append(up, m.Mutations...)
				msgs++
			case m.Kind == KindCatchup:
				flush()
				if err := br.handleCatchup(ctx, epoch, edge, m.From); err != nil && ctx.Err() == nil {
					br.log.Warn("edge request failed; the edge will retry", "edge", edge, "kind", m.Kind, "err", err)
				}
			}
			more = false
			if len(up) < mergeUploads {
				select {
				case payload = <-q:
					more = true
				default:
				}
			}
		}
		flush()
	}
}

// mergeUploads: the bridge merges queued uploads of an edge until it has
// this many mutations (an edge's largest upload). More would let an edge
// that is resending its backlog put bigger entries ahead of everyone's
// next sale in the raft log and the state machine, which apply in order.
const mergeUploads = 200

// handleUpload submits an edge's mutations in its outbox order. The hub
// applies an edge's mutations strictly in sequence: an upload that starts
// past the next expected sequence (an earlier one was lost) is answered
// with Expect, and the edge resends from there.
func (br *Bridge) handleUpload(ctx context.Context, edge string, m Message) error {
	type item struct {
		seq uint64
		id  string
		raw json.RawMessage
	}
	var items []item
	var foreign []AckResult
	for _, raw := range m.Mutations {
		var head struct {
			ID retail.MutationID `json:"id"`
		}
		if err := json.Unmarshal(raw, &head); err != nil || head.ID.Origin != edge {
			br.stats.foreign.Add(1)
			if err == nil {
				foreign = append(foreign, AckResult{ID: head.ID.String(), Err: fmt.Sprintf("origin %q is not the uploading edge %q", head.ID.Origin, edge)})
			}
			continue
		}
		items = append(items, item{head.ID.Seq, head.ID.String(), raw})
	}
	_ = foreign // never acked to the uploader: it did not write them
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.seq, b.seq) })
	// Merged uploads may carry a mutation twice (sent, then resent).
	items = slices.CompactFunc(items, func(a, b item) bool { return a.seq == b.seq })
	last, err := br.b.OriginSeq(ctx, edge)
	if err != nil {
		return err
	}
	var send []json.RawMessage
	var dups []item
	expect := uint64(0)
	next := last + 1
	for _, it := range items {
		switch {
		case it.seq <= last:
			dups = append(dups, it) // a duplicate: answered with its first result
		case it.seq == next:
			send = append(send, it.raw)
			next++
		case expect == 0:
			expect = next
		}
	}
	if expect != 0 {
		br.stats.gaps.Add(1)
	}
	var results []AckResult
	if len(dups) > 0 {
		// Answered from this node's state when it can (a resend after a
		// lost ack, or during overload: no raft round trip, no load on
		// the log); what it cannot find goes through raft, first, as
		// before.
		var found map[string]AckResult
		if rr, ok := br.b.(ResultReader); ok {
			ids := make([]string, len(dups))
			for i, d := range dups {
				ids[i] = d.id
			}
			if found, err = rr.PreviousResults(ctx, ids); err != nil {
				return err
			}
		}
		var again []json.RawMessage
		for _, d := range dups {
			if r, ok := found[d.id]; ok {
				results = append(results, r)
			} else {
				again = append(again, d.raw)
			}
		}
		send = append(again, send...)
	}
	if len(send) > 0 {
		submitted, err := br.b.Submit(ctx, send)
		if err != nil {
			return err
		}
		results = append(results, submitted...)
		br.stats.muts.Add(int64(len(send)))
	}
	return br.sendAcks(ctx, edge, results, expect)
}

func (br *Bridge) sendAcks(ctx context.Context, edge string, results []AckResult, expect uint64) error {
	for len(results) > 0 || expect != 0 {
		n := len(results)
		var b []byte
		for {
			var err error
			b, err = Encode(Message{Kind: KindAck, Region: br.cfg.Region, Results: results[:n], Expect: expect})
			if err == nil {
				break
			}
			if !errors.Is(err, ErrTooLarge) || n <= 1 {
				return err
			}
			n /= 2
		}
		if err := br.conn.Publish(ctx, br.topics.Down(edge), b, false); err != nil {
			return err
		}
		results, expect = results[n:], 0
	}
	return nil
}

// handleCatchup answers a catch-up request with up to CatchupBudget
// entries from from, the last message marked Last; with KindHead when
// there is nothing past from; with KindCompacted when from is gone.
func (br *Bridge) handleCatchup(ctx context.Context, epoch, edge string, from uint64) error {
	br.stats.catchups.Add(1)
	down := br.topics.Down(edge)
	left := br.cfg.CatchupBudget
	for left > 0 {
		entries, err := br.b.Changes(ctx, from, min(left, 1000))
		var ce *CompactedError
		if errors.As(err, &ce) {
			b, err := Encode(Message{Kind: KindCompacted, Region: br.cfg.Region, Oldest: ce.Oldest, Head: br.b.HubSeq()})
			if err != nil {
				return err
			}
			return br.conn.Publish(ctx, down, b, false)
		}
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			if left == br.cfg.CatchupBudget { // nothing at all past from
				br.publishHead(ctx, down, epoch, br.b.HubSeq())
			}
			return nil
		}
		left -= len(entries)
		last := left <= 0 || len(entries) < min(left+len(entries), 1000)
		if err := br.sendChanges(ctx, down, entries, true, last); err != nil {
			return err
		}
		from = entries[len(entries)-1].Seq + 1
		if last {
			return nil
		}
	}
	return nil
}
