// Command demodata generates a seeded demo region database (see package
// retail/demodata), or summarises an existing one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/endcap/endcap/retail"
	"github.com/endcap/endcap/retail/demodata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "demodata: %v\nRun 'demodata --help' for usage.\n", err)
		os.Exit(2)
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "demodata: interrupted; the partial file was removed")
		os.Exit(130)
	default:
		fmt.Fprintf(os.Stderr, "demodata: %v\n", err)
		os.Exit(1)
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

const usageText = `Usage: demodata --out PATH [flags]
       demodata --summary --out PATH

demodata generates a demo region: stores and a distribution centre with
their clerks, a catalogue, promotions, and customers with two years of
history in every channel (till sales, web, phone and kiosk orders, coupons
and offers, returns, service contacts, visits, wish lists, abandoned carts).
Every row is written through the same mutations live data uses. The same
flags always make the same database (compare the checksum --summary prints).

Every demo clerk's PIN is 1234 (clerk-S01-01 is the manager of store S01).

Generating a million customers takes about a quarter of an hour; large
regions get a lighter history by default (see --orders-per-customer).

Examples:
  demodata --out var/demo/region.db
  demodata --out /tmp/big.db --customers 1000000 --seed 7
  demodata --out var/demo/region.db --customers 500 --stores 3 --force
  demodata --out /tmp/5m.db --customers 1000000 --orders-per-customer 5 --cache-mib 8192
      (5.6M orders, 7 GiB, about 50 minutes; needs about 16 GiB of memory)
  demodata --summary --out var/demo/region.db

Flags:
`

type options struct {
	out     string
	summary bool
	force   bool
	cfg     demodata.Config
}

// run does the work of main: it parses args, then generates or summarises.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fl := flag.NewFlagSet("demodata", flag.ContinueOnError)
	fl.SetOutput(io.Discard) // main prints the error; --help prints the usage below
	fl.StringVar(&o.out, "out", "", "the database file to write (or, with --summary, to read); required")
	fl.IntVar(&o.cfg.Customers, "customers", 2000, "number of customers")
	fl.IntVar(&o.cfg.Stores, "stores", 5, "number of stores, besides the one distribution centre")
	fl.IntVar(&o.cfg.Products, "products", 200, "number of products in the catalogue")
	fl.Int64Var(&o.cfg.Seed, "seed", 1, "seed: the same seed and sizes make the same database")
	fl.Float64Var(&o.cfg.OrdersPerCustomer, "orders-per-customer", 0,
		"mean orders per customer; 0 means 5, or 1,000,000/customers above 200,000 customers")
	fl.IntVar(&o.cfg.CacheMiB, "cache-mib", 256, "SQLite page cache while generating, in MiB; give a 5M-order region 8192")
	fl.BoolVar(&o.summary, "summary", false, "only summarise the existing --out file: row counts, size, schema version, checksum")
	fl.BoolVar(&o.force, "force", false, "overwrite --out if it exists")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fl, stdout)
			return nil
		}
		return usageError{err}
	}
	switch {
	case fl.NArg() > 0:
		return usagef("unexpected argument %q", fl.Arg(0))
	case o.out == "":
		return usagef("--out is required")
	case o.summary:
		return summarize(ctx, o.out, stdout)
	case o.cfg.Customers < 1:
		return usagef("--customers must be at least 1")
	case o.cfg.Stores < 1:
		return usagef("--stores must be at least 1")
	case o.cfg.Products < 1:
		return usagef("--products must be at least 1")
	case o.cfg.CacheMiB < 1:
		return usagef("--cache-mib must be at least 1")
	case o.cfg.OrdersPerCustomer < 0:
		return usagef("--orders-per-customer must not be negative")
	}
	return generate(ctx, o, stdout, stderr)
}

func printUsage(fl *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, usageText)
	fl.SetOutput(w)
	fl.PrintDefaults()
}

func generate(ctx context.Context, o options, stdout, stderr io.Writer) error {
	switch _, err := os.Stat(o.out); {
	case err == nil && !o.force:
		return fmt.Errorf("%s already exists; pass --force to overwrite it", o.out)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	// Generate beside the target and rename at the end, so an interrupted
	// run never leaves a file that looks like a finished region.
	tmp := o.out + ".partial"
	if err := removeDB(tmp); err != nil {
		return err
	}
	// The demo file can be made again from its seed at any time, so it need
	// not survive a power cut: DurabilityNormal skips the fsync at every
	// commit, which would otherwise dominate the run.
	db, err := retail.Open(ctx, tmp, retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		return err
	}
	start := time.Now()
	p := newProgress(stderr, isTerminal(stderr), start)
	cfg := o.cfg
	cfg.OnCommit = p.mutations
	fmt.Fprintf(stderr, "demodata: generating %d customers, %d stores, %d products (seed %d) into %s\n",
		cfg.Customers, cfg.Stores, cfg.Products, cfg.Seed, o.out)
	stats, err := demodata.Generate(ctx, db, cfg, p.customers)
	p.finish()
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		removeDB(tmp)
		return err
	}
	elapsed := time.Since(start)
	if err := removeDB(o.out); err != nil { // --force
		return err
	}
	if err := os.Rename(tmp, o.out); err != nil {
		return err
	}
	size, err := fileSize(o.out)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, t := range stats.Tables {
		fmt.Fprintf(tw, "%s\t%d\t\n", t.Table, t.Rows)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "demodata: %d mutations: %d accepted, %d rejected (%s), %d flagged with %d exceptions (%s)\n",
		stats.Mutations, stats.Accepted, stats.Rejected, counts(stats.Rejections), stats.Flagged, stats.Exceptions, counts(stats.ExceptionKinds))
	if stats.Unexpected > 0 {
		fmt.Fprintf(stdout, "demodata: warning: %d results the generator did not expect; first: %s\n", stats.Unexpected, stats.FirstUnexpected)
	}
	fmt.Fprintf(stdout, "demodata: wrote %s (%s) in %s: %d customers, %.0f mutations/s\n",
		o.out, humanBytes(size), elapsed.Round(time.Second/10), stats.Customers, float64(stats.Mutations)/elapsed.Seconds())
	return nil
}

// summarize prints what an existing file holds.
func summarize(ctx context.Context, path string, stdout io.Writer) error {
	size, err := fileSize(path)
	if err != nil {
		return err
	}
	db, err := retail.Open(ctx, path, retail.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	version, err := db.UserVersion(ctx)
	if err != nil {
		return err
	}
	tables, err := demodata.CountRows(ctx, db)
	if err != nil {
		return err
	}
	sum, err := retail.Checksum(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s, schema version %d (this program writes %d)\n", path, humanBytes(size), version, retail.SchemaVersion())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, t := range tables {
		fmt.Fprintf(tw, "%s\t%d\t\n", t.Table, t.Rows)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "checksum %s\n", sum)
	return nil
}

// counts formats a count per name as "a 1, b 2", by name.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// removeDB removes a SQLite file and its WAL and shared-memory files.
func removeDB(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress reports generation on stderr: a bar redrawn in place on a
// terminal, otherwise a line every 5%.
type progress struct {
	w          io.Writer
	tty        bool
	start      time.Time
	now        func() time.Time
	done       int
	total      int
	muts       int
	lastDraw   time.Time
	nextPct    int
	drewOnLine bool
}

func newProgress(w io.Writer, tty bool, start time.Time) *progress {
	return &progress{w: w, tty: tty, start: start, now: time.Now, nextPct: 5}
}

func (p *progress) mutations(n int) { p.muts = n }

func (p *progress) customers(done, total int) {
	p.done, p.total = done, total
	if total == 0 {
		return
	}
	if p.tty {
		if done%16 != 0 && done != total {
			return
		}
		if now := p.now(); now.Sub(p.lastDraw) >= 200*time.Millisecond || done == total {
			p.lastDraw = now
			p.draw(now)
		}
		return
	}
	if pct := done * 100 / total; pct >= p.nextPct {
		for p.nextPct <= pct {
			p.nextPct += 5
		}
		fmt.Fprintln(p.w, p.line(p.now()))
	}
}

func (p *progress) line(now time.Time) string {
	elapsed := now.Sub(p.start)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(p.muts) / s
	}
	eta := "?"
	if p.done > 0 {
		eta = (time.Duration(float64(elapsed) * float64(p.total-p.done) / float64(p.done))).Round(time.Second).String()
	}
	return fmt.Sprintf("demodata: %d%% %d/%d customers, %.0f mutations/s, ETA %s", p.done*100/p.total, p.done, p.total, rate, eta)
}

func (p *progress) draw(now time.Time) {
	const width = 30
	filled := p.done * width / p.total
	bar := strings.Repeat("#", filled) + strings.Repeat("-", width-filled)
	fmt.Fprintf(p.w, "\r[%s] %s\x1b[K", bar, strings.TrimPrefix(p.line(now), "demodata: "))
	p.drewOnLine = true
}

func (p *progress) finish() {
	if p.drewOnLine {
		fmt.Fprintln(p.w)
	}
}
