// Command applybench measures retail.Apply on a file database: how many
// 3-line till sales (retail.RecordSale paid by card) a second it applies in
// transactions of 1, 100 and 1,000 sales, and the latency of committing
// one sale (begin + Apply + commit) with each durability setting. It
// prints a table; docs/benchmarks.md explains the figures.
//
// Each run starts from a copy of one seeded region (stores, products,
// customers, and so much stock that no sale is flagged), in a temp dir
// unless --dir is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/endcap/endcap/retail"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "applybench:", err)
		os.Exit(1)
	}
}

type config struct {
	sales, sales1, commits      int
	batches                     []int
	durability                  retail.Durability
	dir                         string
	stores, products, customers int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("applybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var batches, durability string
	fs.IntVar(&cfg.sales, "sales", 20000, "sales applied for each batch size of 2 or more")
	fs.IntVar(&cfg.sales1, "sales1", 2000, "sales applied for batch size 1 (each is a commit, and with full durability an fsync)")
	fs.StringVar(&batches, "batches", "1,100,1000", "comma-separated batch sizes: sales per transaction")
	fs.StringVar(&durability, "durability", "full", "durability for the throughput runs: full (the edge default) or normal")
	fs.IntVar(&cfg.commits, "commits", 1000, "single-sale commits timed for each durability (0 skips the latency runs)")
	fs.StringVar(&cfg.dir, "dir", "", "directory for the databases, kept afterwards (default: a temp dir, removed)")
	fs.IntVar(&cfg.stores, "stores", 4, "stores in the seeded region (plus one distribution centre)")
	fs.IntVar(&cfg.products, "products", 1000, "products in the seeded region")
	fs.IntVar(&cfg.customers, "customers", 1000, "customers in the seeded region")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: applybench [flags]

Measures retail.Apply on a file database, with 3-line till sales paid by card:
  - throughput: mutations/s applying --sales sales (--sales1 for batch size 1)
    in transactions of each --batches size, with --durability;
  - latency: begin + Apply + commit of one sale, --commits times, with
    durability full (synchronous=FULL, the edge default) and normal.
Every run starts from a copy of one seeded region. See docs/benchmarks.md.

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
	for _, s := range strings.Split(batches, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--batches: %q is not a positive number", s)
		}
		cfg.batches = append(cfg.batches, n)
	}
	switch durability {
	case "full":
		cfg.durability = retail.DurabilityFull
	case "normal":
		cfg.durability = retail.DurabilityNormal
	default:
		return fmt.Errorf("--durability %q: want full or normal", durability)
	}
	if cfg.sales < 1 || cfg.sales1 < 1 || cfg.commits < 0 || cfg.stores < 1 || cfg.products < 3 || cfg.customers < 1 {
		return errors.New("--sales and --sales1 must be at least 1, --products at least 3, --stores and --customers at least 1, --commits at least 0")
	}

	dir := cfg.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "applybench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	fmt.Fprintf(stdout, "retail.Apply: 3-line card sales on a file database in %s\n", dir)
	fmt.Fprintf(stdout, "%s %s/%s, %d CPUs, %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel())
	start := time.Now()
	seed := filepath.Join(dir, "seed.db")
	if err := seedRegion(ctx, seed, cfg); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	fmt.Fprintf(stdout, "seeded %d stores, %d products, %d customers, %d stock rows in %.1fs\n\n",
		cfg.stores, cfg.products, cfg.customers, cfg.stores*cfg.products, time.Since(start).Seconds())

	fmt.Fprintf(stdout, "throughput, durability %s\n", durability)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch\tsales\tseconds\tmutations/s\tµs/mutation\tCPU µs/mutation\tCPU µs, median tx\tCPU µs, best tx\t")
	for i, batch := range cfg.batches {
		n := cfg.sales
		if batch == 1 {
			n = cfg.sales1
		}
		n = max(n/batch, 1) * batch // whole transactions
		db, err := openCopy(ctx, seed, filepath.Join(dir, fmt.Sprintf("batch%d.db", batch)), cfg.durability)
		if err != nil {
			return err
		}
		sales := makeSales(fmt.Sprintf("b%d-%d", i, batch), n, cfg)
		var txCPU []time.Duration // CPU time of each transaction
		cpu0 := cpuTime()
		t0 := time.Now()
		for j := 0; j < n; j += batch {
			c := cpuTime()
			if err := applySales(ctx, db, sales[j:j+batch]); err != nil {
				db.Close()
				return fmt.Errorf("batch %d: %w", batch, err)
			}
			txCPU = append(txCPU, cpuTime()-c)
		}
		el := time.Since(t0)
		cpu := cpuTime() - cpu0
		slices.Sort(txCPU)
		perSale := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(batch) }
		if err := db.Close(); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", batch, n, el.Seconds(), float64(n)/el.Seconds(),
			float64(el.Microseconds())/float64(n), float64(cpu.Microseconds())/float64(n),
			perSale(percentile(txCPU, 50)), perSale(txCPU[0]))
	}
	tw.Flush()

	if cfg.commits > 0 {
		fmt.Fprintf(stdout, "\ncommit latency, one sale per transaction (begin + Apply + commit)\n")
		tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "durability\tcommits\tp50\tp90\tp99\tmax\tmean\t")
		for _, d := range []struct {
			name string
			d    retail.Durability
		}{{"full", retail.DurabilityFull}, {"normal", retail.DurabilityNormal}} {
			db, err := openCopy(ctx, seed, filepath.Join(dir, "latency-"+d.name+".db"), d.d)
			if err != nil {
				return err
			}
			sales := makeSales("lat-"+d.name, cfg.commits, cfg)
			lat := make([]time.Duration, len(sales))
			var sum time.Duration
			for j := range sales {
				t0 := time.Now()
				if err := applySales(ctx, db, sales[j:j+1]); err != nil {
					db.Close()
					return fmt.Errorf("latency %s: %w", d.name, err)
				}
				lat[j] = time.Since(t0)
				sum += lat[j]
			}
			if err := db.Close(); err != nil {
				return err
			}
			slices.Sort(lat)
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", d.name, len(lat), dur(percentile(lat, 50)),
				dur(percentile(lat, 90)), dur(percentile(lat, 99)), dur(lat[len(lat)-1]), dur(sum/time.Duration(len(lat))))
		}
		tw.Flush()
	}
	fmt.Fprintf(stdout, "\ntotal %.1fs\n", time.Since(start).Seconds())
	return nil
}

// cpuTime is the CPU time (user and system) the process has used so far:
// the figure other jobs on a shared machine disturb least. Zero where
// getrusage is not available.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// percentile is the nearest-rank p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

// dur prints a latency with three significant digits.
func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "CPU model unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "CPU model unknown"
}

// t0 is the benchmark region's clock: sales happen after it, the catalog
// before.
var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func storeID(i int) string    { return fmt.Sprintf("S%03d", i+1) }
func sku(i int) string        { return fmt.Sprintf("SKU-%05d", i+1) }
func customerID(i int) string { return fmt.Sprintf("cust-%06d", i+1) }

// price is product i's price: 1.99 to 99.99.
func price(i int) retail.Cents { return 199 + retail.Cents(i*7919%9800) }

// stock is each store's count of each product: more than any run sells.
const stock = 1_000_000_000

// seedRegion writes the catalog to a new file at path through Apply, in
// transactions of 1,000 mutations, and checkpoints it so the file alone
// is the database.
func seedRegion(ctx context.Context, path string, cfg config) error {
	db, err := retail.Open(ctx, path, retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		return err
	}
	defer db.Close()
	var bodies []retail.Body
	for i := range cfg.stores {
		bodies = append(bodies, &retail.UpsertStore{ID: storeID(i), Kind: retail.KindStore, Name: fmt.Sprintf("Store %d", i+1), Region: "west"})
	}
	bodies = append(bodies, &retail.UpsertStore{ID: "DC1", Kind: retail.KindDC, Name: "West DC", Region: "west"})
	categories := []string{"shoes", "socks", "accessories", "apparel", "outdoor"}
	for i := range cfg.products {
		bodies = append(bodies, &retail.UpsertProduct{SKU: sku(i), Name: fmt.Sprintf("Product %d", i+1),
			Category: categories[i%len(categories)], PriceCents: price(i), Active: true,
			Barcodes: []string{fmt.Sprintf("20%011d", i+1)}})
	}
	for i := range cfg.customers {
		home := storeID(i % cfg.stores)
		bodies = append(bodies, &retail.UpsertCustomer{ID: customerID(i), Name: fmt.Sprintf("Customer %d", i+1),
			Phone: fmt.Sprintf("+1555%07d", i+1), LoyaltyCard: fmt.Sprintf("LC-%06d", i+1), Since: t0.AddDate(-1, 0, 0),
			AcquiredVia: retail.AcquiredWalkIn, AcquiredStore: home, HomeStore: home, Contact: retail.Contact{Email: true}})
	}
	for s := range cfg.stores {
		for p := range cfg.products {
			bodies = append(bodies, &retail.AdjustStock{Location: storeID(s), SKU: sku(p), Delta: stock, Reason: "received"})
		}
	}
	at := t0.AddDate(0, 0, -30).UnixMilli()
	for start := 0; start < len(bodies); start += 1000 {
		err := db.Update(ctx, func(tx *retail.Tx) error {
			for i, body := range bodies[start:min(start+1000, len(bodies))] {
				seq := uint64(start + i + 1)
				m := retail.Mutation{ID: retail.MutationID{Origin: "seed", Seq: seq}, HLC: retail.HLC{Wall: at + int64(seq)},
					Actor: retail.Actor{Kind: "system", ID: "seed"}, Body: body}
				res, err := retail.Apply(ctx, tx, m)
				if err != nil {
					return err
				}
				if res.Status != retail.StatusAccepted {
					return fmt.Errorf("%s %s: %s %s %s", body.Type(), m.ID, res.Status, res.Code, res.Reason)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// openCopy copies the seeded file to path and opens it.
func openCopy(ctx context.Context, seed, path string, d retail.Durability) (*retail.DB, error) {
	b, err := os.ReadFile(seed)
	if err != nil {
		return nil, err
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, err
	}
	return retail.Open(ctx, path, retail.Options{Durability: d})
}

// makeSales makes n 3-line card sales with order and mutation ids unique
// to prefix, spread over the stores, products and customers; a fifth are
// anonymous.
func makeSales(prefix string, n int, cfg config) []retail.Mutation {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	ms := make([]retail.Mutation, n)
	for i := range ms {
		store := storeID(rng.IntN(cfg.stores))
		customer := ""
		if rng.IntN(5) > 0 {
			customer = customerID(rng.IntN(cfg.customers))
		}
		var lines []retail.Line
		for len(lines) < 3 {
			p := rng.IntN(cfg.products)
			if slices.ContainsFunc(lines, func(l retail.Line) bool { return l.SKU == sku(p) }) {
				continue
			}
			lines = append(lines, retail.Line{SKU: sku(p), Qty: 1 + rng.Int64N(3), UnitPriceCents: price(p)})
		}
		o := retail.Order{ID: fmt.Sprintf("%s-%d", prefix, i+1), CustomerID: customer, Channel: retail.ChannelStore,
			StoreID: store, ClerkID: "clerk-" + store, Fulfilment: retail.CarryOut, Lines: lines}
		_, _, total := o.Totals()
		o.Tenders = []retail.Tender{{Kind: retail.TenderCard, AmountCents: total, CardToken: fmt.Sprintf("tok-%08x", rng.Uint32())}}
		ms[i] = retail.Mutation{ID: retail.MutationID{Origin: prefix, Seq: uint64(i + 1)}, HLC: retail.HLC{Wall: t0.UnixMilli() + int64(i)},
			Actor: retail.Actor{Kind: "clerk", ID: "clerk-" + store}, Body: &retail.RecordSale{Order: o}}
	}
	return ms
}

// applySales applies sales in one transaction; each must be accepted.
func applySales(ctx context.Context, db *retail.DB, sales []retail.Mutation) error {
	return db.Update(ctx, func(tx *retail.Tx) error {
		for _, m := range sales {
			res, err := retail.Apply(ctx, tx, m)
			if err != nil {
				return err
			}
			if res.Status != retail.StatusAccepted {
				return fmt.Errorf("sale %s: %s %s %s %+v", m.ID, res.Status, res.Code, res.Reason, res.Exceptions)
			}
		}
		return nil
	})
}
