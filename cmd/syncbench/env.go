package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/endcap/endcap/internal/procrun"

	"github.com/endcap/endcap/edge"
	"github.com/endcap/endcap/hub"
	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

const (
	token  = "syncbench-token"
	region = "bench"
)

// env is one scenario's region: the embedded broker in this process,
// the password set every client logs in with, and hub processes.
type env struct {
	b      *bench
	name   string
	dir    string
	pw     *replication.Passwords
	pwFile string // the password set, for the hubs' --passwords
	hubPw  string // file holding the hub's broker password
	broker *replication.Broker
	hubs   []*hubProc
}

// hubProc is one hub process.
type hubProc struct {
	*procrun.Proc
	id     string
	dir    string
	raft   string
	http   string
	pprof  string // "" unless profiling
	client *hub.Client
}

// password is the broker (and snapshot) password of user: fixed, since
// everything listens on loopback only.
func password(user string) string { return "pw-" + user }

// newEnv starts a broker in a new directory under the bench's work dir,
// with users for the hub and the given edges.
func (b *bench) newEnv(ctx context.Context, name string, users ...string) (*env, error) {
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	e := &env{b: b, name: name, dir: dir, pw: &replication.Passwords{}, pwFile: filepath.Join(dir, "passwords"), hubPw: filepath.Join(dir, "hub-password")}
	for _, u := range append([]string{replication.DefaultHubUser}, users...) {
		if err := e.pw.Set(u, password(u)); err != nil {
			return nil, err
		}
	}
	if err := e.pw.Save(e.pwFile); err != nil {
		return nil, err
	}
	if err := os.WriteFile(e.hubPw, []byte(password(replication.DefaultHubUser)+"\n"), 0o600); err != nil {
		return nil, err
	}
	var err error
	for try := 1; ; try++ {
		var addr string
		if addr, err = procrun.FreeAddr(); err != nil {
			return nil, err
		}
		e.broker, err = replication.StartBroker(ctx, replication.BrokerConfig{Region: region, TCPAddr: addr, Passwords: e.pw, Logger: b.logger("broker")})
		if err == nil || try == 5 || !errAddrInUse(err) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// close kills the env's hubs and stops the broker; the files stay until
// the work dir is removed.
func (e *env) close() {
	for _, h := range e.hubs {
		h.Kill()
	}
	if e.broker != nil {
		e.broker.Close()
	}
}

// startHub starts one hub process on free ports, joined to the broker.
// The first node of a cluster bootstraps it.
func (e *env) startHub(ctx context.Context, id string, bootstrap bool, readyTimeout time.Duration) (*hubProc, error) {
	h := &hubProc{id: id, dir: filepath.Join(e.dir, id), client: &hub.Client{Token: token, HTTP: e.b.hc}}
	h.Proc = &procrun.Proc{Group: &children, Name: "hub " + id, Bin: e.b.cfg.hubBinary, Ready: "ready: raft"}
	if e.b.cfg.logDir != "" {
		h.LogPath = filepath.Join(e.b.cfg.logDir, e.name+"-"+id+".log")
	}
	for try := 1; ; try++ {
		addrs := []*string{&h.raft, &h.http}
		if e.b.cfg.pprofDir != "" {
			addrs = append(addrs, &h.pprof)
		}
		for _, a := range addrs {
			var err error
			if *a, err = procrun.FreeAddr(); err != nil {
				return nil, err
			}
		}
		h.client.Addr = h.http
		h.Args = []string{"--id", id, "--data", h.dir, "--raft", h.raft, "--http", h.http, "--token", token,
			"--region", region, "--mqtt", e.broker.URL(), "--mqtt-password-file", e.hubPw, "--passwords", e.pwFile, "--log-level", "info"}
		if bootstrap {
			h.Args = append(h.Args, "--bootstrap")
		}
		if h.pprof != "" {
			h.Args = append(h.Args, "--pprof", h.pprof)
		}
		err := h.Start(ctx, readyTimeout)
		if err == nil {
			e.hubs = append(e.hubs, h)
			return h, nil
		}
		if try == 5 || !errAddrInUse(err) {
			return nil, err
		}
		e.b.logf("%s: a port was taken before the hub bound it; trying others", id)
		if bootstrap { // a fresh node: its files are not worth keeping
			os.RemoveAll(filepath.Join(h.dir, "raft-wal"))
		}
	}
}

// startCluster starts three hub processes (the first bootstraps, the
// others join through it) and waits for a leader all agree on.
func (e *env) startCluster(ctx context.Context) error {
	e.b.logf("%s: starting 3 hub processes in %s", e.name, e.dir)
	first, err := e.startHub(ctx, "h1", true, time.Minute)
	if err != nil {
		return err
	}
	if _, err := e.leader(ctx, 30*time.Second); err != nil {
		return err
	}
	for _, id := range []string{"h2", "h3"} {
		h, err := e.startHub(ctx, id, false, time.Minute)
		if err != nil {
			return err
		}
		err = procrun.Poll(ctx, "join "+id, 90*time.Second, 200*time.Millisecond, func() error {
			cctx, cancel := context.WithTimeout(ctx, 75*time.Second)
			defer cancel()
			_, err := first.client.Join(cctx, hub.Member{ID: h.id, RaftAddr: h.raft, HTTPAddr: h.http})
			return err
		})
		if err != nil {
			return err
		}
	}
	_, err = e.leader(ctx, 30*time.Second)
	return err
}

// leader polls every live hub until all report the same leader, one of
// them, and returns it.
func (e *env) leader(ctx context.Context, timeout time.Duration) (*hubProc, error) {
	var leader *hubProc
	err := procrun.Poll(ctx, "a hub leader all nodes agree on", timeout, 50*time.Millisecond, func() error {
		leader = nil
		seen := ""
		for _, h := range e.hubs {
			if !h.Running() {
				continue
			}
			st, err := h.status(ctx)
			if err != nil {
				return err
			}
			if st.Leader.ID == "" || (seen != "" && st.Leader.ID != seen) {
				return fmt.Errorf("%s sees leader %q", h.id, st.Leader.ID)
			}
			seen = st.Leader.ID
		}
		for _, h := range e.hubs {
			if h.id == seen && h.Running() {
				leader = h
				return nil
			}
		}
		return fmt.Errorf("leader %q is not a live node", seen)
	})
	return leader, err
}

func (h *hubProc) status(ctx context.Context) (hub.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return h.client.Status(ctx)
}

// submit sends mutations to the hub and fails unless every one is
// accepted (or a duplicate of an accepted one).
func (h *hubProc) submit(ctx context.Context, raws []json.RawMessage, timeout time.Duration) ([]hub.MutationResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := h.client.Submit(ctx, raws)
	if err != nil {
		return nil, fmt.Errorf("submit to %s: %w", h.id, err)
	}
	for _, r := range res {
		if r.Err != "" || r.Status != retail.StatusAccepted {
			return res, fmt.Errorf("%w: mutation %s: %s %s %s %s", errRejected, r.ID, r.Status, r.Code, r.Reason, r.Err)
		}
	}
	return res, nil
}

// errRejected: the hub answered, but not every mutation was accepted.
var errRejected = errors.New("not accepted")

// submitRetry submits mutations to whichever hub leads, and on any
// error (a leader change, a timeout on the busy machine) finds the leader
// again and resends them, for up to two minutes: the hub applies a
// mutation id once, so a resend is safe.
func (e *env) submitRetry(ctx context.Context, raws []json.RawMessage) ([]hub.MutationResult, error) {
	var res []hub.MutationResult
	var last error
	err := procrun.Poll(ctx, "submit to the hub", 2*time.Minute, 500*time.Millisecond, func() error {
		leader, err := e.leader(ctx, 30*time.Second)
		if err == nil {
			res, err = leader.submit(ctx, raws, time.Minute)
		}
		if err != nil && !errors.Is(err, errRejected) {
			if last == nil || err.Error() != last.Error() {
				e.b.logf("%s: %v; trying again", e.name, err)
			}
			last = err
			return err
		}
		last = err
		return nil
	})
	if err == nil {
		err = last
	}
	return res, err
}

// seed writes the scenario region (four stores with a million socks
// each, products, clerks) through the leader.
func (e *env) seed(ctx context.Context) error {
	var raws []json.RawMessage
	for i, body := range scenario.Seed() {
		raw, err := retail.Encode(retail.Mutation{ID: retail.MutationID{Origin: "seed", Seq: uint64(i + 1)},
			HLC: retail.HLC{Wall: scenario.T0.UnixMilli()}, Actor: scenario.System, Body: body})
		if err != nil {
			return err
		}
		raws = append(raws, raw)
	}
	_, err := e.submitRetry(ctx, raws)
	return err
}

// hubURLs are the hubs' APIs, for snapshot downloads.
func (e *env) hubURLs() []string {
	var out []string
	for _, h := range e.hubs {
		out = append(out, "http://"+h.http)
	}
	return out
}

// startEdge starts an edge node in this process: replica, sync worker,
// no local API.
func (e *env) startEdge(ctx context.Context, id, dir string) (*edge.Node, error) {
	return edge.Start(ctx, edge.Config{Region: region, ID: id, DataDir: dir, Durability: e.b.cfg.durability,
		MQTT: replication.MQTTConfig{URL: e.broker.URL(), Password: password(id)}, HubURLs: e.hubURLs(), Logger: e.b.logger("edge-" + id)})
}

// waitApplied polls an in-process edge until it has applied target.
func waitApplied(ctx context.Context, n *edge.Node, target uint64, timeout, every time.Duration) error {
	return procrun.Poll(ctx, fmt.Sprintf("edge %s applies hub sequence %d", n.Replica().Edge(), target), timeout, every, func() error {
		got, err := n.Replica().AppliedSeq(ctx)
		if err != nil {
			return err
		}
		if got < target {
			return fmt.Errorf("at %d (%s)", got, n.Sync().LastError())
		}
		return nil
	})
}

// logger is where in-process components log: warnings and errors to a
// file in --log-dir, or nowhere.
func (b *bench) logger(name string) *slog.Logger {
	if b.cfg.logDir == "" {
		return slog.New(slog.DiscardHandler)
	}
	b.logMu.Lock()
	defer b.logMu.Unlock()
	if b.logFile == nil {
		f, err := os.OpenFile(filepath.Join(b.cfg.logDir, "syncbench.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			b.logf("log file: %v", err)
			return slog.New(slog.DiscardHandler)
		}
		b.logFile = f
	}
	return slog.New(slog.NewTextHandler(b.logFile, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", name)
}

// trimErr shortens an error for a table cell.
func trimErr(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
