package devices_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/endcap/endcap/devices"
	"github.com/endcap/endcap/devices/sim"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// printRig is a virtual printer on a pty behind a link and an Endcap
// Printer (durable queue in a temp dir) driving it through tarm/serial.
type printRig struct {
	sim     *sim.Printer
	printer *devices.Printer
	path    string
	qdir    string
	stop    func()
}

func startPrintRig(tb testing.TB, tweak func(*devices.PrinterConfig)) *printRig {
	tb.Helper()
	dir := tb.TempDir()
	path := filepath.Join(dir, "ttyS0")
	vp, err := sim.NewPrinter(sim.PrinterOptions{Link: path})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { vp.Close() })
	rig := &printRig{sim: vp, path: path, qdir: filepath.Join(dir, "queue")}
	rig.printer = rig.run(tb, tweak)
	return rig
}

// run starts an Endcap Printer on the rig's port and queue; stop (also
// run at cleanup) ends it.
func (r *printRig) run(tb testing.TB, tweak func(*devices.PrinterConfig)) *devices.Printer {
	tb.Helper()
	cfg := devices.PrinterConfig{
		Serial:        devices.SerialConfig{Path: r.path, Baud: 19200},
		QueueDir:      r.qdir,
		RetryInterval: 100 * time.Millisecond,
		MinBackoff:    20 * time.Millisecond,
		MaxBackoff:    200 * time.Millisecond,
		Driver:        devices.DriverConfig{StatusTimeout: 5 * time.Second, PollInterval: 100 * time.Millisecond},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := devices.NewPrinter(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.Run(ctx)
	}()
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	tb.Cleanup(r.stop)
	return p
}

// enqueue returns a function that queues a template's job:
// rig.enqueue(t)(fixtureSale().Job(layout)).
func (r *printRig) enqueue(tb testing.TB) func(devices.Job, error) devices.Job {
	return func(j devices.Job, err error) devices.Job {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		if err := r.printer.Enqueue(context.Background(), j); err != nil {
			tb.Fatal(err)
		}
		return j
	}
}

// complete returns the receipts printed whole.
func (r *printRig) complete() []*sim.Receipt {
	var out []*sim.Receipt
	for _, rc := range r.sim.Receipts() {
		if rc.Complete() {
			out = append(out, rc)
		}
	}
	return out
}

func (r *printRig) queued(tb testing.TB) []devices.Job {
	tb.Helper()
	jobs, err := r.printer.List()
	if err != nil {
		tb.Fatal(err)
	}
	return jobs
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(tb testing.TB, name, got string) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test ./devices/ -run %s -update to create it)", err, tb.Name())
	}
	if got != string(want) {
		tb.Errorf("%s differs from the golden file (run with -update if the change is meant):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func receiptsText(rs []*sim.Receipt) string {
	var sb strings.Builder
	for _, r := range rs {
		sb.WriteString(r.Text(48))
	}
	return sb.String()
}

type template struct {
	name string
	job  func() (devices.Job, error)
	n    int // receipts (cuts) it prints
}

var templates = []template{
	{"sale", func() (devices.Job, error) { return fixtureSale().Job(devices.Layout{}) }, 1},
	{"return", func() (devices.Job, error) { return fixtureReturn().Job(devices.Layout{}) }, 1},
	{"order-ship-to-home", func() (devices.Job, error) { return fixtureOrder(devices.ShipToHome).Job(devices.Layout{}) }, 1},
	{"order-store-pickup", func() (devices.Job, error) { return fixtureOrder(devices.StorePickup).Job(devices.Layout{}) }, 1},
	{"coupons", func() (devices.Job, error) { return devices.CouponsJob(devices.Layout{}, "V-88", fixtureCoupons()) }, 2},
	{"sale-58mm-pc437", func() (devices.Job, error) {
		s := fixtureSale()
		s.OrderID = "S7-000124"
		return s.Job(devices.Layout{Columns: 32, PC437: true})
	}, 1},
}

// TestTemplatesGolden prints every template through the pty to the
// virtual printer and compares its decoding with testdata/*.golden. The
// same bytes decoded straight (no pty) must read the same.
func TestTemplatesGolden(t *testing.T) {
	rig := startPrintRig(t, nil)
	printed := 0
	for _, tp := range templates {
		job := rig.enqueue(t)(tp.job())
		printed += tp.n
		poll(t, tp.name+" printed", func() bool { return len(rig.complete()) >= printed && len(rig.queued(t)) == 0 })
		got := rig.complete()[printed-tp.n : printed]
		cols := 48
		if strings.Contains(tp.name, "58mm") {
			cols = 32
		}
		var text strings.Builder
		for _, r := range got {
			text.WriteString(r.Text(cols))
		}
		checkGolden(t, tp.name+".golden", text.String())

		m := sim.NewMachine(48)
		m.Write(job.Data)
		if direct := receiptsText(m.Receipts()); cols == 48 && direct != text.String() {
			t.Errorf("%s: decoded straight differs from through the pty", tp.name)
		}
		if len(m.Unknown) > 0 {
			t.Errorf("%s: commands the printer does not know: %v", tp.name, m.Unknown)
		}
		for _, r := range got {
			var buf bytes.Buffer
			if err := r.WritePNG(&buf, cols); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&buf)
			if err != nil || img.Bounds().Dx() != cols*12+32 || img.Bounds().Dy() < 200 {
				t.Errorf("%s: PNG %v %v", tp.name, img.Bounds(), err)
			}
		}
	}
	if u := rig.sim.Unknown(); len(u) > 0 {
		t.Errorf("unknown commands: %v", u)
	}
	if st := rig.printer.State(); st.Err != nil || st.Printed != len(templates) || !st.Connected {
		t.Errorf("state after printing: %+v", st)
	}
}

// TestPaperOutDuringJob: the roll runs out mid-receipt. The job fails with
// ErrPaperOut and stays queued; when paper is loaded it prints, whole,
// exactly once.
func TestPaperOutDuringJob(t *testing.T) {
	rig := startPrintRig(t, nil)
	rig.sim.PaperOutAfter(8)
	job := rig.enqueue(t)(fixtureSale().Job(devices.Layout{}))

	poll(t, "paper out reported", func() bool { return errors.Is(rig.printer.State().Err, devices.ErrPaperOut) })
	jobs := rig.queued(t)
	if len(jobs) != 1 || jobs[0].ID != job.ID || jobs[0].Attempts < 1 || !strings.Contains(jobs[0].LastError, "out of paper") {
		t.Fatalf("queue after paper out: %+v", jobs)
	}
	var se *devices.StatusError
	if !errors.As(rig.printer.State().Err, &se) || !se.Status.PaperOut {
		t.Fatalf("state error %v is not a status error with paper out", rig.printer.State().Err)
	}
	rs := rig.sim.Receipts()
	if len(rs) != 1 || rs[0].End != sim.EndTorn || len(rs[0].Items) != 8 {
		t.Fatalf("paper: %v", rs)
	}
	// Retries while the paper is out send nothing.
	before := rig.sim.Received()
	poll(t, "two more attempts", func() bool { j := rig.queued(t); return len(j) == 1 && j[0].Attempts >= jobs[0].Attempts+2 })
	if got := rig.sim.Received() - before; got > 64 {
		t.Errorf("%d bytes sent while the paper was out (only status requests expected)", got)
	}

	rig.sim.SetPaperOut(false)
	poll(t, "the job printed", func() bool { return len(rig.queued(t)) == 0 && len(rig.complete()) == 1 })
	want := fixtureText(t, job)
	if got := rig.complete()[0].Text(48); got != want {
		t.Errorf("reprinted receipt differs:\n%s\nwant\n%s", got, want)
	}
	rig.printer.Kick()
	poll(t, "state ready", func() bool { st := rig.printer.State(); return st.Err == nil && st.Printed == 1 })
	if n := len(rig.complete()); n != 1 {
		t.Errorf("%d complete receipts, want exactly 1", n)
	}
	if err := rig.printer.Enqueue(context.Background(), job); !errors.Is(err, devices.ErrAlreadyPrinted) {
		t.Errorf("enqueue again: %v, want ErrAlreadyPrinted", err)
	}
}

// fixtureText is how the virtual printer reads a job's bytes.
func fixtureText(tb testing.TB, j devices.Job) string {
	tb.Helper()
	m := sim.NewMachine(48)
	m.Write(j.Data)
	rs := m.Receipts()
	if len(rs) != 1 {
		tb.Fatalf("job %s decodes to %d receipts", j.ID, len(rs))
	}
	return rs[0].Text(48)
}

// TestPrinterBlocked: a printer that cannot print (paper out, cover open,
// offline, unplugged) keeps jobs queued, in order, with the matching
// error, and prints them once it is ready.
func TestPrinterBlocked(t *testing.T) {
	cases := []struct {
		name    string
		block   func(*sim.Printer)
		unblock func(*sim.Printer)
		want    error
	}{
		{"paper out", func(p *sim.Printer) { p.SetPaperOut(true) }, func(p *sim.Printer) { p.SetPaperOut(false) }, devices.ErrPaperOut},
		{"cover open", func(p *sim.Printer) { p.SetCoverOpen(true) }, func(p *sim.Printer) { p.SetCoverOpen(false) }, devices.ErrCoverOpen},
		{"offline", func(p *sim.Printer) { p.SetOffline(true) }, func(p *sim.Printer) { p.SetOffline(false) }, devices.ErrOffline},
		{"unplugged", func(p *sim.Printer) {
			if err := p.Unplug(); err != nil {
				panic(err)
			}
		}, func(p *sim.Printer) {
			if err := p.Replug(); err != nil {
				panic(err)
			}
		}, devices.ErrDisconnected},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rig := startPrintRig(t, nil)
			c.block(rig.sim)
			sale := rig.enqueue(t)(fixtureSale().Job(devices.Layout{}))
			coupons := rig.enqueue(t)(devices.CouponsJob(devices.Layout{}, "V-88", fixtureCoupons()))
			poll(t, c.name+" reported", func() bool { return errors.Is(rig.printer.State().Err, c.want) })
			for _, other := range []error{devices.ErrPaperOut, devices.ErrCoverOpen, devices.ErrOffline, devices.ErrDisconnected} {
				if other != c.want && errors.Is(rig.printer.State().Err, other) {
					t.Errorf("state error %v is also %v", rig.printer.State().Err, other)
				}
			}
			jobs := rig.queued(t)
			if len(jobs) != 2 || jobs[0].ID != sale.ID || jobs[1].ID != coupons.ID {
				t.Fatalf("queue: %+v", jobs)
			}
			if st := rig.printer.State(); st.Queued != 2 {
				t.Errorf("state queued %d", st.Queued)
			}
			if n := len(rig.sim.Receipts()); n != 0 {
				t.Fatalf("%d receipts printed while blocked", n)
			}
			c.unblock(rig.sim)
			poll(t, "queue printed", func() bool { return len(rig.queued(t)) == 0 && len(rig.complete()) == 3 })
			rs := rig.sim.Receipts()
			if len(rs) != 3 || rs[0].Text(48) != fixtureText(t, sale) {
				t.Errorf("printed out of order or not whole: %v", rs)
			}
			poll(t, "state ready", func() bool { st := rig.printer.State(); return st.Err == nil && st.Connected && st.Queued == 0 })
		})
	}
}

// TestPaperNearEnd: near end is a warning; jobs print.
func TestPaperNearEnd(t *testing.T) {
	rig := startPrintRig(t, nil)
	rig.sim.SetPaperNearEnd(true)
	rig.enqueue(t)(fixtureReturn().Job(devices.Layout{}))
	poll(t, "printed", func() bool { return len(rig.complete()) == 1 && len(rig.queued(t)) == 0 })
	poll(t, "warning", func() bool { return errors.Is(rig.printer.State().Warning, devices.ErrPaperNearEnd) })
	if st := rig.printer.State(); st.Err != nil || !st.Status.PaperNearEnd {
		t.Errorf("state %+v", st)
	}
}

// TestPrinterNoResponse: a port where nothing answers (wrong device, or
// a printer switched off) gives ErrNoResponse, and the job waits.
func TestPrinterNoResponse(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ttyS9")
	dev, err := sim.NewDevice(path) // a pty nobody answers on
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	rig := &printRig{path: path, qdir: filepath.Join(dir, "queue")}
	rig.printer = rig.run(t, func(c *devices.PrinterConfig) { c.Driver.StatusTimeout = 300 * time.Millisecond })
	rig.enqueue(t)(fixtureSale().Job(devices.Layout{}))
	poll(t, "no response", func() bool { return errors.Is(rig.printer.State().Err, devices.ErrNoResponse) })
	if n := len(rig.queued(t)); n != 1 {
		t.Errorf("%d jobs queued, want 1", n)
	}
}

// TestQueueSurvivesRestart: jobs queued while the printer is out survive
// a restart of the program, in order, and print once.
func TestQueueSurvivesRestart(t *testing.T) {
	rig := startPrintRig(t, nil)
	rig.sim.SetCoverOpen(true)
	a := rig.enqueue(t)(fixtureSale().Job(devices.Layout{}))
	b := rig.enqueue(t)(fixtureReturn().Job(devices.Layout{}))
	poll(t, "cover open", func() bool { return errors.Is(rig.printer.State().Err, devices.ErrCoverOpen) })
	rig.stop()

	rig.sim.SetCoverOpen(false)
	p2 := rig.run(t, nil)
	poll(t, "printed after restart", func() bool { j, _ := p2.List(); return len(j) == 0 && len(rig.complete()) == 2 })
	rs := rig.complete()
	if rs[0].Text(48) != fixtureText(t, a) || rs[1].Text(48) != fixtureText(t, b) {
		t.Error("receipts after restart differ or are out of order")
	}
}

// An id too long for a Code128 barcode on the paper (a UUID at the
// narrowest module would run off an 80 mm roll) prints as a QR code.
func TestBarcodeFitsThePaper(t *testing.T) {
	for _, tc := range []struct {
		id     string
		symbol []byte
	}{
		{"S7-000123", []byte{0x1d, 'k', 73}},                             // GS k 73: Code128
		{"0196a3f2-7c1e-7d3a-9b2f-5e8c1d2a4b6f", []byte{0x1d, '(', 'k'}}, // GS ( k: QR
	} {
		b, err := devices.SaleReceipt{OrderID: tc.id, Items: []devices.Item{{SKU: "A", Description: "a", UnitPrice: 100}}, Total: 100}.ESCPOS(devices.Layout{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, tc.symbol) {
			t.Errorf("order id %s: not printed as % x", tc.id, tc.symbol)
		}
	}
}
