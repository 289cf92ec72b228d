// Package procrun runs the project's binaries as child processes for the
// benchmarks and the process tests: started with their ready line
// awaited, their stderr kept (a tail in memory, optionally a log file, and
// a callback per line), killed with SIGKILL on demand, and all of a
// Group's processes killed on every exit path. A child also dies with its
// parent (Linux: PR_SET_PDEATHSIG).
package procrun

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/endcap/endcap/internal/procstat"
)

// Group is every process started with it, so that a program can kill
// them all when it exits, whatever the path (return, error, SIGINT).
type Group struct {
	mu  sync.Mutex
	all []*Proc
}

// KillAll sends SIGKILL to every process of the group still running and
// waits for each to go.
func (g *Group) KillAll() {
	g.mu.Lock()
	all := slices.Clone(g.all)
	g.mu.Unlock()
	for _, p := range all {
		p.Kill()
	}
}

// Proc is one child process; it can be killed and started again with the
// same arguments.
type Proc struct {
	Name    string
	Bin     string
	Args    []string
	Ready   string // a line the process prints on stderr when ready
	LogPath string // "": stderr is kept only in memory (its tail)
	// OnLine is called with every stderr line and when it arrived, on the
	// reader goroutine; nil: none.
	OnLine func(at time.Time, line string)
	// Tail is how many of the last stderr lines Output keeps (40 if 0).
	Tail  int
	Group *Group // nil: none

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	lines   []string
	started time.Time
}

// Start runs the process and waits up to timeout for its ready line. A
// process that exits first, or is not ready in time (it is killed then),
// is an error with its output.
func (p *Proc) Start(ctx context.Context, timeout time.Duration) error {
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.SysProcAttr = procstat.ChildAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = io.Discard
	var logFile *os.File
	if p.LogPath != "" {
		if logFile, err = os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
	}
	// Start and join the group under its lock, so KillAll sees the
	// process as soon as it runs.
	if p.Group != nil {
		p.Group.mu.Lock()
	}
	started := time.Now()
	err = cmd.Start()
	exited := make(chan struct{})
	if err == nil {
		p.mu.Lock()
		p.cmd, p.exited, p.started = cmd, exited, started
		p.lines = append(p.lines, "---- start ----")
		p.mu.Unlock()
		if p.Group != nil && !slices.Contains(p.Group.all, p) {
			p.Group.all = append(p.Group.all, p)
		}
	}
	if p.Group != nil {
		p.Group.mu.Unlock()
	}
	if err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return fmt.Errorf("start %s: %w", p.Bin, err)
	}
	keep := p.Tail
	if keep == 0 {
		keep = 40
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			at, line := time.Now(), sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			if len(p.lines) > keep {
				p.lines = p.lines[len(p.lines)-keep:]
			}
			p.mu.Unlock()
			if logFile != nil {
				fmt.Fprintln(logFile, line)
			}
			if p.OnLine != nil {
				p.OnLine(at, line)
			}
			if strings.Contains(line, p.Ready) {
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
		return fmt.Errorf("%s exited before it was ready:\n%s", p.Name, p.Output())
	case <-timer.C:
		p.Kill()
		return fmt.Errorf("%s not ready in %s:\n%s", p.Name, timeout, p.Output())
	case <-ctx.Done():
		p.Kill()
		return ctx.Err()
	}
}

// Output is the last lines the process printed on stderr ("---- start
// ----" marks each start).
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// Running reports whether the process is up.
func (p *Proc) Running() bool {
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

// Kill sends SIGKILL (kill -9) and waits for the process to go.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL) }

// Stop sends SIGTERM and waits for the process to go (SIGKILL after 10 s).
func (p *Proc) Stop() {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return
	}
	go func() {
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			p.Kill()
		}
	}()
	p.signal(syscall.SIGTERM)
}

func (p *Proc) signal(sig syscall.Signal) {
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
	cmd.Process.Signal(sig)
	<-exited
}

// Pid is the process id, 0 before the first start.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// StartedAt is when the process was started last.
func (p *Proc) StartedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// FreeAddr returns a loopback address nothing listens on now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Main runs a command that starts child processes: run gets a context
// that SIGINT and SIGTERM cancel, every process of the group is killed
// whatever way run ends, and an error is printed as "name: error" with
// exit status 1 (flag.ErrHelp exits 0: --help printed the usage).
func (g *Group) Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	g.KillAll() // every exit path: no child process outlives the command
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Poll calls cond every interval until it returns nil, the timeout
// passes (an error saying what was awaited, wrapping cond's last error),
// or ctx ends.
func Poll(ctx context.Context, what string, timeout, interval time.Duration, cond func() error) error {
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
