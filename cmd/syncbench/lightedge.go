package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

// lightEdge stands in for an edge on a machine of its own: it keeps an
// outbox in memory and uploads it as replication.Edge does (see its
// upload and onAck: on every write, ack or 250 ms tick, everything
// unacknowledged that was not sent in the last 5 s, 200 an upload; an
// ack that says where the hub expects the edge to resume makes what
// follows due again), but it keeps no replica and ignores the feed, so it
// costs this machine next to nothing.
type lightEdge struct {
	id     string
	conn   *replication.Conn
	topics replication.Topics

	mu     sync.Mutex // guards seq and outbox
	seq    uint64
	outbox map[uint64]*lightEntry

	resent, rejected atomic.Int64
	wake             chan struct{}
	acks             chan replication.Message // from onDown to the worker
	stop             chan struct{}
	done             chan struct{}
}

type lightEntry struct {
	raw  json.RawMessage
	sent time.Time // zero: due
	n    int       // times sent
}

const (
	lightAckTimeout  = 5 * time.Second // replication.EdgeConfig's default
	lightUploadBatch = 200             // likewise
)

func (e *env) startLightEdge(ctx context.Context, id string) (*lightEdge, error) {
	l := &lightEdge{id: id, topics: replication.Topics{Region: region}, outbox: map[uint64]*lightEntry{},
		wake: make(chan struct{}, 1), acks: make(chan replication.Message, 1024), stop: make(chan struct{}), done: make(chan struct{})}
	l.conn = replication.Dial(context.WithoutCancel(ctx), replication.MQTTConfig{URL: e.broker.URL(), ClientID: "edge-" + region + "-" + id,
		Username: id, Password: password(id), Logger: e.b.logger("light-" + id)})
	l.conn.Subscribe(l.topics.Down(id), l.onDown)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.conn.WaitConnected(wctx); err != nil {
		l.conn.Close()
		return nil, fmt.Errorf("light edge %s: %w", id, err)
	}
	go l.worker()
	return l, nil
}

// write puts a new mutation in the outbox (its "commit") and returns its
// id; the worker uploads it.
func (l *lightEdge) write(actor retail.Actor, body retail.Body) (string, error) {
	l.mu.Lock()
	l.seq++
	m := retail.Mutation{ID: retail.MutationID{Origin: l.id, Seq: l.seq}, HLC: retail.HLC{Wall: time.Now().UnixMilli()}, Actor: actor, Body: body}
	raw, err := retail.Encode(m)
	if err == nil {
		l.outbox[l.seq] = &lightEntry{raw: raw}
	}
	l.mu.Unlock()
	if err != nil {
		return "", err
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return m.ID.String(), nil
}

// onDown runs on the MQTT delivery goroutine: it must not block. An ack
// lost here is made good by a resend.
func (l *lightEdge) onDown(_ string, p []byte) {
	m, err := replication.Decode(region, replication.ClassDown, p)
	if err != nil || m.Kind != replication.KindAck {
		return
	}
	select {
	case l.acks <- m:
	default:
	}
}

func (l *lightEdge) worker() {
	defer close(l.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		case <-l.wake:
		case m := <-l.acks:
			l.ack(m)
			for more := true; more; { // take every ack queued, as the edge takes its inbox
				select {
				case m := <-l.acks:
					l.ack(m)
				default:
					more = false
				}
			}
		}
		l.upload()
	}
}

func (l *lightEdge) ack(m replication.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range m.Results {
		id, err := retail.ParseMutationID(r.ID)
		if err != nil {
			continue
		}
		if _, ok := l.outbox[id.Seq]; ok {
			delete(l.outbox, id.Seq)
			if r.Status == retail.StatusRejected || r.Err != "" {
				l.rejected.Add(1)
			}
		}
	}
	if m.Expect > 0 { // an upload was lost: send again from Expect
		for seq, e := range l.outbox {
			if seq >= m.Expect {
				e.sent = time.Time{}
			}
		}
	}
}

// upload publishes, oldest first, the entries never sent or not
// acknowledged within lightAckTimeout, of the oldest 4 × 200 (as the edge
// reads its outbox).
func (l *lightEdge) upload() {
	l.mu.Lock()
	seqs := make([]uint64, 0, len(l.outbox))
	for seq := range l.outbox {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	seqs = seqs[:min(len(seqs), 4*lightUploadBatch)]
	now := time.Now()
	var due []*lightEntry
	for _, seq := range seqs {
		if e := l.outbox[seq]; e.sent.IsZero() || now.Sub(e.sent) >= lightAckTimeout {
			due = append(due, e)
		}
	}
	l.mu.Unlock()
	for len(due) > 0 {
		n := min(len(due), lightUploadBatch)
		raws := make([]json.RawMessage, n)
		for i, e := range due[:n] {
			raws[i] = e.raw
		}
		b, err := replication.Encode(replication.Message{Kind: replication.KindUpload, Region: region, Mutations: raws})
		if err != nil || l.conn.Publish(context.Background(), l.topics.Up(l.id), b, false) != nil {
			return
		}
		l.mu.Lock()
		for _, e := range due[:n] {
			if e.n > 0 {
				l.resent.Add(1)
			}
			e.sent, e.n = now, e.n+1
		}
		l.mu.Unlock()
		due = due[n:]
	}
}

// pending is how many mutations the hub has not acknowledged.
func (l *lightEdge) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.outbox)
}

func (l *lightEdge) close() {
	close(l.stop)
	<-l.done
	l.conn.Close()
}
