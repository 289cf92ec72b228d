package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/endcap/endcap/edge"
	"github.com/endcap/endcap/internal/procrun"
	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

const (
	observerID  = "OBS" // the edge whose replica is watched for arrivals; writes nothing
	returningID = "RET" // the edge of the catch-up scenario
)

func edgeID(i int) string { return fmt.Sprintf("E%02d", i+1) }

// arrivals records when mutation ids were first seen somewhere. Safe for
// concurrent use.
type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time
}

func newArrivals() *arrivals { return &arrivals{at: map[string]time.Time{}} }

func (a *arrivals) add(id string, t time.Time) {
	a.mu.Lock()
	if _, ok := a.at[id]; !ok {
		a.at[id] = t
	}
	a.mu.Unlock()
}

func (a *arrivals) get(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[id]
	return t, ok
}

// producer is one writing edge: a full in-process edge (replica, sync
// worker) or a light one (uploads only; see lightEdge).
type producer struct {
	id    string
	store string
	full  *edge.Node
	light *lightEdge
}

// write writes one sale and returns its mutation id once committed: in
// the replica for a full edge, in the in-memory outbox for a light one.
func (p *producer) write(ctx context.Context, order string) (id string, res retail.Result, err error) {
	sale := scenario.Sale(order, p.store, "", 1, "")
	if p.light != nil {
		id, err = p.light.write(scenario.Clerk(p.store), sale)
		return id, retail.Result{Status: retail.StatusAccepted}, err
	}
	res, err = p.full.Replica().Write(ctx, scenario.Clerk(p.store), sale)
	return res.ID.String(), res, err
}

// write is one sale written at an edge.
type write struct {
	commit time.Time // committed at the edge
	full   bool      // written at a full edge
}

// latency runs the end-to-end latency scenario on e's cluster.
func (b *bench) latency(ctx context.Context, e *env) error {
	cfg := b.cfg
	perEdge := cfg.rate / float64(cfg.edges)
	full := cfg.replicaEdges
	b.printf("")
	b.printf("## latency: %d edges writing %.0f sales/s in total (%.1f/s each), durability %s; warm-up %s, measured %s",
		cfg.edges, cfg.rate, perEdge, durabilityName(cfg.durability), cfg.warmup, cfg.duration)
	if full < cfg.edges {
		b.printf("%d of them full edges in this process (replica, sync worker); the other %d light: they upload as an edge does",
			full, cfg.edges-full)
		b.printf("but keep no replica (edges on machines of their own); latency figures are of the full edges' sales")
	} else {
		b.printf("all of them full edges in this process (replica, sync worker: each applies the whole feed)")
	}
	leader, err := e.leader(ctx, 30*time.Second)
	if err != nil {
		return err
	}
	st, err := leader.status(ctx)
	if err != nil {
		return err
	}

	// The edges: an observer that writes nothing, and the producers.
	dir := filepath.Join(e.dir, "edges")
	var nodes []*edge.Node
	var lights []*lightEdge
	defer func() {
		for _, l := range lights {
			l.close()
		}
		b.closeEdges(nodes)
	}()
	obs, err := e.startEdge(ctx, observerID, filepath.Join(dir, observerID))
	if err != nil {
		return err
	}
	nodes = append(nodes, obs)
	producers := make([]*producer, cfg.edges)
	for i := range producers {
		p := &producer{id: edgeID(i), store: scenario.Stores[i%len(scenario.Stores)]}
		if i < full {
			if p.full, err = e.startEdge(ctx, p.id, filepath.Join(dir, p.id)); err != nil {
				return err
			}
			nodes = append(nodes, p.full)
		} else {
			if p.light, err = e.startLightEdge(ctx, p.id); err != nil {
				return err
			}
			lights = append(lights, p.light)
		}
		producers[i] = p
	}
	b.logf("latency: %d edges and the observer started; waiting for the full ones to apply the seed (hub sequence %d)", cfg.edges, st.HubSeq)
	for _, n := range nodes {
		if err := waitApplied(ctx, n, st.HubSeq, time.Minute, 20*time.Millisecond); err != nil {
			return err
		}
	}

	// A tap on the broker, subscribed with the hub's rights to every
	// edge's uploads and acks and to the feed: when each sale reached the
	// broker on its way to the hub, when the hub's ack did (committed
	// through raft), and when its change-log entry did.
	tap := newTap()
	probe := replication.Dial(context.WithoutCancel(ctx), replication.MQTTConfig{URL: e.broker.URL(), ClientID: "syncbench-tap",
		Username: replication.DefaultHubUser, Password: password(replication.DefaultHubUser), Logger: b.logger("tap")})
	defer probe.Close()
	topics := replication.Topics{Region: region}
	for _, f := range []string{topics.Feed(), topics.AllUp(), topics.Root() + "/edge/+/down"} {
		probe.Subscribe(f, tap.handle)
	}
	go tap.decode()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	err = probe.WaitConnected(wctx)
	wcancel()
	if err != nil {
		return fmt.Errorf("broker tap: %w", err)
	}

	// The observer's replica, polled for new applied_mutations rows.
	seen := newArrivals()
	pollStop := make(chan struct{})
	pollDone := make(chan pollStats, 1)
	go func() { pollDone <- watch(ctx, obs.Replica(), cfg.pollEvery, seen, pollStop) }()

	// The load: each producer on a fixed schedule (open loop), spread
	// evenly; a sale counts as measured when it commits in the window.
	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffff)
	interval := time.Duration(float64(time.Second) / perEdge)
	start := time.Now().Add(200 * time.Millisecond)
	warmEnd := start.Add(cfg.warmup)
	end := warmEnd.Add(cfg.duration)
	var (
		mu         sync.Mutex
		writes     = map[string]write{}
		writeLat   []time.Duration
		maxLag     time.Duration
		writeErrs  int
		firstErr   error
		rejected   int
		firstRejct string
	)
	var wg sync.WaitGroup
	for i, p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offset := interval * time.Duration(i) / time.Duration(cfg.edges)
			for k := 0; ; k++ {
				at := start.Add(offset + time.Duration(k)*interval)
				// Stop at the end of the window even when behind
				// schedule: the shortfall shows in the achieved rate.
				if !at.Before(end) || !time.Now().Before(end) || ctx.Err() != nil {
					return
				}
				if d := time.Until(at); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
				t0 := time.Now()
				id, res, err := p.write(ctx, fmt.Sprintf("%s-%s-%d", run, p.id, k))
				t1 := time.Now()
				mu.Lock()
				maxLag = max(maxLag, t0.Sub(at))
				switch {
				case err != nil:
					writeErrs++
					if firstErr == nil {
						firstErr = err
					}
				case res.Status != retail.StatusAccepted:
					rejected++
					if firstRejct == "" {
						firstRejct = fmt.Sprintf("%s %s %s", res.Status, res.Code, res.Reason)
					}
				default:
					writes[id] = write{commit: t1, full: p.full != nil}
					if p.full != nil && !t1.Before(warmEnd) && t1.Before(end) {
						writeLat = append(writeLat, t1.Sub(t0))
					}
				}
				mu.Unlock()
			}
		}()
	}
	b.logf("latency: load started: warm-up %s, then %s measured", cfg.warmup, cfg.duration)

	// Profiles and CPU over the measured window.
	var meter *cpuMeter
	var hubProf chan error
	windowDone := make(chan struct{})
	go func() {
		defer close(windowDone)
		select {
		case <-time.After(time.Until(warmEnd)):
		case <-ctx.Done():
			return
		}
		pids := map[string]int{"syncbench (edges, broker)": 0}
		for _, h := range e.hubs {
			role := "follower"
			if h == leader {
				role = "leader"
			}
			pids["hub "+h.id+" ("+role+")"] = h.Pid()
		}
		meter = startCPU(pids)
		if cfg.pprofDir != "" {
			stop := b.profileSelf(filepath.Join(cfg.pprofDir, "latency-syncbench.pprof"))
			hubProf = make(chan error, 1)
			go func() {
				hubProf <- b.profileHub(ctx, leader, cfg.duration, filepath.Join(cfg.pprofDir, "latency-hub-leader.pprof"))
			}()
			defer stop()
		}
		select {
		case <-time.After(time.Until(end)):
		case <-ctx.Done():
		}
	}()
	wg.Wait()
	<-windowDone
	cpuLine := "CPU: not measured"
	if meter != nil {
		cpuLine = meter.stop()
	}
	if hubProf != nil {
		if err := <-hubProf; err != nil {
			b.logf("latency: hub profile: %v", err)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// Drain: wait for the measured sales to reach the observer.
	var measured []string
	committed, committedFull := 0, 0
	for id, w := range writes {
		if w.commit.Before(warmEnd) || !w.commit.Before(end) {
			continue
		}
		committed++
		if w.full {
			committedFull++
			measured = append(measured, id)
		}
	}
	b.logf("latency: load done; waiting up to %s for %d measured sales to reach the observer", cfg.drain, len(measured))
	drainStart := time.Now()
	procrun.Poll(ctx, "drain", cfg.drain, 50*time.Millisecond, func() error {
		for _, id := range measured {
			if _, ok := seen.get(id); !ok {
				return errNotYet
			}
		}
		return nil
	})
	drained := time.Since(drainStart)
	close(pollStop)
	ps := <-pollDone
	probe.Close()
	tap.close()

	var e2e, toUp, toAck, toFeed []time.Duration
	missing := 0
	for _, id := range measured {
		w := writes[id]
		if t, ok := seen.get(id); ok {
			e2e = append(e2e, t.Sub(w.commit))
		} else {
			missing++
		}
		for _, m := range []struct {
			a *arrivals
			d *[]time.Duration
		}{{tap.up, &toUp}, {tap.ack, &toAck}, {tap.feed, &toFeed}} {
			if t, ok := m.a.get(id); ok {
				*m.d = append(*m.d, t.Sub(w.commit))
			}
		}
	}
	var syncErrs []string
	var resent, dropped, catchups int64
	for _, n := range nodes {
		s := n.Sync().Stats()
		resent += s.Resent
		dropped += s.Dropped
		catchups += s.CatchupRequests
		if le := n.Sync().LastError(); le != "" {
			syncErrs = append(syncErrs, n.Replica().Edge()+": "+le)
		}
	}
	lightRejected, lightUnacked := int64(0), 0
	for _, l := range lights {
		resent += l.resent.Load()
		lightRejected += l.rejected.Load()
		lightUnacked += l.pending()
	}

	d, up, ack, f, wl := newDist(e2e), newDist(toUp), newDist(toAck), newDist(toFeed), newDist(writeLat)
	achieved := float64(committed) / cfg.duration.Seconds()
	scheduled := int(cfg.rate * cfg.duration.Seconds())
	b.printf("commit at an edge → applied at the observer edge: %s", d.summary())
	b.printf("  (the observer's replica is polled every %s for new applied_mutations rows, %s per poll at most; an arrival is",
		cfg.pollEvery, ms(ps.maxQuery))
	b.printf("  timed at the start of the poll that saw it, so each figure is late by up to one polling interval)")
	b.printf("on the way, as a subscriber on the broker saw it (from the commit at the edge):")
	b.printf("  upload reaches the broker:             %s", up.summary())
	b.printf("  the hub's ack reaches the broker:      %s", ack.summary())
	b.printf("  the change-log entry reaches the feed: %s", f.summary())
	b.printf("Replica.Write (commit at the edge, durability %s): %s", durabilityName(cfg.durability), wl.summary())
	b.printf("achieved: %.0f sales/s committed at the edges in the measured window (%d of %d scheduled; %d at full edges);",
		achieved, committed, scheduled, committedFull)
	b.printf("  largest schedule lag %s (a write starting late: the edge's replica was busy)", ms(maxLag))
	b.printf("errors: %d write errors%s, %d rejected%s, %d measured sales not at the observer after the drain (%s), sync errors %d%s;",
		writeErrs, firstOf(firstErr), rejected+int(lightRejected), quoted(firstRejct), missing, secs(drained), len(syncErrs), firstOfList(syncErrs))
	b.printf("  uploads resent %d, messages dropped by edges %d, light edges' uploads still unacknowledged %d, messages the broker tap dropped %d,",
		resent, dropped, lightUnacked, tap.dropped.Load())
	b.printf("  catch-up requests by the full edges %d", catchups)
	b.printf("%s", cpuLine)

	scen := fmt.Sprintf("latency (%d edges, %.0f/s", cfg.edges, cfg.rate)
	if full < cfg.edges {
		scen += fmt.Sprintf(", %d full", full)
	}
	scen += ")"
	errs := writeErrs + rejected + int(lightRejected) + missing + len(syncErrs)
	ok := len(e2e) > 0 && errs == 0 && achieved >= 0.98*cfg.rate
	b.add(scen, "commit at edge A → applied at edge B, p50", ms(d.pct(.5)), "", "")
	b.add(scen, "… p99 (polled every "+cfg.pollEvery.String()+")", ms(d.pct(.99)), "< 250 ms", verdict(ok && d.pct(.99) < 250*time.Millisecond))
	b.add(scen, "… max", ms(d.max()), "", "")
	b.add(scen, "commit → upload at the broker, p50 / p99", ms(up.pct(.5))+" / "+ms(up.pct(.99)), "", "")
	b.add(scen, "commit → hub's ack at the broker, p50 / p99", ms(ack.pct(.5))+" / "+ms(ack.pct(.99)), "", "")
	b.add(scen, "commit → change feed at the broker, p50 / p99", ms(f.pct(.5))+" / "+ms(f.pct(.99)), "", "")
	b.add(scen, "achieved write rate", fmt.Sprintf("%.0f sales/s", achieved), fmt.Sprintf("%.0f/s", cfg.rate), verdict(achieved >= 0.98*cfg.rate))
	b.add(scen, "errors (write / rejected / lost / sync)", fmt.Sprintf("%d / %d / %d / %d", writeErrs, rejected+int(lightRejected), missing, len(syncErrs)), "0", verdict(errs == 0))
	return nil
}

// tap records when uploads, acks and feed entries pass the broker, by
// mutation id. Its MQTT handler only queues; decode does the work.
type tap struct {
	up, ack, feed *arrivals
	msgs          chan tapMsg
	dropped       atomic.Int64
	done          chan struct{}
}

type tapMsg struct {
	at      time.Time
	topic   string
	payload []byte
}

func newTap() *tap {
	return &tap{up: newArrivals(), ack: newArrivals(), feed: newArrivals(), msgs: make(chan tapMsg, 1<<14), done: make(chan struct{})}
}

// handle runs on the MQTT client's delivery goroutine: it must not block.
func (t *tap) handle(topic string, p []byte) {
	select {
	case t.msgs <- tapMsg{time.Now(), topic, p}:
	default:
		t.dropped.Add(1)
	}
}

// tapEnvelope is the part of a message the tap reads: only the ids, so
// it costs far less than replication.Decode of every feed message.
type tapEnvelope struct {
	Kind      replication.Kind `json:"kind"`
	Mutations []struct {
		ID retail.MutationID `json:"id"`
	} `json:"mutations"`
	Results []struct {
		ID string `json:"id"`
	} `json:"results"`
	Entries []struct {
		MutationID string `json:"mutation_id"`
	} `json:"entries"`
}

func (t *tap) decode() {
	defer close(t.done)
	for m := range t.msgs {
		var env tapEnvelope
		if json.Unmarshal(m.payload, &env) != nil {
			continue
		}
		switch {
		case env.Kind == replication.KindUpload && strings.HasSuffix(m.topic, "/up"):
			for _, mu := range env.Mutations {
				t.up.add(mu.ID.String(), m.at)
			}
		case env.Kind == replication.KindAck && strings.HasSuffix(m.topic, "/down"):
			for _, r := range env.Results {
				t.ack.add(r.ID, m.at)
			}
		case env.Kind == replication.KindChanges && strings.HasSuffix(m.topic, "/feed"):
			for _, c := range env.Entries {
				t.feed.add(c.MutationID, m.at)
			}
		}
	}
}

// close stops decoding once what was queued is done; call after the MQTT
// connection is closed.
func (t *tap) close() {
	close(t.msgs)
	<-t.done
}

// pollStats describes the observer's polling.
type pollStats struct {
	polls    int
	maxQuery time.Duration
	err      error
}

// watch polls r every interval for applied_mutations rows it has not
// seen (by rowid: the observer writes nothing, so rows only come from the
// feed and are never deleted) and records each id with the time the poll
// started: the row was committed before that.
func watch(ctx context.Context, r *replication.Replica, every time.Duration, seen *arrivals, stop <-chan struct{}) pollStats {
	var ps pollStats
	var last int64
	{
		db, done := r.DB()
		ps.err = db.QueryRowContext(ctx, "SELECT coalesce(max(rowid), 0) FROM applied_mutations").Scan(&last)
		done()
		if ps.err != nil {
			return ps
		}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return ps
		case <-ctx.Done():
			return ps
		case <-tick.C:
		}
		t := time.Now()
		db, done := r.DB()
		rows, err := db.QueryContext(ctx, "SELECT rowid, id FROM applied_mutations WHERE rowid > ? ORDER BY rowid", last)
		if err != nil {
			done()
			ps.err = err
			continue
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&last, &id); err != nil {
				ps.err = err
				break
			}
			seen.add(id, t)
		}
		rows.Close()
		done()
		ps.polls++
		ps.maxQuery = max(ps.maxQuery, time.Since(t))
	}
}

// profileSelf starts a CPU profile of this process into path; call the
// result to stop it.
func (b *bench) profileSelf(path string) (stop func()) {
	f, err := os.Create(path)
	if err != nil {
		b.logf("profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.logf("profile: %v", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		b.logf("CPU profile of syncbench: %s (go tool pprof -top %s)", path, path)
	}
}

// profileHub saves a CPU profile of a hub process (run with --pprof)
// taken over d.
func (b *bench) profileHub(ctx context.Context, h *hubProc, d time.Duration, path string) error {
	if h.pprof == "" {
		return nil
	}
	secs := max(int(d.Seconds()), 1)
	req, err := newGet(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", h.pprof, secs))
	if err != nil {
		return err
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("hub %s pprof: %s", h.id, resp.Status)
	}
	if err := saveBody(resp.Body, path); err != nil {
		return err
	}
	b.logf("CPU profile of hub %s: %s (go tool pprof -top %s %s)", h.id, path, b.cfg.hubBinary, path)
	return nil
}

func durabilityName(d retail.Durability) string {
	if d == retail.DurabilityNormal {
		return "NORMAL"
	}
	return "FULL"
}

func firstOf(err error) string {
	if err == nil {
		return ""
	}
	return " (first: " + trimErr(err) + ")"
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return " (first: " + s + ")"
}

func firstOfList(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return " (first: " + s[0] + ")"
}

// closeEdges closes edges in parallel. An edge that fell behind the feed
// decodes the messages it has queued before its worker stops, which can
// take long: after a minute the rest are left behind (and logged).
func (b *bench) closeEdges(nodes []*edge.Node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Close()
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.logf("some edges had not stopped a minute after Close (still working through the feed they had queued); going on")
	}
}
