package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/endcap/endcap/internal/procstat"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs is every process this program started, so that every exit path
// (return, error, SIGINT) can kill them all; see killAll.
var procs struct {
	mu  sync.Mutex
	all []*proc
}

// killAll sends SIGKILL to every process still running and waits for
// each to go.
func killAll() {
	procs.mu.Lock()
	all := slices.Clone(procs.all)
	procs.mu.Unlock()
	for _, p := range all {
		p.kill()
	}
}

// proc is one child process (a hub or an edge) whose stderr is read line
// by line: kept in a short tail for error messages, appended to logPath
// when set, and handed to onLine with the time it arrived.
type proc struct {
	name    string
	bin     string
	args    []string
	ready   string // a line the process prints on stderr when ready
	logPath string
	onLine  func(at time.Time, line string) // called on the reader goroutine; nil: none

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	lines   []string
	started time.Time
}

// start runs the process and waits up to timeout for its ready line.
func (p *proc) start(ctx context.Context, timeout time.Duration) error {
	cmd := exec.Command(p.bin, p.args...)
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
	started := time.Now()
	if err := cmd.Start(); err != nil {
		procs.mu.Unlock()
		if logFile != nil {
			logFile.Close()
		}
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.lines, p.started = cmd, exited, nil, started
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
			at, line := time.Now(), sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			if len(p.lines) > 40 {
				p.lines = p.lines[len(p.lines)-40:]
			}
			p.mu.Unlock()
			if logFile != nil {
				fmt.Fprintln(logFile, line)
			}
			if p.onLine != nil {
				p.onLine(at, line)
			}
			if strings.Contains(line, p.ready) {
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
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-exited:
		return fmt.Errorf("%s exited before it was ready:\n%s", p.name, p.output())
	case <-timer.C:
		p.kill()
		return fmt.Errorf("%s not ready in %s:\n%s", p.name, timeout, p.output())
	case <-ctx.Done():
		p.kill()
		return ctx.Err()
	}
}

// output is the last lines the process printed on stderr.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
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

// pid is the process id, 0 before the first start.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// startedAt is when the process was started last.
func (p *proc) startedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
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

// errAddrInUse tells whether a start failed because a port picked free
// was taken before the process bound it.
func errAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
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
			return fmt.Errorf("%s: not within %s: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// errNotYet is what a poll condition returns while it waits.
var errNotYet = errors.New("not yet")
