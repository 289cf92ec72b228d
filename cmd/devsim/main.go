// Command devsim runs virtual store hardware on pseudo-terminals: a serial
// barcode scanner and an ESC/POS receipt printer. It prints their paths
// (and links them as DIR/scanner and DIR/printer), so Endcap's apps, or
// `make run`, open them exactly like /dev/ttyUSB0 and /dev/ttyS0.
//
//	devsim --dir var/devsim
//
// Type a code and Enter to scan it; lines starting with ':' are commands
// (:help lists them: garbage, unplug, paper out, cover open, ...). Every
// receipt the printer prints is decoded into DIR/receipts/NNNN.txt and
// NNNN.png. With --demo devsim also plays the app: it reads its own
// scanner and prints through an Endcap print queue (DIR/queue). See
// docs/devices.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/endcap/endcap/devices"
	"github.com/endcap/endcap/devices/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if err := m.Run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "devsim:", err)
		os.Exit(1)
	}
}

// Main is the devsim program: Run does the work, so tests run the real
// thing with their own input and output.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	out     *lockedWriter
	dir     string
	columns int
	scanner *sim.Scanner
	printer *sim.Printer
	// With --demo: the app side.
	queue *devices.Printer
	// queueDir is the queue :queue shows.
	queueDir string
}

type options struct {
	scanner, printer bool
	dir              string
	suffix           string
	prefix           string
	aim              bool
	columns          int
	replay           string
	interval         time.Duration
	demo             bool
	queue            string
}

func (m *Main) flags(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("devsim", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.BoolVar(&o.scanner, "scanner", false, "run a virtual barcode scanner (DIR/scanner)")
	fs.BoolVar(&o.printer, "printer", false, "run a virtual receipt printer (DIR/printer); with neither flag, both run")
	fs.StringVar(&o.dir, "dir", "var/devsim", "directory for the device links and DIR/receipts")
	fs.StringVar(&o.suffix, "scanner-suffix", "cr", "what the scanner sends after each code: cr, lf, crlf, tab or none")
	fs.StringVar(&o.prefix, "scanner-prefix", "", `what the scanner sends before each code (Go escapes allowed, e.g. "\x02")`)
	fs.BoolVar(&o.aim, "scanner-aim", false, "the scanner sends AIM symbology identifiers (]E0, ]C0, ]Q1 ...)")
	fs.IntVar(&o.columns, "columns", 48, "printer paper width in Font A columns: 48 (80 mm) or 32 (58 mm)")
	fs.StringVar(&o.replay, "replay", "", "scan the codes in this file (one a line) at start")
	fs.DurationVar(&o.interval, "replay-interval", 500*time.Millisecond, "pause between replayed codes")
	fs.BoolVar(&o.demo, "demo", false, "also play the app: read the scanner and print its events, print through an Endcap print queue in DIR/queue (:print). Point nothing else at the devices then")
	fs.StringVar(&o.queue, "queue", "", "print queue directory :queue shows (default DIR/queue); point it at the edge's queue to watch it")
	fs.Usage = func() {
		fmt.Fprint(m.Stderr, `Usage: devsim [flags]

Runs a virtual serial barcode scanner and a virtual ESC/POS receipt printer
on pseudo-terminals, linked as DIR/scanner and DIR/printer. Point Endcap at
those paths as at /dev/ttyUSB0 and /dev/ttyS0 (docs/devices.md).

Type a code and Enter to scan it. Commands (also :help):
`)
		fmt.Fprint(m.Stderr, helpText)
		fmt.Fprint(m.Stderr, "\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

const helpText = `  CODE                  scan CODE (e.g. 4006381333931, LC1234567897, CPN-MFRGGZDF)
  :scan AIM CODE        scan CODE with that AIM identifier (]E0, ]C0, ]Q1 ...)
  :garbage [N]          send N bytes of line noise (default 16) and the suffix
  :partial TEXT         send TEXT without the suffix (a frame cut short)
  :replay FILE          scan the codes in FILE, one a line
  :unplug DEV           pull the scanner or printer (DEV: scanner, printer)
  :replug DEV           plug it back in, behind the same path
  :paper-out            empty the roll          :paper-in       load a new roll
  :paper-near-end       roll nearly empty       :paper-ok       clear near-end
  :paper-after N        the roll runs out after N more printed lines
  :cover-open           open the cover          :cover-close    shut it
  :offline              take the printer offline :online         back online
  :status               device state and what DLE EOT would answer
  :receipts             list the receipts printed
  :queue                list the print queue (the --queue directory)
  :print KIND           with --demo: queue a sample receipt (sale, return,
                        order, pickup, coupons)
  :help                 this list
  :quit                 stop (so do Ctrl-C and the end of input)
`

// Run runs devsim until ctx is done or its input ends.
func (m *Main) Run(ctx context.Context, args []string) error {
	var o options
	fs := m.flags(&o)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}
	if !o.scanner && !o.printer {
		o.scanner, o.printer = true, true
	}
	suffix, err := devices.ParseSuffix(o.suffix)
	if err != nil {
		return err
	}
	prefix, err := strconv.Unquote(`"` + o.prefix + `"`)
	if err != nil {
		return fmt.Errorf("--scanner-prefix %q: %w", o.prefix, err)
	}
	if o.columns <= 0 {
		return fmt.Errorf("--columns %d", o.columns)
	}
	m.out = &lockedWriter{w: m.Stdout}
	m.dir, m.columns = o.dir, o.columns
	m.queueDir = o.queue
	if m.queueDir == "" {
		m.queueDir = filepath.Join(o.dir, "queue")
	}
	if err := os.MkdirAll(filepath.Join(o.dir, "receipts"), 0o755); err != nil {
		return err
	}
	framing := devices.Framing{Prefix: prefix, Suffix: suffix, AIM: o.aim}

	if o.scanner {
		m.scanner, err = sim.NewScanner(sim.ScannerOptions{Link: filepath.Join(o.dir, "scanner"), Framing: framing})
		if err != nil {
			return err
		}
		defer m.scanner.Close()
		m.printf("scanner  %s -> %s  (suffix %s, prefix %q, AIM %v)\n", m.scanner.Path(), m.scanner.TTY(), suffix, prefix, o.aim)
	}
	if o.printer {
		m.printer, err = sim.NewPrinter(sim.PrinterOptions{
			Link:      filepath.Join(o.dir, "printer"),
			Columns:   o.columns,
			OnReceipt: m.saveReceipt,
		})
		if err != nil {
			return err
		}
		defer m.printer.Close()
		m.printf("printer  %s -> %s  (%d columns; receipts in %s)\n", m.printer.Path(), m.printer.TTY(), o.columns, filepath.Join(o.dir, "receipts"))
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	if o.demo {
		if err := m.startDemo(ctx, &wg, framing); err != nil {
			return err
		}
	}
	if o.replay != "" && m.scanner != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.replay(ctx, o.replay, o.interval)
		}()
	}
	m.printf("type a code and Enter to scan it; :help for commands\n")

	lines := make(chan string)
	go func() { // ends with the input; not waited for (stdin may never close)
		defer close(lines)
		sc := bufio.NewScanner(m.Stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if quit := m.command(ctx, &wg, strings.TrimSpace(line), o.interval); quit {
				return nil
			}
		}
	}
}

// startDemo plays the app: an Endcap Scanner on the virtual scanner,
// printing its events, and an Endcap Printer on the virtual printer.
func (m *Main) startDemo(ctx context.Context, wg *sync.WaitGroup, framing devices.Framing) error {
	log := slog.New(slog.NewTextHandler(m.out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if m.scanner != nil {
		sc, err := devices.NewScanner(devices.ScannerConfig{
			Serial:  devices.SerialConfig{Path: m.scanner.Path()},
			Framing: framing,
		})
		if err != nil {
			return err
		}
		events := make(chan devices.Event, 16)
		wg.Add(2)
		go func() {
			defer wg.Done()
			sc.Run(ctx, events)
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-events:
					m.printEvent(ev)
				}
			}
		}()
	}
	if m.printer != nil {
		p, err := devices.NewPrinter(devices.PrinterConfig{
			Serial:        devices.SerialConfig{Path: m.printer.Path(), Baud: 19200},
			QueueDir:      m.queueDir,
			RetryInterval: time.Second,
			Logger:        log,
		})
		if err != nil {
			return err
		}
		m.queue = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Run(ctx)
		}()
	}
	m.printf("demo: devsim reads its scanner and prints through the queue in %s\n", m.queueDir)
	return nil
}

func (m *Main) printEvent(ev devices.Event) {
	switch ev.Type {
	case devices.EventScan:
		sym := ""
		if ev.Symbology != devices.SymUnknown {
			sym = " (" + string(ev.Symbology) + ")"
		}
		m.printf("app: scan %s %s%s\n", ev.Kind, ev.Code, sym)
	case devices.EventError:
		m.printf("app: scan error: %v (raw %q)\n", ev.Err, ev.Raw)
	case devices.EventConnected:
		m.printf("app: scanner connected\n")
	case devices.EventDisconnected:
		m.printf("app: scanner disconnected: %v\n", ev.Err)
	}
}

func (m *Main) printf(format string, args ...any) { fmt.Fprintf(m.out, "devsim: "+format, args...) }

// saveReceipt writes a receipt that left the printer as PNG and text,
// each whole (temp file, rename), the text last.
func (m *Main) saveReceipt(r *sim.Receipt) {
	name := fmt.Sprintf("%04d", r.Seq)
	if !r.Complete() {
		name += "-torn"
	}
	base := filepath.Join(m.dir, "receipts", name)
	var png bytes.Buffer
	err := r.WritePNG(&png, m.columns)
	if err == nil {
		err = writeFile(base+".png", png.Bytes())
	}
	if err == nil {
		err = writeFile(base+".txt", []byte(r.Text(m.columns)))
	}
	if err != nil {
		m.printf("receipt %d: %v\n", r.Seq, err)
		return
	}
	m.printf("printed receipt %d (%s, %d lines): %s.txt, %s.png\n", r.Seq, r.End, len(r.Items), base, base)
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (m *Main) replay(ctx context.Context, path string, interval time.Duration) {
	f, err := os.Open(path)
	if err != nil {
		m.printf("replay: %v\n", err)
		return
	}
	defer f.Close()
	n, err := m.scanner.Replay(ctx, f, interval)
	if err != nil && ctx.Err() == nil {
		m.printf("replay %s: %v after %d codes\n", path, err, n)
		return
	}
	m.printf("replayed %d codes from %s\n", n, path)
}

// command runs one input line; it returns true for :quit.
func (m *Main) command(ctx context.Context, wg *sync.WaitGroup, line string, interval time.Duration) bool {
	if line == "" {
		return false
	}
	if !strings.HasPrefix(line, ":") {
		if m.scanner == nil {
			m.printf("no scanner running\n")
			return false
		}
		m.report("scan", m.scanner.Scan(line))
		return false
	}
	f := strings.Fields(line)
	cmd, args := f[0], f[1:]
	needPrinter := func() bool {
		if m.printer == nil {
			m.printf("no printer running\n")
		}
		return m.printer != nil
	}
	switch cmd {
	case ":quit", ":q", ":exit":
		return true
	case ":help", ":h", ":?":
		fmt.Fprint(m.out, helpText)
	case ":scan":
		if len(args) != 2 || m.scanner == nil {
			m.printf("usage: :scan AIM CODE (with a scanner)\n")
			return false
		}
		m.report("scan", m.scanner.ScanAIM(args[0], args[1]))
	case ":garbage":
		n := 16
		if len(args) > 0 {
			n, _ = strconv.Atoi(args[0])
		}
		if m.scanner == nil || n <= 0 {
			m.printf("usage: :garbage [N] (with a scanner)\n")
			return false
		}
		m.report("garbage", m.scanner.Garbage(n, nil))
	case ":partial":
		if m.scanner == nil || len(args) == 0 {
			m.printf("usage: :partial TEXT (with a scanner)\n")
			return false
		}
		m.report("partial frame", m.scanner.Send([]byte(strings.Join(args, " "))))
	case ":replay":
		if m.scanner == nil || len(args) != 1 {
			m.printf("usage: :replay FILE (with a scanner)\n")
			return false
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.replay(ctx, args[0], interval)
		}()
	case ":unplug", ":replug":
		if len(args) != 1 {
			m.printf("usage: %s scanner|printer\n", cmd)
			return false
		}
		var err error
		switch {
		case args[0] == "scanner" && m.scanner != nil && cmd == ":unplug":
			err = m.scanner.Unplug()
		case args[0] == "scanner" && m.scanner != nil:
			err = m.scanner.Replug()
		case args[0] == "printer" && m.printer != nil && cmd == ":unplug":
			err = m.printer.Unplug()
		case args[0] == "printer" && m.printer != nil:
			err = m.printer.Replug()
		default:
			m.printf("no %s running\n", args[0])
			return false
		}
		m.report(strings.TrimPrefix(cmd, ":")+" "+args[0], err)
	case ":paper-out", ":paper-in", ":paper-near-end", ":paper-ok", ":cover-open", ":cover-close", ":offline", ":online":
		if !needPrinter() {
			return false
		}
		switch cmd {
		case ":paper-out":
			m.printer.SetPaperOut(true)
		case ":paper-in":
			m.printer.SetPaperOut(false)
		case ":paper-near-end":
			m.printer.SetPaperNearEnd(true)
		case ":paper-ok":
			m.printer.SetPaperNearEnd(false)
		case ":cover-open":
			m.printer.SetCoverOpen(true)
		case ":cover-close":
			m.printer.SetCoverOpen(false)
		case ":offline":
			m.printer.SetOffline(true)
		case ":online":
			m.printer.SetOffline(false)
		}
		if m.queue != nil {
			m.queue.Kick()
		}
		m.status()
	case ":paper-after":
		n, err := 0, error(nil)
		if len(args) == 1 {
			n, err = strconv.Atoi(args[0])
		}
		if len(args) != 1 || err != nil || !needPrinter() {
			m.printf("usage: :paper-after N (with a printer)\n")
			return false
		}
		m.printer.PaperOutAfter(n)
		m.printf("the roll runs out after %d more lines\n", n)
	case ":status":
		m.status()
	case ":receipts":
		if !needPrinter() {
			return false
		}
		rs := m.printer.Receipts()
		if len(rs) == 0 {
			m.printf("no receipts printed yet\n")
		}
		for _, r := range rs {
			m.printf("  %s\n", r)
		}
	case ":queue":
		m.showQueue()
	case ":print":
		if m.queue == nil {
			m.printf(":print needs --demo (devsim then prints through its own Endcap print queue)\n")
			return false
		}
		kind := "sale"
		if len(args) > 0 {
			kind = args[0]
		}
		job, err := sampleJob(kind, time.Now())
		if err == nil {
			err = m.queue.Enqueue(ctx, job)
		}
		m.report("queue "+job.ID, err)
		m.showQueue()
	default:
		m.printf("unknown command %s; :help lists them\n", cmd)
	}
	return false
}

func (m *Main) report(what string, err error) {
	if err != nil {
		m.printf("%s: %v\n", what, err)
	}
}

func (m *Main) status() {
	if m.scanner != nil {
		m.printf("scanner: plugged in %v\n", m.scanner.Plugged())
	}
	if m.printer == nil {
		return
	}
	out, near, cover, off := m.printer.State()
	st := m.printer.StatusBytes()
	m.printf("printer: paper out %v, near end %v, cover open %v, offline %v; DLE EOT 1-4 answer % x; %d receipts, %d bytes received\n",
		out, near, cover, off, st[:], len(m.printer.Receipts()), m.printer.Received())
	if m.queue != nil {
		st := m.queue.State()
		m.printf("queue: %d waiting, %d printed; printer %s; error: %v; warning: %v\n", st.Queued, st.Printed, st.Status, st.Err, st.Warning)
	}
}

func (m *Main) showQueue() {
	jobs, err := devices.ListQueue(m.queueDir)
	if err != nil {
		m.printf("queue %s: %v\n", m.queueDir, err)
		return
	}
	m.printf("queue %s: %d jobs\n", m.queueDir, len(jobs))
	for i, j := range jobs {
		last := ""
		if j.Attempts > 0 {
			last = fmt.Sprintf(", %d attempts, last: %s", j.Attempts, j.LastError)
		}
		m.printf("  %d. %s  %q  queued %s%s\n", i+1, j.ID, j.Title, j.Created.Format("15:04:05"), last)
	}
}

// lockedWriter serialises output from the goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
