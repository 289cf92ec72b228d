package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// EdgeConfig configures an edge's sync worker.
type EdgeConfig struct {
	Replica *Replica
	// MQTT: URL, TLS; the client id, user and will are set from the
	// replica's edge id. Password is the edge's broker password (also its
	// password for snapshot downloads).
	MQTT MQTTConfig
	// HubURLs are hub nodes' HTTP APIs, for bootstrap from a snapshot.
	HubURLs []string
	// AckTimeout: an upload not acknowledged in this time is sent again.
	// 0 means 5 s.
	AckTimeout time.Duration
	// UploadBatch bounds the mutations in one upload. 0 means 200.
	UploadBatch int
	// FeedChunk bounds the change-log entries applied in one transaction
	// (a local sale waits for the replica's writer while one is applied).
	// 0 means 250.
	FeedChunk int
	// PresenceEvery: how often the retained presence is refreshed. 0
	// means 5 s.
	PresenceEvery time.Duration
	// Progress receives bootstrap progress lines; nil: the logger only.
	Progress func(done, total int64)
	Logger   *slog.Logger
}

// EdgeStats are an edge worker's counters.
type EdgeStats struct {
	Uploaded        int64 `json:"uploaded"`         // mutations published (with resends)
	Resent          int64 `json:"resent"`           // of those, resends
	Acked           int64 `json:"acked"`            // results received
	FeedApplied     int64 `json:"feed_applied"`     // change-log entries applied
	CatchupRequests int64 `json:"catchup_requests"` // catch-up requests sent
	Bootstraps      int64 `json:"bootstraps"`       // snapshots installed
	Dropped         int64 `json:"dropped"`          // malformed, oversized or unknown messages dropped
}

// Edge is an edge's sync worker: it uploads the outbox, follows the
// change feed (rebasing the pending mutations on it), catches up after
// gaps and time offline, bootstraps from a snapshot when too far behind,
// and keeps the edge's presence. One goroutine owns the protocol state;
// MQTT handlers only decode messages and queue them for it.
type Edge struct {
	cfg    EdgeConfig
	r      *Replica
	topics Topics
	log    *slog.Logger
	conn   *Conn

	inbox   inbox
	stats   struct{ uploaded, resent, acked, feed, catchups, boots, dropped atomic.Int64 }
	lastErr atomic.Value // string

	cancel context.CancelFunc
	done   chan struct{}

	// sent: outbox seq → when last published; the uploader goroutine and
	// run (acks, reconnects, new epochs) share it under sentMu.
	sentMu sync.Mutex
	sent   map[uint64]time.Time
	kick   chan struct{} // wakes the uploader

	// owned by run
	epoch       string
	head        uint64 // latest hub sequence heard of
	prevHead    uint64 // head heard at the heartbeat before
	catchupAt   time.Time
	catchupFrom uint64
	presenceAt  time.Time
	lastPres    Presence
}

type inbound struct {
	class     TopicClass
	topic     string
	size      int     // bytes of the payload
	msg       Message // the payload decoded (Decode), unless err
	err       error
	connected bool // a (re)connect happened
}

// decoded is the inbound message for payload received on topic. The MQTT
// handlers decode (Decode is stateless), so a feed message is decoded
// while the worker applies the one before it.
func (e *Edge) decoded(class TopicClass, topic string, payload []byte) inbound {
	m, err := Decode(e.r.Region(), class, payload)
	return inbound{class: class, topic: topic, size: len(payload), msg: m, err: err}
}

// inbox is an unbounded queue: MQTT handlers must never block.
type inbox struct {
	mu     sync.Mutex
	items  []inbound
	signal chan struct{}
}

func (q *inbox) push(m inbound) {
	q.mu.Lock()
	q.items = append(q.items, m)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *inbox) take() []inbound {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

// StartEdge starts the sync worker. It returns at once; the broker may be
// down (the edge works offline).
func StartEdge(ctx context.Context, cfg EdgeConfig) (*Edge, error) {
	if cfg.Replica == nil {
		return nil, errors.New("edge: no replica")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = 5 * time.Second
	}
	if cfg.UploadBatch == 0 {
		cfg.UploadBatch = 200
	}
	if cfg.FeedChunk <= 0 {
		cfg.FeedChunk = 250
	}
	if cfg.PresenceEvery == 0 {
		cfg.PresenceEvery = 5 * time.Second
	}
	r := cfg.Replica
	e := &Edge{cfg: cfg, r: r, topics: Topics{Region: r.Region()}, log: cfg.Logger.With("edge", r.Edge()),
		inbox: inbox{signal: make(chan struct{}, 1)}, done: make(chan struct{}), sent: map[uint64]time.Time{}, kick: make(chan struct{}, 1)}
	will, err := Encode(Message{Kind: KindPresence, Region: r.Region(), Presence: &Presence{Edge: r.Edge(), Online: false}})
	if err != nil {
		return nil, err
	}
	mc := cfg.MQTT
	mc.ClientID = "edge-" + r.Region() + "-" + r.Edge()
	mc.Username = r.Edge()
	mc.WillTopic = e.topics.Presence(r.Edge())
	mc.WillPayload = will
	mc.Logger = e.log
	mc.OnConnect = func() { e.inbox.push(inbound{connected: true}) }
	ctx, e.cancel = context.WithCancel(ctx)
	e.conn = Dial(ctx, mc)
	e.conn.Subscribe(e.topics.Feed(), func(topic string, p []byte) {
		e.inbox.push(e.decoded(ClassFeed, topic, p))
	})
	e.conn.Subscribe(e.topics.Down(r.Edge()), func(topic string, p []byte) {
		e.inbox.push(e.decoded(ClassDown, topic, p))
	})
	go e.run(ctx)
	return e, nil
}

// Close stops the worker and disconnects. The broker publishes no will
// on a clean disconnect, so the worker marks itself offline first.
func (e *Edge) Close() {
	e.cancel()
	<-e.done
	if e.conn.Connected() {
		e.publishPresence(context.Background(), false)
	}
	e.conn.Close()
}

// Conn is the worker's MQTT connection (for status and for publishing to
// wallet topics).
func (e *Edge) Conn() *Conn { return e.conn }

// Stats returns the worker's counters.
func (e *Edge) Stats() EdgeStats {
	return EdgeStats{Uploaded: e.stats.uploaded.Load(), Resent: e.stats.resent.Load(), Acked: e.stats.acked.Load(),
		FeedApplied: e.stats.feed.Load(), CatchupRequests: e.stats.catchups.Load(), Bootstraps: e.stats.boots.Load(),
		Dropped: e.stats.dropped.Load()}
}

// LastError is the last sync problem (empty when none since start).
func (e *Edge) LastError() string {
	s, _ := e.lastErr.Load().(string)
	return s
}

func (e *Edge) fail(what string, err error) {
	e.lastErr.Store(what + ": " + err.Error())
	e.log.Warn(what, "err", err)
}

// resendAll forgets what was sent, so the uploader sends everything
// unacknowledged again now.
func (e *Edge) resendAll() {
	e.sentMu.Lock()
	clear(e.sent)
	e.sentMu.Unlock()
	e.wakeUploader()
}

func (e *Edge) wakeUploader() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// uploadLoop publishes the outbox: at once when a mutation is written,
// and what is overdue every 250 ms. It runs apart from run, so a sale's
// upload never waits while the replica applies the feed.
func (e *Edge) uploadLoop(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.r.Changed():
		case <-e.kick:
		case <-tick.C:
		}
		e.upload(ctx)
	}
}

func (e *Edge) run(ctx context.Context) {
	defer close(e.done)
	up := make(chan struct{})
	go func() { defer close(up); e.uploadLoop(ctx) }()
	defer func() { <-up }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.inbox.signal:
			e.handleAll(ctx, e.inbox.take())
		case <-tick.C:
		}
		e.housekeeping(ctx)
	}
}

// handleAll handles queued messages in order, applying runs of change
// messages together: one transaction and one rebase for all of them,
// however many arrived while the last was applied.
func (e *Edge) handleAll(ctx context.Context, ins []inbound) {
	var run []Message
	flush := func() {
		if len(run) > 0 {
			e.onChangesRun(ctx, run)
			run = nil
		}
	}
	for _, in := range ins {
		if in.connected {
			flush()
			e.handle(ctx, in)
			continue
		}
		if in.err != nil {
			e.stats.dropped.Add(1)
			e.log.Warn("dropped a message", "topic", in.topic, "bytes", in.size, "err", in.err)
			continue
		}
		if in.msg.Kind == KindChanges {
			run = append(run, in.msg)
			continue
		}
		flush()
		e.handleMessage(ctx, in.class, in.msg)
	}
	flush()
}

// onChangesRun merges change messages (feed and catch-up answers, which
// may overlap) into one run of consecutive entries and applies it.
func (e *Edge) onChangesRun(ctx context.Context, ms []Message) {
	if len(ms) == 1 {
		e.onChanges(ctx, ms[0])
		return
	}
	merged := Message{Kind: KindChanges}
	bySeq := map[uint64]Change{}
	for _, m := range ms {
		merged.Head = max(merged.Head, m.Head)
		merged.Last = merged.Last || m.Last
		for _, c := range m.Entries {
			bySeq[c.Seq] = c
		}
	}
	seqs := make([]uint64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if i > 0 && s != seqs[i-1]+1 {
			break // past a gap: asked for again by catch-up
		}
		merged.Entries = append(merged.Entries, bySeq[s])
	}
	e.onChanges(ctx, merged)
}

func (e *Edge) handle(ctx context.Context, in inbound) {
	if in.connected {
		e.resendAll() // resend everything unacknowledged
		e.catchupAt = time.Time{}
		e.publishPresence(ctx, true)
		e.requestCatchup(ctx, true)
		return
	}
	if in.err != nil {
		e.stats.dropped.Add(1)
		e.log.Warn("dropped a message", "topic", in.topic, "bytes", in.size, "err", in.err)
		return
	}
	e.handleMessage(ctx, in.class, in.msg)
}

func (e *Edge) handleMessage(ctx context.Context, class TopicClass, m Message) {
	switch m.Kind {
	case KindChanges:
		e.onChanges(ctx, m)
	case KindHead:
		if class == ClassDown { // a catch-up answer: nothing past From
			e.catchupAt, e.catchupFrom = time.Time{}, 0
		}
		e.onHead(ctx, m)
	case KindAck:
		e.onAck(ctx, m)
	case KindCompacted:
		e.onCompacted(ctx, m)
	}
}

func (e *Edge) onChanges(ctx context.Context, m Message) {
	e.head = max(e.head, m.Head)
	last := m.Entries[len(m.Entries)-1].Seq
	applied, err := e.r.AppliedSeq(ctx)
	if err != nil {
		e.fail("read applied sequence", err)
		return
	}
	if last <= applied {
		return
	}
	if m.Entries[0].Seq > applied+1 {
		e.log.Info("gap in the change feed", "applied", applied, "got", m.Entries[0].Seq)
		e.requestCatchup(ctx, false)
		return
	}
	if m.Last || (e.catchupFrom != 0 && last >= e.head) {
		e.catchupAt, e.catchupFrom = time.Time{}, 0
	}
	if m.Last && e.head-last > catchupMore {
		// A catch-up answer, and far behind still: ask for the next range
		// now, so the hub reads and sends it while these entries are
		// applied. A little behind is the feed racing the answer (its
		// head is the hub's latest, acks raise it too): the feed brings
		// the rest, and a gap in it or a heartbeat still ahead asks for
		// what it does not.
		e.requestCatchupFrom(ctx, last+1)
	}
	// Re-apply the pending mutations only when this brings the replica to
	// the head: during a long catch-up they stay off until the end. The
	// entries go in transactions of at most FeedChunk, so a local sale
	// waits for the replica's writer one chunk at most.
	reapply := last >= e.head
	for entries := m.Entries; len(entries) > 0; {
		chunk := entries[:min(len(entries), e.cfg.FeedChunk)]
		entries = entries[len(chunk):]
		n, err := e.r.ApplyFeed(ctx, chunk, reapply)
		e.stats.feed.Add(int64(n))
		if err != nil {
			e.fail("apply the change feed", err)
			return
		}
	}
}

// catchupMore: after a catch-up answer, the edge asks for more at once
// only when it is more entries than this behind the head it knows.
const catchupMore = 1000

func (e *Edge) onHead(ctx context.Context, m Message) {
	if m.Epoch != e.epoch {
		if e.epoch != "" {
			e.log.Info("the feed has a new publisher; resending what is unacknowledged", "epoch", m.Epoch)
		}
		e.epoch = m.Epoch
		e.resendAll()
	}
	e.head = max(e.head, m.Head)
	applied, err := e.r.AppliedSeq(ctx)
	if err != nil {
		return
	}
	// Behind for a whole heartbeat (not just racing the feed): catch up.
	if e.prevHead > applied {
		e.requestCatchup(ctx, false)
	}
	e.prevHead = m.Head
	if m.Head <= applied {
		e.prevHead = 0
	}
}

func (e *Edge) onAck(ctx context.Context, m Message) {
	if len(m.Results) > 0 {
		if err := e.r.MarkAcked(ctx, m.Results); err != nil {
			e.fail("record acks", err)
			return
		}
		e.stats.acked.Add(int64(len(m.Results)))
		for _, res := range m.Results {
			if res.Seq > e.head {
				e.head = res.Seq
			}
		}
	}
	if m.Expect > 0 {
		// An earlier upload was lost: send again from what the hub expects.
		e.sentMu.Lock()
		for seq := range e.sent {
			if seq >= m.Expect {
				delete(e.sent, seq)
			}
		}
		e.sentMu.Unlock()
		e.wakeUploader()
	}
}

func (e *Edge) onCompacted(ctx context.Context, m Message) {
	e.log.Warn("the hub no longer holds the changes this replica needs; bootstrapping from a snapshot", "oldest", m.Oldest, "head", m.Head)
	if err := e.bootstrap(ctx); err != nil {
		e.fail("bootstrap", err)
		return
	}
	e.catchupAt, e.catchupFrom = time.Time{}, 0
	e.requestCatchup(ctx, true)
}

// Bootstrap downloads a snapshot from the first hub node that answers
// and installs it, keeping the outbox.
func (e *Edge) bootstrap(ctx context.Context) error {
	if len(e.cfg.HubURLs) == 0 {
		return errors.New("no hub URL configured to download a snapshot from")
	}
	tmp := e.r.cfg.Path + ".snapshot"
	var errs []error
	for _, u := range e.cfg.HubURLs {
		start := time.Now()
		meta, err := DownloadSnapshot(ctx, u, e.r.Edge(), e.cfg.MQTT.Password, tmp, func(done, total int64) {
			e.log.Info("downloading snapshot", "hub", u, "bytes", done, "of", total)
			if e.cfg.Progress != nil {
				e.cfg.Progress(done, total)
			}
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.log.Info("snapshot downloaded", "hub", u, "hub_seq", meta.HubSeq, "bytes", meta.Size, "took", time.Since(start).Round(time.Millisecond))
		if err := e.r.Bootstrap(ctx, tmp, meta); err != nil {
			os.Remove(tmp)
			return err
		}
		e.stats.boots.Add(1)
		return nil
	}
	return errors.Join(errs...)
}

// Bootstrap installs a snapshot now (for a new edge, before it starts
// following the feed).
func (e *Edge) Bootstrap(ctx context.Context) error { return e.bootstrap(ctx) }

func (e *Edge) requestCatchup(ctx context.Context, force bool) {
	if !force && e.catchupFrom != 0 && time.Since(e.catchupAt) < 3*time.Second {
		return // one is under way
	}
	applied, err := e.r.AppliedSeq(ctx)
	if err != nil {
		return
	}
	e.requestCatchupFrom(ctx, applied+1)
}

// requestCatchupFrom asks the hub for the feed from sequence from on.
func (e *Edge) requestCatchupFrom(ctx context.Context, from uint64) {
	b, err := Encode(Message{Kind: KindCatchup, Region: e.r.Region(), From: from})
	if err != nil {
		return
	}
	if err := e.conn.Publish(ctx, e.topics.Up(e.r.Edge()), b, false); err != nil {
		return
	}
	e.stats.catchups.Add(1)
	e.catchupAt, e.catchupFrom = time.Now(), from
}

// upload publishes outbox entries that were never sent or whose ack is
// overdue, oldest first, in batches that fit a message.
func (e *Edge) upload(ctx context.Context) {
	if !e.conn.Connected() {
		return
	}
	ps, err := e.r.Pending(ctx, 0, 4*e.cfg.UploadBatch, true)
	if err != nil {
		e.fail("read the outbox", err)
		return
	}
	now := time.Now()
	var batch []json.RawMessage
	var seqs []uint64
	size := 0
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		b, err := Encode(Message{Kind: KindUpload, Region: e.r.Region(), Mutations: batch})
		if err == nil {
			err = e.conn.Publish(ctx, e.topics.Up(e.r.Edge()), b, false)
		}
		if err != nil {
			if !errors.Is(err, ErrOffline) {
				e.fail("upload", err)
			}
			return false
		}
		e.sentMu.Lock()
		for _, s := range seqs {
			if _, again := e.sent[s]; again {
				e.stats.resent.Add(1)
			}
			e.sent[s] = now
		}
		e.sentMu.Unlock()
		e.stats.uploaded.Add(int64(len(batch)))
		batch, seqs, size = nil, nil, 0
		return true
	}
	for _, p := range ps {
		e.sentMu.Lock()
		at, ok := e.sent[p.Seq]
		e.sentMu.Unlock()
		if ok && now.Sub(at) < e.cfg.AckTimeout {
			continue
		}
		if len(batch) == e.cfg.UploadBatch || size+len(p.Raw) > MaxPayload-4096 {
			if !flush() {
				return
			}
		}
		batch = append(batch, p.Raw)
		seqs = append(seqs, p.Seq)
		size += len(p.Raw) + 1
	}
	flush()
	// forget acknowledged entries
	e.sentMu.Lock()
	defer e.sentMu.Unlock()
	if len(e.sent) > 4*e.cfg.UploadBatch {
		keep := map[uint64]bool{}
		for _, p := range ps {
			keep[p.Seq] = true
		}
		for s := range e.sent {
			if !keep[s] {
				delete(e.sent, s)
			}
		}
	}
}

func (e *Edge) housekeeping(ctx context.Context) {
	if !e.conn.Connected() {
		return
	}
	if time.Since(e.presenceAt) >= e.cfg.PresenceEvery {
		e.publishPresence(ctx, true)
		return
	}
	st, err := e.r.Status(ctx)
	if err == nil && (st.Pending != e.lastPres.Pending || st.AppliedSeq != e.lastPres.AppliedSeq) && time.Since(e.presenceAt) >= time.Second {
		e.publishPresence(ctx, true)
	}
	if e.catchupFrom != 0 && time.Since(e.catchupAt) > 5*time.Second {
		e.requestCatchup(ctx, true) // the answer was lost
	}
}

func (e *Edge) publishPresence(ctx context.Context, online bool) {
	st, err := e.r.Status(ctx)
	if err != nil {
		return
	}
	p := Presence{Edge: e.r.Edge(), Online: online, Pending: st.Pending, AppliedSeq: st.AppliedSeq, Attention: st.Attention, At: time.Now().UnixMilli()}
	b, err := Encode(Message{Kind: KindPresence, Region: e.r.Region(), Presence: &p})
	if err != nil {
		return
	}
	if err := e.conn.Publish(ctx, e.topics.Presence(e.r.Edge()), b, true); err == nil {
		e.presenceAt, e.lastPres = time.Now(), p
	}
}

// PublishWallet publishes payload, retained, to a shopper's wallet topic
// (her phone's wallet page subscribes over WebSocket). ErrOffline when
// the broker is not reachable: the coupons are still valid and in the
// outbox; the phone gets them on her next sign-in online.
func (e *Edge) PublishWallet(ctx context.Context, customerID string, payload []byte) error {
	if err := ValidID(customerID); err != nil {
		return fmt.Errorf("wallet topic: %w", err)
	}
	return e.conn.Publish(ctx, e.topics.Wallet(customerID), payload, true)
}

// String describes the worker's state in one line.
func (e *Edge) String() string {
	state := "offline"
	if e.conn.Connected() {
		state = "online"
	}
	return fmt.Sprintf("edge %s/%s %s", e.r.Region(), e.r.Edge(), state)
}
