package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/endcap/endcap/devices"
)

const waitFor = 15 * time.Second

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// devsim is a running devsim: type lines into it, read what it printed.
type devsim struct {
	dir  string
	in   *io.PipeWriter
	out  *syncBuffer
	done chan error
}

func startDevsim(t *testing.T, args ...string) *devsim {
	t.Helper()
	d := &devsim{dir: t.TempDir(), out: &syncBuffer{}, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	d.in = pw
	m := &Main{Stdin: pr, Stdout: d.out, Stderr: d.out}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { d.done <- m.Run(ctx, append([]string{"--dir", d.dir}, args...)) }()
	t.Cleanup(func() {
		cancel()
		pw.Close()
		select {
		case <-d.done:
		case <-time.After(waitFor):
			t.Error("devsim did not stop")
		}
	})
	d.waitOutput(t, "type a code")
	return d
}

func (d *devsim) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(d.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (d *devsim) waitOutput(t *testing.T, s string) {
	t.Helper()
	poll(t, "devsim to print "+s, func() bool { return strings.Contains(d.out.String(), s) })
}

// TestDevsimDevices: Endcap's own Scanner and Printer open devsim's
// links as they would real ports.
func TestDevsimDevices(t *testing.T) {
	qdir := filepath.Join(t.TempDir(), "queue")
	d := startDevsim(t, "--queue", qdir, "--scanner-aim", "--scanner-suffix", "crlf")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	sc, err := devices.NewScanner(devices.ScannerConfig{
		Serial:  devices.SerialConfig{Path: filepath.Join(d.dir, "scanner")},
		Framing: devices.Framing{Suffix: devices.SuffixCRLF, AIM: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan devices.Event, 16)
	wg.Add(1)
	go func() { defer wg.Done(); sc.Run(ctx, events) }()
	next := func() devices.Event {
		select {
		case ev := <-events:
			return ev
		case <-time.After(waitFor):
			t.Fatal("no scanner event")
			return devices.Event{}
		}
	}
	if ev := next(); ev.Type != devices.EventConnected {
		t.Fatalf("event %v", ev.Type)
	}
	d.typeLine(t, "4006381333931")
	if ev := next(); ev.Type != devices.EventScan || ev.Kind != devices.KindEAN13 || ev.Symbology != devices.SymEAN13 {
		t.Fatalf("event %+v", ev)
	}
	d.typeLine(t, ":garbage 5")
	if ev := next(); ev.Type != devices.EventError || !errors.Is(ev.Err, devices.ErrGarbage) {
		t.Fatalf("event %+v", ev)
	}

	p, err := devices.NewPrinter(devices.PrinterConfig{
		Serial:        devices.SerialConfig{Path: filepath.Join(d.dir, "printer")},
		QueueDir:      qdir,
		RetryInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); p.Run(ctx) }()
	sale, err := sampleJob("sale", time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Enqueue(ctx, sale); err != nil {
		t.Fatal(err)
	}
	receipt := filepath.Join(d.dir, "receipts", "0001.txt")
	poll(t, "the receipt file", func() bool { _, err := os.Stat(receipt); return err == nil })
	text, _ := os.ReadFile(receipt)
	if !strings.Contains(string(text), "Receipt DEMO-090000") || !strings.Contains(string(text), "partial cut") {
		t.Errorf("receipt text:\n%s", text)
	}
	if fi, err := os.Stat(filepath.Join(d.dir, "receipts", "0001.png")); err != nil || fi.Size() == 0 {
		t.Errorf("receipt png: %v", err)
	}

	d.typeLine(t, ":paper-out")
	d.waitOutput(t, "paper out true")
	ret, _ := sampleJob("return", time.Date(2026, 11, 22, 9, 1, 0, 0, time.UTC))
	if err := p.Enqueue(ctx, ret); err != nil {
		t.Fatal(err)
	}
	poll(t, "paper out", func() bool { return errors.Is(p.State().Err, devices.ErrPaperOut) })
	d.typeLine(t, ":queue")
	d.waitOutput(t, ret.ID)
	d.typeLine(t, ":paper-in")
	poll(t, "the second receipt", func() bool {
		_, err := os.Stat(filepath.Join(d.dir, "receipts", "0002.txt"))
		return err == nil
	})
	d.typeLine(t, ":quit")
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatal(err)
		}
		d.done <- nil // for cleanup
	case <-time.After(waitFor):
		t.Fatal(":quit did not stop devsim")
	}
}

// TestDevsimDemo: with --demo, devsim reads its own scanner and prints
// through its own queue.
func TestDevsimDemo(t *testing.T) {
	d := startDevsim(t, "--demo")
	d.waitOutput(t, "app: scanner connected")
	d.typeLine(t, "LC1234567897")
	d.waitOutput(t, "app: scan loyalty-card LC1234567897")
	d.typeLine(t, "4006381333932")
	d.waitOutput(t, "check digit")
	d.typeLine(t, ":unplug scanner")
	d.waitOutput(t, "app: scanner disconnected")
	d.typeLine(t, ":replug scanner")
	poll(t, "reconnect", func() bool { return strings.Count(d.out.String(), "app: scanner connected") == 2 })
	for _, kind := range []string{"coupons", "order", "pickup"} {
		d.typeLine(t, ":print "+kind)
	}
	d.waitOutput(t, "printed receipt 3")
	d.typeLine(t, ":print nonsense")
	d.waitOutput(t, `no sample "nonsense"`)
	d.typeLine(t, ":bogus")
	d.waitOutput(t, "unknown command :bogus")
	// The queue counts a job printed once the printer confirmed it, a
	// moment after the paper came out: ask until it has.
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(d.out.String(), "3 printed") {
		if time.Now().After(deadline) {
			t.Fatal("the queue never reported 3 printed")
		}
		d.typeLine(t, ":status")
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDevsimFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, ""},
		{[]string{"--scanner-suffix", "etx"}, "unknown scanner suffix"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--columns", "0"}, "--columns"},
	} {
		var out syncBuffer
		m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}
		err := m.Run(context.Background(), append(c.args, "--dir", t.TempDir()))
		if c.want == "" {
			if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), ":paper-out") {
				t.Errorf("--help: %v\n%s", err, out.String())
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}
