// Command syncbench measures edge–hub replication (issue 5's benchmarks)
// and prints the figures against their targets:
//
//   - latency: end-to-end latency of a sale from its commit at one edge to
//     its arrival, applied, at another, while --edges edges in this process
//     write --rate sales a second in total to a 3-process hub cluster
//     through the embedded broker (also in this process); all of them full
//     edges (edge.Start), or --replica-edges of them with the rest light
//     stand-ins that only upload (see lightEdge);
//   - catchup: how fast a returning edge applies the change log it missed
//     while the hub committed --catchup-mutations sales (entries/s and row
//     changes/s);
//   - bootstrap: a new edge process (--edge-binary --bootstrap) downloads
//     the snapshot of a --bootstrap-customers region from a hub and installs
//     it, until it follows the feed; with its peak resident memory (VmHWM).
//
// Hubs and the bootstrapping edge are real processes (bin/hub, bin/edge);
// every process started is killed on every exit path, and by the kernel if
// syncbench itself dies (Pdeathsig). Everything listens on free 127.0.0.1
// ports. docs/benchmarks.md has the figures.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/endcap/endcap/internal/procstat"

	"github.com/endcap/endcap/retail"
)

func main() { children.Main("syncbench", run) }

var scenarios = []string{"latency", "catchup", "bootstrap"}

// config is the parsed flags.
type config struct {
	hubBinary  string
	edgeBinary string
	only       map[string]bool
	quick      bool

	edges        int
	replicaEdges int
	rate         float64
	warmup       time.Duration
	duration     time.Duration
	drain        time.Duration
	pollEvery    time.Duration
	durability   retail.Durability

	catchupN     int
	catchupBatch int
	catchupConns int

	customers int
	cacheDir  string

	dir      string
	logDir   string
	pprofDir string
	keep     bool
}

const usage = `usage: syncbench [flags]

Measures edge-hub replication against issue 5's targets:

  latency    end-to-end latency of a sale, from its commit at an edge to
             its arrival, applied, at an observer edge: --edges edges in
             this process write --rate sales/s in total to a 3-process hub
             cluster through the embedded broker (also in this process);
             --warmup, then --duration measured. Full edges (--replica-edges,
             default all) are edge.Start nodes (replica with durability
             --durability, sync worker: each applies the whole feed); the
             rest are light: they upload as an edge does but keep no
             replica, standing in for edges on machines of their own. The
             observer (one more full edge that writes nothing) is polled
             every --poll for new applied_mutations rows: there is no apply
             hook, so each figure includes up to one polling interval. A
             subscriber on the broker (with the hub's rights) times each
             full edge's sale on the way: upload, the hub's ack, the feed.
             Target: p99 < 250 ms at 1,000/s from 20 edges.
  catchup    an edge (in this process) goes offline; the hub commits
             --catchup-mutations sales (POST /v1/mutations, --catchup-batch
             a request); the edge starts again: time from its start to
             applied == the hub's sequence. Change-log entries/s and row
             changes/s. Target: >= 50,000 row changes/s (the issue's "changes").
  bootstrap  a region of --bootstrap-customers customers made by
             retail/demodata (cached in --cache-dir: a million take 12 to 25
             minutes to generate) is served by one hub process whose state
             starts as that database; an edge process (--edge-binary
             --bootstrap) starts with an empty data dir: time until it has
             installed GET /v1/snapshot and applied a mutation the hub
             committed after it was ready (following the feed), the
             snapshot's size, and the edge's peak resident memory (VmHWM
             from /proc). Targets: < 60 s and < 200 MB at 1,000,000.

Hubs and the bootstrapping edge run as processes (make build makes
bin/hub and bin/edge); all are killed on exit. Figures go to stdout,
progress to stderr. See docs/benchmarks.md.

examples:
  make build && bin/syncbench                        # all three, with a 1M region (cached)
  bin/syncbench --quick                              # small sizes, a smoke test (15 to 30 s)
  bin/syncbench --only latency --replica-edges 1     # 1 full edge, 19 light ones, 1,000/s
  bin/syncbench --only latency --rate 250 --edges 5
  bin/syncbench --only catchup --catchup-mutations 20000 --pprof-dir prof
  bin/syncbench --only bootstrap --bootstrap-customers 100000

flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("syncbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var only, durability string
	fs.StringVar(&cfg.hubBinary, "hub-binary", "bin/hub", "the hub binary (make build makes bin/hub)")
	fs.StringVar(&cfg.edgeBinary, "edge-binary", "bin/edge", "the edge binary, for the bootstrap scenario (make build makes bin/edge)")
	fs.StringVar(&only, "only", strings.Join(scenarios, ","), "scenarios to run, comma-separated: "+strings.Join(scenarios, ", "))
	fs.BoolVar(&cfg.quick, "quick", false, "small sizes for a smoke test: 4 edges at 40 sales/s for 3 s, catch-up of 2,000,\nbootstrap of 1,000 customers (flags given explicitly still win)")
	fs.IntVar(&cfg.edges, "edges", 20, "latency: producing edges (each writes --rate/--edges sales/s)")
	fs.IntVar(&cfg.replicaEdges, "replica-edges", -1, "latency: how many of the --edges are full edges (replica and sync worker, in this process);\nthe rest are light: they upload like an edge but keep no replica, standing in for edges on\nmachines of their own (-1: all are full)")
	fs.Float64Var(&cfg.rate, "rate", 1000, "latency: sales per second from all edges together, on a fixed schedule (open loop)")
	fs.DurationVar(&cfg.warmup, "warmup", 5*time.Second, "latency: load before the measured window")
	fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "latency: the measured window")
	fs.DurationVar(&cfg.drain, "drain", 60*time.Second, "latency: after the load, how long to wait for the measured sales to reach the observer")
	fs.DurationVar(&cfg.pollEvery, "poll", 2*time.Millisecond, "latency: how often the observer edge's replica is polled for arrivals")
	fs.StringVar(&durability, "durability", "full", "latency and catchup: the in-process edges' replica durability, full (what stores use) or normal")
	fs.IntVar(&cfg.catchupN, "catchup-mutations", 100_000, "catchup: sales the hub commits while the edge is offline")
	fs.IntVar(&cfg.catchupBatch, "catchup-batch", 1000, "catchup: sales per POST /v1/mutations")
	fs.IntVar(&cfg.catchupConns, "catchup-conns", 2, "catchup: requests in flight while loading the hub")
	fs.IntVar(&cfg.customers, "bootstrap-customers", 1_000_000, "bootstrap: customers in the region (retail/demodata, default history)")
	fs.StringVar(&cfg.cacheDir, "cache-dir", "var/bench", "bootstrap: where generated regions are kept between runs (region-1m.db for a million, the\nfile make bench generates)")
	fs.StringVar(&cfg.dir, "dir", "", "parent of the run's work dir (default: the system temp dir); the bootstrap scenario\nneeds about 3 times the region's size free there")
	fs.StringVar(&cfg.logDir, "log-dir", "", "append every hub's and edge's log to files in this directory (in-process components: warnings only)")
	fs.StringVar(&cfg.pprofDir, "pprof-dir", "", "save CPU profiles here: this process during the latency window and the catch-up,\nthe hub leader during the latency window and the catch-up's first 15 s (the hubs run with --pprof)")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the work dir (replicas, hub data) after the run")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}
	if cfg.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		quick("edges", func() { cfg.edges = 4 })
		quick("rate", func() { cfg.rate = 40 })
		quick("warmup", func() { cfg.warmup = time.Second })
		quick("duration", func() { cfg.duration = 3 * time.Second })
		quick("drain", func() { cfg.drain = 30 * time.Second })
		quick("catchup-mutations", func() { cfg.catchupN = 2000 })
		quick("bootstrap-customers", func() { cfg.customers = 1000 })
	}
	if cfg.replicaEdges < 0 || cfg.replicaEdges > cfg.edges {
		cfg.replicaEdges = cfg.edges
	}
	cfg.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(scenarios, s) {
			return fmt.Errorf("--only: unknown scenario %q (want %s)", s, strings.Join(scenarios, ", "))
		}
		cfg.only[s] = true
	}
	switch durability {
	case "full":
		cfg.durability = retail.DurabilityFull
	case "normal":
		cfg.durability = retail.DurabilityNormal
	default:
		return fmt.Errorf("--durability %q: want full or normal", durability)
	}
	switch {
	case cfg.edges < 1 || cfg.rate <= 0:
		return errors.New("--edges and --rate must be positive")
	case cfg.replicaEdges < 1:
		return errors.New("--replica-edges: at least 1 (the latency is measured from full edges' commits)")
	case cfg.duration <= 0 || cfg.warmup < 0 || cfg.pollEvery <= 0:
		return errors.New("--duration and --poll must be positive, --warmup not negative")
	case cfg.catchupN < 1 || cfg.catchupBatch < 1 || cfg.catchupConns < 1:
		return errors.New("--catchup-mutations, --catchup-batch and --catchup-conns must be positive")
	case cfg.customers < 1:
		return errors.New("--bootstrap-customers must be positive")
	}
	need := []string{cfg.hubBinary}
	if cfg.only["bootstrap"] {
		need = append(need, cfg.edgeBinary)
	}
	for _, bin := range need {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%w; run `make build` (or pass --hub-binary / --edge-binary)", err)
		}
	}
	for _, d := range []string{cfg.logDir, cfg.pprofDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
	}
	work, err := os.MkdirTemp(cfg.dir, "syncbench-")
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, out: stdout, errw: stderr, work: work, hc: &http.Client{Transport: &http.Transport{
		MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}}}
	defer func() {
		children.KillAll()
		if b.logFile != nil {
			b.logFile.Close()
		}
		if cfg.keep {
			b.logf("work dir kept: %s", work)
		} else {
			os.RemoveAll(work)
		}
	}()
	b.header()
	failed := b.runAll(ctx)
	b.report()
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	if failed > 0 {
		return fmt.Errorf("%d scenario(s) failed; see above", failed)
	}
	return nil
}

// bench runs the scenarios and collects their figures.
type bench struct {
	cfg  config
	out  io.Writer
	errw io.Writer
	hc   *http.Client
	work string // this run's temp dir

	logMu   sync.Mutex
	logFile *os.File

	figures []figure
}

// figure is one line of the final table.
type figure struct {
	scenario string
	name     string
	value    string
	target   string
	verdict  string // PASS, FAIL, ERROR or ""
}

func (b *bench) add(scenario, name, value, target, verdict string) {
	b.figures = append(b.figures, figure{scenario, name, value, target, verdict})
}

// verdict is PASS or FAIL.
func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.errw, "syncbench: "+format+"\n", args...)
}

// printf writes a line of figures to stdout.
func (b *bench) printf(format string, args ...any) {
	fmt.Fprintf(b.out, format+"\n", args...)
}

func (b *bench) header() {
	b.printf("# syncbench: %s, %d CPUs (%s), GOMAXPROCS %d, %s; load average at start %s", cpuModel(), runtime.NumCPU(),
		runtime.GOOS+"/"+runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.Version(), procstat.LoadAverage())
	b.printf("# hub %s, edge %s; hubs, edges, broker and syncbench share this machine", b.cfg.hubBinary, b.cfg.edgeBinary)
}

// runAll runs the chosen scenarios; latency and catchup share one region
// (broker and 3 hubs), bootstrap has its own. It returns how many failed.
func (b *bench) runAll(ctx context.Context) (failed int) {
	fail := func(scenario string, err error) {
		failed++
		b.logf("%s: %v", scenario, err)
		b.add(scenario, "error", trimErr(err), "", "ERROR")
	}
	if b.cfg.only["latency"] || b.cfg.only["catchup"] {
		e, err := b.clusterEnv(ctx)
		if err != nil {
			fail("latency+catchup", err)
		} else {
			if b.cfg.only["latency"] && ctx.Err() == nil {
				if err := b.latency(ctx, e); err != nil {
					fail("latency", err)
				}
			}
			if b.cfg.only["catchup"] && ctx.Err() == nil {
				if err := b.catchup(ctx, e); err != nil {
					fail("catchup", err)
				}
			}
			e.close()
		}
	}
	if b.cfg.only["bootstrap"] && ctx.Err() == nil {
		if err := b.bootstrap(ctx); err != nil {
			fail("bootstrap", err)
		}
	}
	return failed
}

// clusterEnv starts the broker and three seeded hubs for latency and
// catchup.
func (b *bench) clusterEnv(ctx context.Context) (*env, error) {
	users := []string{observerID, returningID}
	for i := range b.cfg.edges {
		users = append(users, edgeID(i))
	}
	e, err := b.newEnv(ctx, "cluster", users...)
	if err != nil {
		return nil, err
	}
	if err := e.startCluster(ctx); err != nil {
		e.close()
		return nil, err
	}
	if err := e.seed(ctx); err != nil {
		e.close()
		return nil, fmt.Errorf("seed: %w", err)
	}
	return e, nil
}

// report prints the table of figures.
func (b *bench) report() {
	b.printf("")
	b.printf("## results (load average at end %s)", procstat.LoadAverage())
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tmeasured\ttarget\tresult")
	for _, f := range b.figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.scenario, f.name, f.value, f.target, f.verdict)
	}
	tw.Flush()
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
