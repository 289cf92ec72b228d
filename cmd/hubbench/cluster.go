package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/endcap/endcap/hub"
	"github.com/endcap/endcap/internal/procrun"
)

const token = "hubbench-token"

// children is every hub process this program started, so that every
// exit path (return, error, SIGINT) can kill them all.
var children procrun.Group

// proc is one hub process: its id, data dir and addresses stay the same
// across restarts.
type proc struct {
	id        string
	dir       string
	raftAddr  string
	httpAddr  string
	pprofAddr string // "" unless the hubs run with --pprof
	logPath   string // "": the process's stderr is kept only in memory (its tail)
	args      []string
	client    *hub.Client

	run      procrun.Proc
	restores atomic.Int64 // "restored state from snapshot" lines seen
}

func (p *proc) running() bool { return p.run.Running() }
func (p *proc) kill()         { p.run.Kill() }
func (p *proc) pid() int      { return p.run.Pid() }

// start runs the process and waits for its ready line.
func (p *proc) start(ctx context.Context, binary string, bootstrap bool) error {
	args := []string{"--id", p.id, "--data", p.dir, "--raft", p.raftAddr, "--http", p.httpAddr, "--token", token, "--log-level", "info"}
	if bootstrap {
		args = append(args, "--bootstrap")
	}
	if p.pprofAddr != "" {
		args = append(args, "--pprof", p.pprofAddr)
	}
	p.run.Name, p.run.Bin, p.run.Args = "hub "+p.id, binary, append(args, p.args...)
	p.run.Ready, p.run.LogPath, p.run.Group = "ready: raft", p.logPath, &children
	p.run.OnLine = func(_ time.Time, line string) {
		if strings.Contains(line, "restored state from snapshot") {
			p.restores.Add(1)
		}
	}
	return p.run.Start(ctx, 60*time.Second)
}

func (p *proc) member() hub.Member {
	return hub.Member{ID: p.id, RaftAddr: p.raftAddr, HTTPAddr: p.httpAddr}
}

// cluster is three hub processes in a temp dir.
type cluster struct {
	binary string
	dir    string
	nodes  []*proc
	hc     *http.Client
	logf   func(format string, args ...any)
}

// clusterOptions are how a cluster's processes run.
type clusterOptions struct {
	binary string
	root   string   // parent of the cluster's dir
	name   string   // the cluster's dir name, for the progress lines
	args   []string // extra hub flags, for every node
	pprof  bool     // run every node with --pprof on a free port
	logDir string   // "": no log files; else each node's stderr is appended to DIR/NAME-ID.log
	hc     *http.Client
	logf   func(format string, args ...any)
}

// startCluster starts three hub processes on free loopback ports: the
// first with --bootstrap, the others joined through it. It returns once
// every node agrees on a leader. On error every process it started is
// killed.
func startCluster(ctx context.Context, o clusterOptions) (c *cluster, err error) {
	dir, err := os.MkdirTemp(o.root, o.name+"-")
	if err != nil {
		return nil, err
	}
	c = &cluster{binary: o.binary, dir: dir, hc: o.hc, logf: o.logf}
	defer func() {
		if err != nil {
			c.close()
			c = nil
		}
	}()
	for i := range 3 {
		p := &proc{id: fmt.Sprintf("h%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("h%d", i+1)), args: o.args}
		p.client = &hub.Client{Token: token, HTTP: o.hc}
		if o.logDir != "" {
			p.logPath = filepath.Join(o.logDir, filepath.Base(dir)+"-"+p.id+".log")
		}
		c.nodes = append(c.nodes, p)
	}
	c.logf("%s: starting 3 hub processes in %s (flags: %s)", o.name, dir, strings.Join(o.args, " "))
	if err := c.firstStart(ctx, c.nodes[0], true, o.pprof); err != nil {
		return c, err
	}
	if _, err := c.waitLeader(ctx, 30*time.Second); err != nil {
		return c, err
	}
	for _, p := range c.nodes[1:] {
		if err := c.firstStart(ctx, p, false, o.pprof); err != nil {
			return c, err
		}
		if err := c.join(ctx, p); err != nil {
			return c, err
		}
	}
	if _, err := c.waitLeader(ctx, 30*time.Second); err != nil {
		return c, err
	}
	return c, nil
}

// firstStart picks free ports for p and starts it. A port found free can
// be taken before the hub binds it (by an outgoing connection's ephemeral
// port, say): then it tries again with other ports.
func (c *cluster) firstStart(ctx context.Context, p *proc, bootstrap, pprof bool) error {
	for try := 1; ; try++ {
		addrs := []*string{&p.raftAddr, &p.httpAddr}
		if pprof {
			addrs = append(addrs, &p.pprofAddr)
		}
		for _, a := range addrs {
			var err error
			if *a, err = procrun.FreeAddr(); err != nil {
				return err
			}
		}
		p.client.Addr = p.httpAddr
		err := p.start(ctx, c.binary, bootstrap)
		if err == nil || try == 5 || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		c.logf("%s: a port was taken before the hub bound it; trying others", p.id)
		os.RemoveAll(p.dir)
	}
}

// restart starts p again with its id, data dir and ports. If a port was
// taken meanwhile (by an outgoing connection's ephemeral port, say), it
// tries again for a few seconds.
func (c *cluster) restart(ctx context.Context, p *proc) error {
	for try := 1; ; try++ {
		err := p.start(ctx, c.binary, false)
		if err == nil || try == 10 || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		c.logf("%s: its port is taken; trying again in 1s", p.id)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// close kills the cluster's processes and removes its files.
func (c *cluster) close() {
	for _, p := range c.nodes {
		p.kill()
	}
	os.RemoveAll(c.dir)
}

// join adds p as a voter through the first node (forwarded to the leader).
func (c *cluster) join(ctx context.Context, p *proc) error {
	return procrun.Poll(ctx, "join "+p.id, 90*time.Second, 200*time.Millisecond, func() error {
		for _, q := range c.live() {
			if q == p {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 75*time.Second)
			_, err := q.client.Join(cctx, p.member())
			cancel()
			return err
		}
		return errors.New("no live node to join through")
	})
}

// live are the nodes whose processes are running.
func (c *cluster) live() []*proc {
	var out []*proc
	for _, p := range c.nodes {
		if p.running() {
			out = append(out, p)
		}
	}
	return out
}

func (c *cluster) node(id string) *proc {
	for _, p := range c.nodes {
		if p.id == id {
			return p
		}
	}
	return nil
}

// waitLeader polls every live node until all report the same leader, one
// of the live nodes whose API address they know, and returns it.
func (c *cluster) waitLeader(ctx context.Context, timeout time.Duration) (*proc, error) {
	var leader *proc
	err := procrun.Poll(ctx, "a leader all nodes agree on", timeout, 50*time.Millisecond, func() error {
		leader = nil
		seen := ""
		for _, p := range c.live() {
			st, err := status(ctx, p)
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
		if leader = c.node(seen); leader == nil || !leader.running() {
			return fmt.Errorf("leader %q is not a live node", seen)
		}
		return nil
	})
	return leader, err
}

// waitApplied waits until p has applied index target.
func (c *cluster) waitApplied(ctx context.Context, p *proc, target uint64, timeout time.Duration) error {
	return procrun.Poll(ctx, fmt.Sprintf("%s applies index %d", p.id, target), timeout, 20*time.Millisecond, func() error {
		st, err := status(ctx, p)
		if err != nil {
			return err
		}
		if st.AppliedIndex < target {
			return fmt.Errorf("%s at %d", p.id, st.AppliedIndex)
		}
		return nil
	})
}

// waitConverged waits until every live node has applied the leader's
// index and reports the same state checksum.
func (c *cluster) waitConverged(ctx context.Context, timeout time.Duration) error {
	leader, err := c.waitLeader(ctx, timeout)
	if err != nil {
		return err
	}
	if err := c.waitAllApplied(ctx, leader, timeout); err != nil {
		return err
	}
	return procrun.Poll(ctx, "nodes converge", timeout, 100*time.Millisecond, func() error {
		_, err := hub.CheckConverged(ctx, c.clients()...)
		return err
	})
}

func status(ctx context.Context, p *proc) (hub.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return p.client.Status(ctx)
}

// clients are the live nodes' API clients.
func (c *cluster) clients() []*hub.Client {
	var out []*hub.Client
	for _, p := range c.live() {
		out = append(out, p.client)
	}
	return out
}

// waitAllApplied waits until every live node has applied the leader's
// last applied index.
func (c *cluster) waitAllApplied(ctx context.Context, leader *proc, timeout time.Duration) error {
	st, err := status(ctx, leader)
	if err != nil {
		return err
	}
	for _, p := range c.live() {
		if err := c.waitApplied(ctx, p, st.AppliedIndex, timeout); err != nil {
			return err
		}
	}
	return nil
}
