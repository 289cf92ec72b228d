package demodata

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
	_ "time/tzdata" // store time zones validate on machines without a zoneinfo database

	"github.com/endcap/endcap/retail"
)

// Config sizes and seeds a demo region. The zero value is ready for use:
// every zero field takes the default documented on it.
type Config struct {
	// Seed picks the region; the same Config always makes the same
	// database. Every seed, 0 included, is valid.
	Seed int64
	// Stores is the number of stores (default 5); there is always one
	// distribution centre besides.
	Stores int
	// Customers is the number of customers (default 2000).
	Customers int
	// Products is the size of the catalogue (default 200).
	Products int
	// OrdersPerCustomer is the mean number of orders a customer places over
	// the timeline; visits, carts, offers, returns and contacts scale with
	// it. Default: 5 up to 200,000 customers, then 1,000,000 / Customers.
	OrdersPerCustomer float64
	// Region names the region (default "northwest").
	Region string
	// End is when the simulated timeline ends (default 2026-11-01 00:00 UTC).
	End time.Time
	// Years is the length of the timeline (default 2).
	Years int
	// BatchSize is the number of mutations per transaction (default 1000).
	BatchSize int
	// CacheMiB is the page cache, in MiB, of the connection the mutations
	// are written on (default 256). A region much larger than the cache
	// slows down as it grows: give a 5M-order region a few GiB.
	CacheMiB int
	// OnCommit, if set, is called after every commit with the number of
	// mutations applied so far (progress counts customers; this lets a
	// caller show throughput).
	OnCommit func(mutations int)
	// OnMutation, if set, is called with every mutation after it is
	// applied, in order, so a caller can send the same region to a hub.
	OnMutation func(retail.Mutation)
}

// DefaultEnd is the end of the default timeline.
var DefaultEnd = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Stores <= 0 {
		c.Stores = 5
	}
	if c.Customers <= 0 {
		c.Customers = 2000
	}
	if c.Products <= 0 {
		c.Products = 200
	}
	if c.OrdersPerCustomer <= 0 {
		c.OrdersPerCustomer = DefaultOrdersPerCustomer(c.Customers)
	}
	if c.Region == "" {
		c.Region = "northwest"
	}
	if c.End.IsZero() {
		c.End = DefaultEnd
	}
	if c.Years <= 0 {
		c.Years = 2
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.CacheMiB <= 0 {
		c.CacheMiB = 256
	}
	return c
}

// DefaultOrdersPerCustomer is the mean number of orders per customer when
// Config.OrdersPerCustomer is zero: 5, or for regions of more than 200,000
// customers as many as keep the region at about a million orders, because
// retail.Apply (a few thousand mutations a second) would otherwise take
// hours over a million customers.
func DefaultOrdersPerCustomer(customers int) float64 {
	const full, maxOrders = 5.0, 1_000_000.0
	if customers <= 0 || float64(customers)*full <= maxOrders {
		return full
	}
	return maxOrders / float64(customers)
}

// Stats is what Generate did.
type Stats struct {
	Customers int
	Mutations int // applied, including rejected ones
	Accepted  int
	Rejected  int
	Flagged   int
	// Exceptions is the number of exceptions the flagged facts raised.
	Exceptions int
	// Unexpected counts results the generator's own model of the region
	// did not predict (a request rejected that it expected accepted, a fact
	// flagged it expected clean, or the other way round). Zero unless
	// retail's rules changed under the generator; FirstUnexpected says what.
	Unexpected      int
	FirstUnexpected string
	// ByType counts mutations by type; Rejections counts rejected mutations
	// by code; ExceptionKinds counts exceptions by kind.
	ByType         map[string]int
	Rejections     map[string]int
	ExceptionKinds map[string]int
	// Tables is the number of rows in every table at the end.
	Tables []TableRows
}

// TableRows is a table's row count.
type TableRows struct {
	Table string
	Rows  int64
}

// Rows returns the row count of the named table, or -1 if it is not listed.
func (s Stats) Rows(table string) int64 {
	for _, t := range s.Tables {
		if t.Table == table {
			return t.Rows
		}
	}
	return -1
}

// Generate fills db, which must be an empty region (no mutation applied
// yet), with the demo region cfg describes, through retail.Apply only. It
// calls progress (if not nil) with the number of customers generated so far
// and the total, at the start and after every customer.
//
// Generate uses db alone while it runs. For speed it gives the connection
// write transactions run on a page cache of 256 MiB while it runs (the
// indexes of a million customers then stay in memory), and puts the
// previous size back when it returns.
//
// If ctx ends, Generate rolls back the open transaction and returns the
// context's error; what was committed before stays.
func Generate(ctx context.Context, db *retail.DB, cfg Config, progress func(done, total int)) (Stats, error) {
	cfg = cfg.withDefaults()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM applied_mutations").Scan(&n); err != nil {
		return Stats{}, fmt.Errorf("demodata: %w", err)
	}
	if n > 0 {
		return Stats{}, fmt.Errorf("demodata: %s already holds %d mutations; generate into an empty database", db.Path(), n)
	}
	g, err := newGen(ctx, db, cfg)
	if err != nil {
		return Stats{}, err
	}
	defer g.w.rollback()
	if progress == nil {
		progress = func(int, int) {}
	}
	progress(0, cfg.Customers)
	if err := g.setup(); err != nil {
		return g.w.stats, fmt.Errorf("demodata: %w", err)
	}
	for i := range cfg.Customers {
		if err := ctx.Err(); err != nil {
			return g.w.stats, err
		}
		if err := g.customer(i); err != nil {
			return g.w.stats, fmt.Errorf("demodata: customer %s: %w", customerID(i), err)
		}
		g.w.stats.Customers++
		progress(i+1, cfg.Customers)
	}
	if err := g.w.finish(); err != nil {
		return g.w.stats, fmt.Errorf("demodata: %w", err)
	}
	tables, err := CountRows(ctx, db)
	if err != nil {
		return g.w.stats, fmt.Errorf("demodata: %w", err)
	}
	g.w.stats.Tables = tables
	return g.w.stats, nil
}

// CountRows counts the rows of every table in the database, by name.
func CountRows(ctx context.Context, q retail.Querier) ([]TableRows, error) {
	rows, err := q.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tables: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	out := make([]TableRows, 0, len(names))
	for _, n := range names {
		r, err := q.QueryContext(ctx, fmt.Sprintf("SELECT count(*) FROM %q", n))
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", n, err)
		}
		var c int64
		if r.Next() {
			err = r.Scan(&c)
		}
		r.Close()
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", n, err)
		}
		out = append(out, TableRows{Table: n, Rows: c})
	}
	return out, nil
}

// expect is what the generator's model predicts Apply makes of a mutation.
type expect int

const (
	expAccepted expect = iota
	expRejected
	expFlagged
)

// writer applies mutations in transactions of cfg.BatchSize and counts
// their results.
type writer struct {
	ctx        context.Context
	db         *retail.DB
	tx         *retail.Tx
	inTx       int
	batch      int
	seq        uint64
	onCommit   func(int)
	onMutation func(retail.Mutation)
	stats      Stats
	// oldCache is the writer connection's cache_size before Generate
	// enlarged it; tuned says it was.
	oldCache int64
	tuned    bool
	// cacheMiB is the page cache Generate gives the writer connection.
	cacheMiB int
}

func (w *writer) begin() error {
	tx, err := w.db.Begin(w.ctx)
	if err != nil {
		return err
	}
	w.tx = tx
	if !w.tuned {
		// A setting of the connection Apply writes on, reached through the
		// transaction: the pool's other connections keep the default.
		if err := tx.SQL().QueryRowContext(w.ctx, "PRAGMA cache_size").Scan(&w.oldCache); err != nil {
			return fmt.Errorf("read cache_size: %w", err)
		}
		if _, err := tx.SQL().ExecContext(w.ctx, fmt.Sprintf("PRAGMA cache_size = %d", -1024*w.cacheMiB)); err != nil {
			return fmt.Errorf("set cache_size: %w", err)
		}
		w.tuned = true
	}
	return nil
}

// finish puts the writer connection's cache size back and commits.
func (w *writer) finish() error {
	if w.tuned {
		if w.tx == nil {
			if err := w.begin(); err != nil {
				return err
			}
		}
		if _, err := w.tx.SQL().ExecContext(w.ctx, fmt.Sprintf("PRAGMA cache_size = %d", w.oldCache)); err != nil {
			return fmt.Errorf("restore cache_size: %w", err)
		}
		w.tuned = false
	}
	return w.commit()
}

func (w *writer) apply(at int64, actor retail.Actor, body retail.Body, want expect) (retail.Result, error) {
	if w.tx == nil {
		if err := w.begin(); err != nil {
			return retail.Result{}, err
		}
	}
	w.seq++
	m := retail.Mutation{ID: retail.MutationID{Origin: origin, Seq: w.seq}, HLC: retail.HLC{Wall: at}, Actor: actor, Body: body}
	res, err := retail.Apply(w.ctx, w.tx, m)
	if err != nil {
		return res, err
	}
	if w.onMutation != nil {
		w.onMutation(m)
	}
	s := &w.stats
	s.Mutations++
	s.ByType[body.Type()]++
	got := expAccepted
	switch res.Status {
	case retail.StatusAccepted:
		s.Accepted++
	case retail.StatusRejected:
		s.Rejected++
		s.Rejections[res.Code]++
		got = expRejected
	case retail.StatusFlagged:
		s.Flagged++
		got = expFlagged
	}
	for _, e := range res.Exceptions {
		s.Exceptions++
		s.ExceptionKinds[string(e.Kind)]++
	}
	if got != want {
		s.Unexpected++
		if s.FirstUnexpected == "" {
			s.FirstUnexpected = fmt.Sprintf("%s %s at %s: %s %s %s %v", body.Type(), m.ID, m.HLC.Time().Format(time.RFC3339),
				res.Status, res.Code, res.Reason, res.Exceptions)
		}
	}
	w.inTx++
	if w.inTx >= w.batch {
		if err := w.commit(); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (w *writer) commit() error {
	if w.tx == nil {
		return nil
	}
	err := w.tx.Commit()
	w.tx, w.inTx = nil, 0
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if w.onCommit != nil {
		w.onCommit(w.stats.Mutations)
	}
	return nil
}

// rollback abandons the open transaction, if any, and puts the cache size
// back if finish did not (Generate failed or was cancelled).
func (w *writer) rollback() {
	if w.tx != nil {
		w.tx.Rollback()
		w.tx = nil
	}
	if w.tuned {
		w.tuned = false
		if tx, err := w.db.Begin(context.WithoutCancel(w.ctx)); err == nil {
			tx.SQL().Exec(fmt.Sprintf("PRAGMA cache_size = %d", w.oldCache)) // not transactional
			tx.Rollback()
		}
	}
}

// Time units in unix milliseconds, the HLC's wall clock.
const (
	second = int64(1000)
	minute = 60 * second
	hour   = 60 * minute
	day    = 24 * hour
)

func ms(t time.Time) int64 { return t.UnixMilli() }

func newGen(ctx context.Context, db *retail.DB, cfg Config) (*gen, error) {
	seed := uint64(cfg.Seed)
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		return nil, fmt.Errorf("demodata: %w", err)
	}
	g := &gen{
		cfg:   cfg,
		seed:  seed,
		key:   splitmix64(seed ^ 0x5eed_c0de),
		loc:   loc,
		end:   ms(cfg.End),
		start: ms(cfg.End.AddDate(-cfg.Years, 0, 0)),
		w: &writer{ctx: ctx, db: db, batch: cfg.BatchSize, cacheMiB: cfg.CacheMiB, onCommit: cfg.OnCommit, onMutation: cfg.OnMutation, stats: Stats{
			ByType: map[string]int{}, Rejections: map[string]int{}, ExceptionKinds: map[string]int{},
		}},
	}
	g.r = rand.New(rand.NewPCG(splitmix64(seed^1), splitmix64(seed^2)))
	g.cr = rand.New(&g.cpcg)
	return g, nil
}

func msTime(t int64) time.Time { return time.UnixMilli(t).UTC() }
