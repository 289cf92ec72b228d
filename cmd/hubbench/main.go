// Command hubbench is a load generator for the regional hub. It starts
// three real hub processes (--hub-binary, built by `make build`) on free
// 127.0.0.1 ports in a temp dir, forms a cluster (the first node
// bootstraps, the others join through it), runs the scenarios and prints
// their figures as tables on stdout, with progress on stderr:
//
//   - throughput: committed-and-applied 3-line sales/s (retail.RecordSale)
//     from 1, 16 and 64 concurrent writers sending one sale per request,
//     and 16 writers sending 50 per request; optionally for several hub
//     --batch-wait values, each on a fresh cluster;
//   - latency: commit latency percentiles at a steady, open-loop rate
//     (measured from each write's scheduled send time);
//   - snapshot: load N customers, time a snapshot on the leader, the
//     download of the whole database, and a wiped follower's catch-up by
//     snapshot install;
//   - failover: kill -9 the leader, time until a write through a
//     surviving node succeeds; repeated.
//
// Every scenario has a cluster of its own. Every hub process it started
// is killed when it exits, on an error or on SIGINT too (and, on Linux, by
// the kernel if hubbench itself is killed). docs/benchmarks.md has the
// figures.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() { children.Main("hubbench", run) }

// config is the parsed flags.
type config struct {
	binary    string
	only      map[string]bool
	hubArgs   []string
	waits     []string // hub --batch-wait values for the throughput runs; "" is the hub's default
	rows      []row
	duration  time.Duration
	count     int
	warmup    time.Duration
	products  int
	rates     []float64
	latDur    time.Duration
	latConns  int
	customers int
	custBatch int
	loadConns int
	rounds    int
	pprofDir  string
	logDir    string
	dir       string
	timeout   time.Duration
}

// row is one throughput run: writers concurrent writers, each sending
// perReq sales per request.
type row struct{ writers, perReq int }

func (r row) String() string { return fmt.Sprintf("%dx%d", r.writers, r.perReq) }

var scenarios = []string{"throughput", "latency", "snapshot", "failover"}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var only, hubFlags, waits, rows, rates string
	fs.StringVar(&cfg.binary, "hub-binary", "bin/hub", "the hub binary to run (\"make build\" builds bin/hub)")
	fs.StringVar(&only, "only", strings.Join(scenarios, ","), "scenarios to run, comma-separated: "+strings.Join(scenarios, ", "))
	fs.StringVar(&hubFlags, "hub-flags", "", "extra flags for every hub process, space-separated, e.g. \"--batch-max 2000\"")
	fs.StringVar(&waits, "batch-wait", "", "comma-separated hub --batch-wait values to run the throughput rows with, each on a\nfresh cluster (empty: the hub's default); 0 means never wait (passed as -1ns: the hub\nreads 0 as its 2ms default)")
	fs.StringVar(&rows, "rows", "1x1,16x1,64x1,16x50", "throughput rows, comma-separated WRITERSxSALES_PER_REQUEST")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long each throughput row runs")
	fs.IntVar(&cfg.count, "count", 0, "sales each throughput row sends, instead of --duration (0: use --duration)")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured load before each throughput row")
	fs.IntVar(&cfg.products, "products", 100, "products in the region (sale lines pick them in turn)")
	fs.StringVar(&rates, "rate", "2000", "latency: sales per second, one per request, sent on a fixed schedule; a comma-separated\nlist runs each in turn")
	fs.DurationVar(&cfg.latDur, "latency-duration", 10*time.Second, "latency: how long to send at --rate")
	fs.IntVar(&cfg.latConns, "latency-conns", 256, "latency: most requests in flight (the sender goroutines)")
	fs.IntVar(&cfg.customers, "snapshot-customers", 100_000, "snapshot: customers in the region database")
	fs.IntVar(&cfg.custBatch, "customer-batch", 500, "snapshot: customers per request while loading")
	fs.IntVar(&cfg.loadConns, "load-conns", 4, "snapshot: concurrent requests while loading customers")
	fs.IntVar(&cfg.rounds, "failover-rounds", 10, "failover: leader kills")
	fs.StringVar(&cfg.pprofDir, "pprof-dir", "", "run the hubs with --pprof and save CPU profiles of the leader and a follower\nduring each throughput row in this directory (go tool pprof -top bin/hub FILE)")
	fs.StringVar(&cfg.logDir, "hub-logs", "", "append each hub process's stderr to a file in this directory (add --hub-flags --raft-logs\nfor raft's own logs)")
	fs.StringVar(&cfg.dir, "dir", "", "directory for the clusters' temp dirs (default: the system temp dir)")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: hubbench [flags]

Starts three real hub processes (--hub-binary) on free 127.0.0.1 ports in a
temp dir, and measures, each scenario on a cluster of its own:

  throughput  committed-and-applied 3-line sales/s for each --rows entry:
              W writers, each sending S sales per request to the leader
              back to back, for --duration (or --count sales); only
              results with status accepted count. With --batch-wait
              a,b,c the rows run once per hub --batch-wait value.
  latency     p50/p90/p99/max from each sale's scheduled send time to its
              acknowledged result, sending one sale per request at --rate
              on a fixed schedule (open loop) for --latency-duration.
  snapshot    loads --snapshot-customers customers, then times a raft
              snapshot on the leader (POST /v1/snapshot), the download of
              the whole database (GET /v1/snapshot), and a wiped follower's
              catch-up by snapshot install (until its checksum equals the
              leader's). Runs its hubs with --wal-segment-size 1048576
              --trailing-logs 10, so the snapshot compacts the log.
  failover    kill -9 the leader, time until a write through a surviving
              node succeeds; --failover-rounds times, restarting the
              killed node and letting it catch up in between.

Figures go to stdout, progress to stderr. Every hub process started is
killed on exit, on errors and on SIGINT too. See docs/benchmarks.md.

examples:
  make build && bin/hubbench                       # everything, about 2.5 minutes
  bin/hubbench --only throughput --batch-wait 0,1ms,2ms,5ms
  bin/hubbench --only latency --rate 250,500,1000,2000
  bin/hubbench --only snapshot --snapshot-customers 1000000   # 6 to 10 minutes
  bin/hubbench --only throughput --rows 64x1,16x50 --pprof-dir prof

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}
	cfg.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(scenarios, s) {
			return fmt.Errorf("--only: unknown scenario %q (want %s)", s, strings.Join(scenarios, ", "))
		}
		cfg.only[s] = true
	}
	cfg.hubArgs = strings.Fields(hubFlags)
	if waits == "" {
		cfg.waits = []string{""}
	}
	for _, w := range strings.Split(waits, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		if w == "0" {
			w = "0s"
		}
		if _, err := time.ParseDuration(w); err != nil {
			return fmt.Errorf("--batch-wait %q: %w", w, err)
		}
		cfg.waits = append(cfg.waits, w)
	}
	for _, s := range strings.Split(rows, ",") {
		ws, ps, ok := strings.Cut(strings.TrimSpace(s), "x")
		w, err1 := strconv.Atoi(ws)
		p, err2 := strconv.Atoi(ps)
		if !ok || err1 != nil || err2 != nil || w < 1 || p < 1 {
			return fmt.Errorf("--rows: %q is not WRITERSxSALES_PER_REQUEST, e.g. 16x1", s)
		}
		cfg.rows = append(cfg.rows, row{w, p})
	}
	for _, s := range strings.Split(rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("--rate: %q is not a positive number", s)
		}
		cfg.rates = append(cfg.rates, r)
	}
	switch {
	case cfg.products < 3:
		return errors.New("--products: at least 3")
	case cfg.latConns < 1:
		return errors.New("--latency-conns must be positive")
	case cfg.customers < 1 || cfg.custBatch < 1 || cfg.loadConns < 1:
		return errors.New("--snapshot-customers, --customer-batch and --load-conns must be positive")
	case cfg.rounds < 1:
		return errors.New("--failover-rounds: at least 1")
	}
	if _, err := os.Stat(cfg.binary); err != nil {
		return fmt.Errorf("hub binary %s: %w; run `make build` (or pass --hub-binary)", cfg.binary, err)
	}
	for _, d := range []string{cfg.pprofDir, cfg.logDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
	}

	b := &bench{cfg: cfg, out: stdout, errw: stderr, hc: &http.Client{Transport: &http.Transport{
		// One connection per writer, kept alive: the edge pattern.
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}}}
	b.header()
	for _, s := range scenarios {
		if !cfg.only[s] {
			continue
		}
		var err error
		switch s {
		case "throughput":
			err = b.throughput(ctx)
		case "latency":
			err = b.latency(ctx)
		case "snapshot":
			err = b.snapshot(ctx)
		case "failover":
			err = b.failover(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: interrupted", s)
			}
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// bench runs the scenarios.
type bench struct {
	cfg  config
	out  io.Writer
	errw io.Writer
	hc   *http.Client
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.errw, "hubbench: "+format+"\n", args...)
}

// header prints the machine and the run's settings.
func (b *bench) header() {
	fmt.Fprintf(b.out, "# hubbench: %s, %d CPUs (%s), GOMAXPROCS %d, %s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH,
		runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(b.out, "# hub binary %s, extra hub flags %q; all 3 hub processes and hubbench share this machine\n", b.cfg.binary, strings.Join(b.cfg.hubArgs, " "))
}

// cluster starts a cluster for a scenario, with the extra hub flags.
func (b *bench) cluster(ctx context.Context, name string, extra ...string) (*cluster, error) {
	args := append(slices.Clone(b.cfg.hubArgs), extra...)
	return startCluster(ctx, clusterOptions{binary: b.cfg.binary, root: b.cfg.dir, name: name, args: args,
		pprof: b.cfg.pprofDir != "", logDir: b.cfg.logDir, hc: b.hc, logf: b.logf})
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// seeded starts a scenario's cluster, waits for its leader and writes the
// region's store, products and stock through it. On error nothing is left
// running.
func (b *bench) seeded(ctx context.Context, name string, extra ...string) (*cluster, *proc, *region, error) {
	c, err := b.cluster(ctx, name, extra...)
	if err != nil {
		return nil, nil, nil, err
	}
	leader, err := c.waitLeader(ctx, 30*time.Second)
	if err == nil {
		r := newRegion("hubbench", b.cfg.products)
		var setup []json.RawMessage
		if setup, err = r.setup(); err == nil {
			err = submitChunks(ctx, leader, 1, 1, b.cfg.timeout, func(int) ([]json.RawMessage, error) { return setup, nil })
			if err == nil {
				return c, leader, r, nil
			}
			err = fmt.Errorf("setup: %w", err)
		}
	}
	c.close()
	return nil, nil, nil, err
}
