// Package proctest runs the project's binaries as real processes in
// tests: built once per test binary, started with their ready line
// awaited, killed with SIGKILL on demand and at cleanup.
package proctest

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the main packages (e.g. "./cmd/hub") of the module at
// root into dir and returns the binaries' paths by base name.
func Build(root, dir string, pkgs ...string) (map[string]string, error) {
	args := append([]string{"build", "-o", dir + "/"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	out := map[string]string{}
	for _, p := range pkgs {
		out[filepath.Base(p)] = filepath.Join(dir, filepath.Base(p))
	}
	return out, nil
}

// Proc is one process that can be killed and started again with the same
// arguments.
type Proc struct {
	Name  string
	Bin   string
	Args  []string
	Ready string // a line the process prints on stderr when ready

	t      testing.TB
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	lines  []string
}

// Start starts the process, waits for its ready line (up to 60 s) and
// kills it at the end of the test.
func Start(t testing.TB, name, bin, ready string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Bin: bin, Args: args, Ready: ready, t: t}
	t.Cleanup(p.Kill)
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Restart starts the process again (it must not be running).
func (p *Proc) Restart() error {
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	ready := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.lines = append(p.lines, "---- start ----")
	p.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			if len(p.lines) > 400 {
				p.lines = p.lines[len(p.lines)-400:]
			}
			p.mu.Unlock()
			if strings.Contains(line, p.Ready) {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(exited)
	}()
	select {
	case <-ready:
		return nil
	case <-exited:
		return fmt.Errorf("%s exited before it was ready:\n%s", p.Name, p.Output())
	case <-time.After(60 * time.Second):
		p.Kill()
		return fmt.Errorf("%s not ready in 60s:\n%s", p.Name, p.Output())
	}
}

// Running reports whether the process is up.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
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

// Output is the last lines the process printed on stderr.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// LogOnFailure prints the process's output if the test fails.
func (p *Proc) LogOnFailure() {
	p.t.Cleanup(func() {
		if p.t.Failed() {
			p.t.Logf("%s output:\n%s", p.Name, p.Output())
		}
	})
}

// FreeAddr is a loopback address nothing listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
