package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/endcap/endcap/hub"
	"github.com/endcap/endcap/internal/mqtttest"
	"github.com/endcap/endcap/retail"
)

const token = "test-token"

var hubBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hubbin")
	if err != nil {
		panic(err)
	}
	hubBinary = filepath.Join(dir, "hub")
	out, err := exec.Command("go", "build", "-o", hubBinary, "github.com/endcap/endcap/cmd/hub").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build hub: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback address below the kernel's ephemeral
// range, free a moment ago: a node restarted on it cannot find it taken
// by another connection's local end (mqtttest.FreePort).
func freePort(t testing.TB) string { return mqtttest.FreeAddr(t) }

// proc is one hub process.
type proc struct {
	t        testing.TB
	id       string
	dir      string
	raftAddr string
	httpAddr string
	extra    []string
	cmd      *exec.Cmd
	exited   chan struct{}
	mu       sync.Mutex
	log      strings.Builder
	client   *hub.Client
}

// newProc prepares a node with free ports and a data dir; start runs it.
func newProc(t testing.TB, id string, extra ...string) *proc {
	p := &proc{t: t, id: id, dir: filepath.Join(t.TempDir(), id), raftAddr: freePort(t), httpAddr: freePort(t), extra: extra}
	p.client = &hub.Client{Addr: p.httpAddr, Token: token}
	return p
}

// start runs the process and waits for its ready line. It fails the test
// if the process exits first, printing what it said.
//
// A restarted node keeps its addresses (they are in the raft
// configuration), and while it was down another process may have taken
// one of its ports for an outgoing connection's local end: then the
// start is tried again until the port is free, for up to 30 s.
func (p *proc) start(bootstrap bool) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := p.tryStart(bootstrap)
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			p.t.Fatal(err)
		}
		p.t.Logf("hub %s: a port is taken, trying again: %v", p.id, err)
		time.Sleep(250 * time.Millisecond)
	}
}

func (p *proc) tryStart(bootstrap bool) error {
	args := []string{"--id", p.id, "--data", p.dir, "--raft", p.raftAddr, "--http", p.httpAddr, "--token", token,
		"--log-level", "warn"}
	if bootstrap {
		args = append(args, "--bootstrap")
	}
	args = append(args, p.extra...)
	p.mu.Lock()
	p.log.Reset()
	p.mu.Unlock()
	cmd := exec.Command(hubBinary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if strings.Contains(line, "ready: raft") {
				once.Do(func() { close(ready) })
			}
		}
		cmd.Wait()
		close(p.exited)
	}()
	p.t.Cleanup(p.kill)
	select {
	case <-ready:
		return nil
	case <-p.exited:
		return fmt.Errorf("hub %s exited before it was ready:\n%s", p.id, p.output())
	case <-time.After(60 * time.Second):
		p.kill()
		return fmt.Errorf("hub %s not ready in 60s:\n%s", p.id, p.output())
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill sends SIGKILL (kill -9) and waits for the process to go.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("hub %s did not stop on SIGTERM:\n%s", p.id, p.output())
	}
}

func (p *proc) member() hub.Member {
	return hub.Member{ID: p.id, RaftAddr: p.raftAddr, HTTPAddr: p.httpAddr}
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

type cluster struct {
	t     testing.TB
	nodes []*proc
}

// startCluster starts n hub processes: the first bootstraps, the others
// join through it; it returns when all agree on the leader.
func startCluster(t testing.TB, n int, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t}
	for i := range n {
		c.nodes = append(c.nodes, newProc(t, fmt.Sprintf("h%d", i+1), extra...))
	}
	c.nodes[0].start(true)
	c.waitLeader(nil)
	for _, p := range c.nodes[1:] {
		p.start(false)
		c.join(p)
	}
	c.waitLeader(nil)
	return c
}

func (c *cluster) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}

// join adds p through whichever node answers (writes are forwarded).
func (c *cluster) join(p *proc) {
	c.t.Helper()
	waitFor(c.t, "join "+p.id, 30*time.Second, func() error {
		for _, q := range c.live() {
			if q == p {
				continue
			}
			if _, err := q.client.Join(c.ctx(), p.member()); err == nil {
				return nil
			}
		}
		return errors.New("no node accepted the join")
	})
}

// live are the nodes whose processes are running.
func (c *cluster) live() []*proc {
	var out []*proc
	for _, p := range c.nodes {
		if p.cmd == nil {
			continue
		}
		select {
		case <-p.exited:
		default:
			out = append(out, p)
		}
	}
	return out
}

// waitLeader waits until every live node but those in skip reports the
// same leader, one of them, and returns it.
func (c *cluster) waitLeader(skip map[string]bool) *proc {
	c.t.Helper()
	var leader *proc
	waitFor(c.t, "a leader all nodes agree on", 60*time.Second, func() error {
		leader = nil
		seen := ""
		for _, p := range c.live() {
			if skip[p.id] {
				continue
			}
			st, err := p.client.Status(c.ctx())
			if err != nil {
				return err
			}
			if st.Leader.ID == "" || (seen != "" && st.Leader.ID != seen) {
				return fmt.Errorf("%s sees leader %q", p.id, st.Leader.ID)
			}
			if st.Leader.HTTPAddr == "" {
				return fmt.Errorf("%s does not know the leader's address yet", p.id)
			}
			seen = st.Leader.ID
		}
		for _, p := range c.live() {
			if p.id == seen {
				leader = p
			}
		}
		if leader == nil {
			return fmt.Errorf("leader %q is not a live node", seen)
		}
		return nil
	})
	return leader
}

// waitConverged waits until every live node has applied the same index
// and their state checksums are equal.
func (c *cluster) waitConverged() {
	c.t.Helper()
	waitFor(c.t, "nodes converge", 90*time.Second, func() error {
		_, err := hub.CheckConverged(c.ctx(), c.clients()...)
		return err
	})
}

// region builds mutations for a small region and sales in it.
type region struct {
	origin string
	seq    uint64
	now    time.Time
}

func newRegionWriter(origin string) *region {
	return &region{origin: origin, now: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
}

func (r *region) encode(t testing.TB, b retail.Body) json.RawMessage {
	t.Helper()
	r.seq++
	r.now = r.now.Add(time.Millisecond)
	m := retail.Mutation{ID: retail.MutationID{Origin: r.origin, Seq: r.seq}, HLC: retail.HLC{Wall: r.now.UnixMilli()},
		Actor: retail.Actor{Kind: "system", ID: "test"}, Body: b}
	raw, err := retail.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// base is a store, a DC and 20 products with plenty of stock.
func (r *region) base(t testing.TB) []json.RawMessage {
	out := []json.RawMessage{
		r.encode(t, &retail.UpsertStore{ID: "S1", Kind: retail.KindStore, Name: "Main St", Region: "west"}),
		r.encode(t, &retail.UpsertStore{ID: "DC1", Kind: retail.KindDC, Name: "DC", Region: "west"}),
	}
	for i := range 20 {
		sku := fmt.Sprintf("SKU-%02d", i)
		out = append(out, r.encode(t, &retail.UpsertProduct{SKU: sku, Name: sku, Category: "c", PriceCents: 1000, Active: true}),
			r.encode(t, &retail.AdjustStock{Location: "S1", SKU: sku, Delta: 1_000_000, Reason: "received"}))
	}
	return out
}

// sale is a 3-line till sale with a unique order id.
func (r *region) sale(t testing.TB, n int) json.RawMessage {
	o := retail.Order{ID: fmt.Sprintf("%s-o%d", r.origin, n), Channel: retail.ChannelStore, StoreID: "S1", Fulfilment: retail.CarryOut}
	for l := range 3 {
		o.Lines = append(o.Lines, retail.Line{SKU: fmt.Sprintf("SKU-%02d", (n+l)%20), Qty: 1, UnitPriceCents: 1000})
	}
	o.Tenders = []retail.Tender{{Kind: retail.TenderCash, AmountCents: 3000}}
	return r.encode(t, &retail.RecordSale{Order: o})
}

// submit sends muts through p and fails on error or a rejection.
func submit(t testing.TB, p *proc, muts []json.RawMessage) []hub.MutationResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := p.client.Submit(ctx, muts)
	if err != nil {
		t.Fatalf("submit via %s: %v", p.id, err)
	}
	for i, r := range res {
		if r.Err != "" || r.Status == retail.StatusRejected {
			t.Fatalf("mutation %d via %s: %+v", i, p.id, r)
		}
	}
	return res
}

// clients are the live nodes' API clients.
func (c *cluster) clients() []*hub.Client {
	var out []*hub.Client
	for _, p := range c.live() {
		out = append(out, p.client)
	}
	return out
}
