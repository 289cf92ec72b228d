package retail

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The Apply benchmarks (docs/benchmarks.md, "retail: Apply"). They run
// only with -bench:
//
//	go test -run '^$' -bench 'ApplySale|CommitLatency' -benchtime 5x ./retail/
//
// Every run starts from a copy of one seeded region file: benchStores
// stores and a distribution centre, benchProducts products, benchCustomers
// customers, and so much stock at every store that no benchmark sale
// drives a count below zero (so none is flagged). The sales are 3-line
// till sales paid by card, with unique order ids and mutation ids.

const (
	benchStores    = 4
	benchProducts  = 1000
	benchCustomers = 1000
	benchStock     = 1_000_000_000 // per store and product
)

// benchSeedFile builds the benchmark region into a file in b's temp dir
// (about a second) and returns its path: the file is closed and
// checkpointed, so each run copies it rather than seeding again.
func benchSeedFile(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "seed.db")
	if err := benchSeedRegion(path); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchCatalog opens a copy of the seed file in a temp dir of its own,
// with the given durability.
func benchCatalog(b *testing.B, seed string, d Durability) *DB {
	b.Helper()
	path := filepath.Join(b.TempDir(), "region.db")
	if err := benchCopyFile(seed, path); err != nil {
		b.Fatal(err)
	}
	db, err := Open(context.Background(), path, Options{Durability: d})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func benchCopyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func benchStoreID(i int) string { return fmt.Sprintf("S%03d", i+1) }
func benchSKU(i int) string     { return fmt.Sprintf("SKU-%05d", i+1) }
func benchCustomerID(i int) string {
	return fmt.Sprintf("cust-%06d", i+1)
}

// benchPrice is product i's price: 1.99 to 99.99.
func benchPrice(i int) Cents { return 199 + Cents(i*7919%9800) }

// benchSeedRegion writes the benchmark catalog to a new file at path,
// through Apply, in transactions of 1,000 mutations. cmd/applybench seeds
// the same region.
func benchSeedRegion(path string) error {
	ctx := context.Background()
	db, err := Open(ctx, path, Options{Durability: DurabilityNormal})
	if err != nil {
		return err
	}
	defer db.Close()
	at := t0.AddDate(0, 0, -30)
	var bodies []Body
	for i := range benchStores {
		bodies = append(bodies, &UpsertStore{ID: benchStoreID(i), Kind: KindStore, Name: fmt.Sprintf("Store %d", i+1), Region: "west"})
	}
	bodies = append(bodies, &UpsertStore{ID: "DC1", Kind: KindDC, Name: "West DC", Region: "west"})
	categories := []string{"shoes", "socks", "accessories", "apparel", "outdoor"}
	for i := range benchProducts {
		bodies = append(bodies, &UpsertProduct{SKU: benchSKU(i), Name: fmt.Sprintf("Product %d", i+1),
			Category: categories[i%len(categories)], PriceCents: benchPrice(i), Active: true,
			Barcodes: []string{fmt.Sprintf("20%011d", i+1)}})
	}
	for i := range benchCustomers {
		bodies = append(bodies, &UpsertCustomer{ID: benchCustomerID(i), Name: fmt.Sprintf("Customer %d", i+1),
			Phone: fmt.Sprintf("+1555%07d", i+1), LoyaltyCard: fmt.Sprintf("LC-%06d", i+1), Since: t0.AddDate(-1, 0, 0),
			AcquiredVia: AcquiredWalkIn, AcquiredStore: benchStoreID(i % benchStores), HomeStore: benchStoreID(i % benchStores),
			Contact: Contact{Email: true}})
	}
	for s := range benchStores {
		for p := range benchProducts {
			bodies = append(bodies, &AdjustStock{Location: benchStoreID(s), SKU: benchSKU(p), Delta: benchStock, Reason: "received"})
		}
	}
	for start := 0; start < len(bodies); start += 1000 {
		err := db.Update(ctx, func(tx *Tx) error {
			for i, body := range bodies[start:min(start+1000, len(bodies))] {
				seq := uint64(start + i + 1)
				m := Mutation{ID: MutationID{Origin: "seed", Seq: seq}, HLC: HLC{Wall: at.UnixMilli() + int64(seq)},
					Actor: Actor{Kind: "system", ID: "seed"}, Body: body}
				res, err := Apply(ctx, tx, m)
				if err != nil {
					return err
				}
				if res.Status != StatusAccepted {
					return fmt.Errorf("seed %s %s: %s %s %s", body.Type(), m.ID, res.Status, res.Code, res.Reason)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// Copies take the main file alone: fold the WAL into it.
	_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// benchSales makes n 3-line card sales with unique order and mutation ids
// (prefix keeps them apart between runs on one database). Sales are
// spread over the stores, products and customers; a fifth are anonymous.
func benchSales(prefix string, n int) []Mutation {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	ms := make([]Mutation, n)
	for i := range ms {
		store := benchStoreID(rng.IntN(benchStores))
		customer := ""
		if rng.IntN(5) > 0 {
			customer = benchCustomerID(rng.IntN(benchCustomers))
		}
		var lines []Line
		for len(lines) < 3 {
			p := rng.IntN(benchProducts)
			if slices.ContainsFunc(lines, func(l Line) bool { return l.SKU == benchSKU(p) }) {
				continue
			}
			lines = append(lines, Line{SKU: benchSKU(p), Qty: 1 + rng.Int64N(3), UnitPriceCents: benchPrice(p)})
		}
		o := Order{ID: fmt.Sprintf("%s-%d", prefix, i+1), CustomerID: customer, Channel: ChannelStore, StoreID: store,
			ClerkID: "clerk-" + store, Fulfilment: CarryOut, Lines: lines}
		_, _, total := o.Totals()
		o.Tenders = []Tender{{Kind: TenderCard, AmountCents: total, CardToken: fmt.Sprintf("tok-%08x", rng.Uint32())}}
		ms[i] = Mutation{ID: MutationID{Origin: prefix, Seq: uint64(i + 1)}, HLC: HLC{Wall: t0.UnixMilli() + int64(i)},
			Actor: Actor{Kind: "clerk", ID: "clerk-" + store}, Body: &RecordSale{Order: o}}
	}
	return ms
}

// benchApplyBatch applies ms in one transaction and fails unless every sale
// is accepted.
func benchApplyBatch(b *testing.B, db *DB, ms []Mutation) {
	ctx := context.Background()
	err := db.Update(ctx, func(tx *Tx) error {
		for _, m := range ms {
			res, err := Apply(ctx, tx, m)
			if err != nil {
				return err
			}
			if res.Status != StatusAccepted {
				return fmt.Errorf("%s: %s %s %s %+v", m.ID, res.Status, res.Code, res.Reason, res.Exceptions)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

var benchRun int // tells apart the order ids of successive runs

// benchSalesPerOp is an op of BenchmarkApplySale: 1,000 sales, in
// transactions of the sub-benchmark's batch size, so that even
// -benchtime 1x (make bench) applies enough sales to measure, and ns/op
// compares across batch sizes.
const benchSalesPerOp = 1000

// BenchmarkApplySale applies 3-line card sales to a file database with the
// edge's durability (DurabilityFull, an fsync per commit), batch sales per
// transaction. An op is benchSalesPerOp sales; mutations/s is the figure
// to read.
func BenchmarkApplySale(b *testing.B) {
	seed := benchSeedFile(b)
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			db := benchCatalog(b, seed, DurabilityFull)
			benchRun++
			ms := benchSales(fmt.Sprintf("bench%d", benchRun), b.N*benchSalesPerOp)
			b.ResetTimer()
			for i := 0; i < len(ms); i += batch {
				benchApplyBatch(b, db, ms[i:i+batch])
			}
			b.StopTimer()
			el := b.Elapsed()
			b.ReportMetric(float64(len(ms))/el.Seconds(), "mutations/s")
			b.ReportMetric(float64(el.Nanoseconds())/float64(len(ms)), "ns/mutation")
		})
	}
}

// benchCommitsPerOp is an op of BenchmarkCommitLatency: that many
// transactions of one sale each, so that -benchtime 1x gives percentiles.
const benchCommitsPerOp = 200

// BenchmarkCommitLatency times begin + Apply + commit of one sale per
// transaction, with each durability, and reports the 50th and 99th
// percentiles in microseconds. An op is benchCommitsPerOp commits.
func BenchmarkCommitLatency(b *testing.B) {
	seed := benchSeedFile(b)
	for _, d := range []struct {
		name string
		d    Durability
	}{{"full", DurabilityFull}, {"normal", DurabilityNormal}} {
		b.Run("durability="+d.name, func(b *testing.B) {
			db := benchCatalog(b, seed, d.d)
			benchRun++
			ms := benchSales(fmt.Sprintf("lat%d", benchRun), b.N*benchCommitsPerOp)
			lat := make([]time.Duration, len(ms))
			b.ResetTimer()
			for i := range ms {
				start := time.Now()
				benchApplyBatch(b, db, ms[i:i+1])
				lat[i] = time.Since(start)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(benchPercentile(lat, 50).Microseconds()), "p50-µs")
			b.ReportMetric(float64(benchPercentile(lat, 99).Microseconds()), "p99-µs")
		})
	}
}

// benchPercentile is the nearest-rank p-th percentile of sorted durations.
func benchPercentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}
