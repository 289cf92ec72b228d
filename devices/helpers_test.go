package devices_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/endcap/endcap/devices"
	"github.com/endcap/endcap/devices/sim"
)

// Tests wait on conditions with generous deadlines (a loaded 2-core CI
// machine) and never assert on timing.
const waitFor = 15 * time.Second

// poll waits until cond holds, or fails the test at the deadline.
func poll(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", waitFor, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scanRig is a virtual scanner on a pty behind a link in a temp dir (like
// /dev/ttyUSB0) and an Endcap Scanner reading it through tarm/serial.
type scanRig struct {
	sim    *sim.Scanner
	path   string
	events chan devices.Event
}

// startScanRig starts both; cleanup stops the Scanner's goroutine and the
// pty.
func startScanRig(tb testing.TB, f devices.Framing) *scanRig {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "ttyUSB0")
	vs, err := sim.NewScanner(sim.ScannerOptions{Link: path, Framing: f})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { vs.Close() })
	rig := &scanRig{sim: vs, path: path, events: make(chan devices.Event, 64)}
	runScanner(tb, devices.ScannerConfig{
		Serial:     devices.SerialConfig{Path: path, Baud: 9600},
		Framing:    f,
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
	}, rig.events)
	rig.expect(tb, devices.EventConnected)
	return rig
}

// runScanner runs a Scanner until the test ends.
func runScanner(tb testing.TB, cfg devices.ScannerConfig, events chan devices.Event) {
	tb.Helper()
	sc, err := devices.NewScanner(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc.Run(ctx, events)
	}()
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// next returns the next event, failing at the deadline.
func (r *scanRig) next(tb testing.TB) devices.Event {
	tb.Helper()
	return nextEvent(tb, r.events)
}

func nextEvent(tb testing.TB, events <-chan devices.Event) devices.Event {
	tb.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(waitFor):
		tb.Fatalf("no scanner event within %v", waitFor)
		return devices.Event{}
	}
}

// expect returns the next event, which must be of type t.
func (r *scanRig) expect(tb testing.TB, t devices.EventType) devices.Event {
	tb.Helper()
	ev := r.next(tb)
	if ev.Type != t {
		tb.Fatalf("event %v (code %q raw %q err %v), want %v", ev.Type, ev.Code, ev.Raw, ev.Err, t)
	}
	return ev
}

// noEvent checks nothing is pending right now (after the events a test
// waited for arrived, a stray one would be queued behind them).
func (r *scanRig) noEvent(tb testing.TB) {
	tb.Helper()
	select {
	case ev := <-r.events:
		tb.Fatalf("unexpected event %v code %q raw %q err %v", ev.Type, ev.Code, ev.Raw, ev.Err)
	default:
	}
}

// recordedPort replays a recorded byte stream, chunk by chunk, as a
// serial port with a read timeout would: a read with nothing to give
// waits the timeout and returns (0, io.EOF). A chunk with an error makes
// the read that reaches it fail (the device went away).
type recordedPort struct {
	chunks  chan chunk
	timeout time.Duration
	closed  chan struct{}
	once    sync.Once
	rest    []byte
}

var _ devices.Port = (*recordedPort)(nil)

type chunk struct {
	b   []byte
	err error
}

func newRecordedPort() *recordedPort {
	return &recordedPort{chunks: make(chan chunk, 64), timeout: 100 * time.Millisecond, closed: make(chan struct{})}
}

func (p *recordedPort) send(b []byte) { p.chunks <- chunk{b: append([]byte(nil), b...)} }

func (p *recordedPort) fail(err error) { p.chunks <- chunk{err: err} }

func (p *recordedPort) Read(b []byte) (int, error) {
	if len(p.rest) == 0 {
		t := time.NewTimer(p.timeout)
		defer t.Stop()
		select {
		case c := <-p.chunks:
			if c.err != nil {
				return 0, c.err
			}
			p.rest = c.b
		case <-t.C:
			return 0, io.EOF
		case <-p.closed:
			return 0, errors.New("closed")
		}
	}
	n := copy(b, p.rest)
	p.rest = p.rest[n:]
	return n, nil
}

func (p *recordedPort) Write(b []byte) (int, error) { return len(b), nil }

func (p *recordedPort) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}
