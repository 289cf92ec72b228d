// Package proctest runs the project's binaries as real processes in
// tests: built once per test binary, started with their ready line
// awaited, killed with SIGKILL on demand and at cleanup.
package proctest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/internal/procrun"
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
// arguments (procrun.Proc, tied to a test).
type Proc struct {
	procrun.Proc
	t testing.TB
}

// Start starts the process, waits for its ready line (up to 60 s) and
// kills it at the end of the test.
func Start(t testing.TB, name, bin, ready string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Proc: procrun.Proc{Name: name, Bin: bin, Args: args, Ready: ready, Tail: 400}, t: t}
	t.Cleanup(p.Kill)
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Restart starts the process again (it must not be running).
func (p *Proc) Restart() error { return p.Start(context.Background(), 60*time.Second) }

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
	addr, err := procrun.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
