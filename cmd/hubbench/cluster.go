package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/endcap/endcap/internal/procstat"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/endcap/endcap/hub"
)

const token = "hubbench-token"

// procs is every hub process this program started, so that every exit
// path (return, error, SIGINT) can kill them all; see killAll.
var procs struct {
	mu  sync.Mutex
	all []*proc
}

// killAll sends SIGKILL to every hub process still running and waits for
// each to go.
func killAll() {
	procs.mu.Lock()
	all := append([]*proc(nil), procs.all...)
	procs.mu.Unlock()
	for _, p := range all {
		p.kill()
	}
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

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

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    tail
}

// tail keeps the last lines a process printed, for error messages.
type tail struct {
	lines    []string
	restores int // "restored state from snapshot" lines seen
}

func (t *tail) add(line string) {
	if strings.Contains(line, "restored state from snapshot") {
		t.restores++
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > 40 {
		t.lines = t.lines[len(t.lines)-40:]
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log.lines, "\n")
}

// running reports whether the process is up.
func (p *proc) running() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// start runs the process and waits for its ready line.
func (p *proc) start(ctx context.Context, binary string, bootstrap bool) error {
	args := []string{"--id", p.id, "--data", p.dir, "--raft", p.raftAddr, "--http", p.httpAddr, "--token", token, "--log-level", "info"}
	if bootstrap {
		args = append(args, "--bootstrap")
	}
	if p.pprofAddr != "" {
		args = append(args, "--pprof", p.pprofAddr)
	}
	args = append(args, p.args...)
	cmd := exec.Command(binary, args...)
	cmd.SysProcAttr = procstat.ChildAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = io.Discard
	var logFile *os.File
	if p.logPath != "" {
		if logFile, err = os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
	}
	// Register before starting, under the lock, so killAll sees it.
	procs.mu.Lock()
	if err := cmd.Start(); err != nil {
		procs.mu.Unlock()
		if logFile != nil {
			logFile.Close()
		}
		return fmt.Errorf("start %s: %w", binary, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.log = cmd, exited, tail{}
	p.mu.Unlock()
	if !slices.Contains(procs.all, p) {
		procs.all = append(procs.all, p)
	}
	procs.mu.Unlock()

	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.add(line)
			p.mu.Unlock()
			if logFile != nil {
				fmt.Fprintln(logFile, line)
			}
			if strings.Contains(line, "ready: raft") {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		close(exited)
	}()
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-exited:
		return fmt.Errorf("hub %s exited before it was ready:\n%s", p.id, p.output())
	case <-timer.C:
		p.kill()
		return fmt.Errorf("hub %s not ready in 60s:\n%s", p.id, p.output())
	case <-ctx.Done():
		p.kill()
		return ctx.Err()
	}
}

// kill sends SIGKILL (kill -9) and waits for the process to go.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
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
			if *a, err = freeAddr(); err != nil {
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
	return poll(ctx, "join "+p.id, 90*time.Second, 200*time.Millisecond, func() error {
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
	err := poll(ctx, "a leader all nodes agree on", timeout, 50*time.Millisecond, func() error {
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
	return poll(ctx, fmt.Sprintf("%s applies index %d", p.id, target), timeout, 20*time.Millisecond, func() error {
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
	return poll(ctx, "nodes converge", timeout, 100*time.Millisecond, func() error {
		_, err := hub.CheckConverged(ctx, c.clients()...)
		return err
	})
}

func status(ctx context.Context, p *proc) (hub.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return p.client.Status(ctx)
}

// poll calls cond every interval until it returns nil, the timeout
// passes, or ctx ends.
func poll(ctx context.Context, what string, timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s: %v", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
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
