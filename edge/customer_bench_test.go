package edge

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
	"github.com/endcap/endcap/retail/demodata"
)

// The region BenchmarkCustomer360 reads: ENDCAP_BENCH_DB (a database
// cmd/demodata made), else the 1M-customer region `make bench` leaves in
// var/bench, else a region of cxBenchFallbackCustomers generated here;
// ENDCAP_BENCH_CUSTOMERS=N generates N customers whatever is there.
const (
	cxBenchDBEnv             = "ENDCAP_BENCH_DB"
	cxBenchCustomersEnv      = "ENDCAP_BENCH_CUSTOMERS"
	cxBenchDefaultDB         = "../var/bench/region-1m.db"
	cxBenchFallbackCustomers = 20_000
	// Each op is cxBenchCalls calls, so that even -benchtime 1x gives a p99.
	cxBenchCalls = 500
	// Heavy customers added to the region: cxBenchHeavyOrders orders each,
	// with visits, offers, returns, contacts, wishes and carts to match.
	cxBenchHeavy       = 3
	cxBenchHeavyOrders = 300
)

// cxBenchRegion is a replica of a large region for store S01 with the
// co-purchase index, and the customers to look up.
type cxBenchRegion struct {
	store   *Store
	typical []string // spread evenly over the region
	most    []string // the region's customers with the most orders
	heavy   []string // the added heavy customers
	basket  []BasketLine
}

// BenchmarkCustomer360 measures Customer360 (and CrossSell) on a replica
// of a large demo region, one call at a time, and reports the p50, p99
// and slowest call in milliseconds, and the CPU time per call. The region
// is copied first (opening it as a replica adds the edge's tables and
// migrates it, which builds the co-purchase index of migration 0003),
// then given cxBenchHeavy customers of cxBenchHeavyOrders orders each.
// See docs/benchmarks.md, "Customer 360".
func BenchmarkCustomer360(b *testing.B) {
	r := cxOpenBenchRegion(b)
	ctx := context.Background()
	for _, set := range []struct {
		name string
		ids  []string
		call func(id string) error
	}{
		{"typical", r.typical, func(id string) error { _, err := r.store.Customer360(ctx, id); return err }},
		{"most-orders", r.most, func(id string) error { _, err := r.store.Customer360(ctx, id); return err }},
		{fmt.Sprintf("heavy-%d-orders", cxBenchHeavyOrders), r.heavy, func(id string) error { _, err := r.store.Customer360(ctx, id); return err }},
		{"cross-sell", r.typical, func(id string) error { _, err := r.store.CrossSell(ctx, id, r.basket); return err }},
	} {
		b.Run(set.name, func(b *testing.B) {
			// One untimed pass: a store's replica is read all day, so its
			// pages are in the OS cache.
			for _, id := range set.ids {
				if err := set.call(id); err != nil {
					b.Fatal(err)
				}
			}
			var lat []time.Duration
			cpu0 := cxCPUTime()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for j := range cxBenchCalls {
					id := set.ids[(i*cxBenchCalls+j)%len(set.ids)]
					t0 := time.Now()
					if err := set.call(id); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
			}
			b.StopTimer()
			cpu := cxCPUTime() - cpu0
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(1), "max-ms")
			b.ReportMetric(float64(cpu)/1e6/float64(len(lat)), "cpu-ms/call")
			b.ReportMetric(cxBenchCalls, "calls/op")
		})
	}
}

func cxOpenBenchRegion(b *testing.B) *cxBenchRegion {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	path := filepath.Join(dir, "replica.db")
	src := os.Getenv(cxBenchDBEnv)
	if src == "" {
		if _, err := os.Stat(cxBenchDefaultDB); err == nil {
			src = cxBenchDefaultDB
		}
	}
	customers := cxBenchFallbackCustomers
	if v := os.Getenv(cxBenchCustomersEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a number of customers", cxBenchCustomersEnv, v)
		}
		src, customers = "", n
	}
	t0 := time.Now()
	if src != "" {
		b.Logf("region: a copy of %s", src)
		for _, suffix := range []string{"", "-wal"} {
			if err := cxCopyFile(src+suffix, path+suffix); err != nil && !(suffix != "" && os.IsNotExist(err)) {
				b.Fatal(err)
			}
		}
	} else {
		b.Logf("region: generating %d customers with retail/demodata (20,000 take a few minutes); "+
			"set %s to a cmd/demodata database for the 1M-customer figures", customers, cxBenchDBEnv)
		db, err := retail.Open(ctx, path, retail.Options{Durability: retail.DurabilityNormal})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := demodata.Generate(ctx, db, demodata.Config{Customers: customers}, nil); err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
	b.Logf("region ready in %s", time.Since(t0).Round(time.Second))

	// The heavy customers, before the file becomes a replica. Opening it
	// migrates it (0003 adds the co-purchase index); an older schema
	// without that migration gets the index here.
	t0 = time.Now()
	db, err := retail.Open(ctx, path, retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("opened and migrated in %s", time.Since(t0).Round(time.Second))
	t0 = time.Now()
	if ok, err := hasCoPurchaseIndex(ctx, db); err != nil {
		b.Fatal(err)
	} else if !ok {
		if _, err := db.ExecContext(ctx, coPurchaseIndex); err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: %s", coPurchaseIndex, time.Since(t0).Round(time.Millisecond))
	}
	end, heavy, basket, err := cxAddHeavyCustomers(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	r := &cxBenchRegion{heavy: heavy, basket: basket}
	var maxRow int64
	if err := db.QueryRowContext(ctx, "SELECT max(rowid) FROM customers").Scan(&maxRow); err != nil {
		b.Fatal(err)
	}
	for i := range int64(500) {
		var id string
		if err := db.QueryRowContext(ctx, "SELECT id FROM customers WHERE rowid >= ? ORDER BY rowid LIMIT 1", 1+i*maxRow/500).Scan(&id); err != nil {
			b.Fatal(err)
		}
		r.typical = append(r.typical, id)
	}
	rows, err := db.QueryContext(ctx, `SELECT customer_id FROM orders WHERE customer_id IS NOT NULL AND customer_id NOT LIKE 'bench-%'
		GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 50`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		r.most = append(r.most, id)
	}
	rows.Close()
	var store string
	if err := db.QueryRowContext(ctx, "SELECT id FROM stores WHERE kind = 'store' ORDER BY id LIMIT 1").Scan(&store); err != nil {
		b.Fatal(err)
	}
	db.Close()

	rep, err := replication.OpenReplica(ctx, replication.ReplicaConfig{Path: path, Region: "bench", Edge: store})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rep.Close() })
	r.store, err = NewStore(StoreConfig{StoreID: store, Replica: rep, CouponKey: testKey, Now: func() time.Time { return end }})
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range []string{r.typical[0], r.most[0], r.heavy[0]} {
		c, err := r.store.Customer360(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: %d orders, %d visits, %d offers, %d returns, %d contacts, %d abandoned carts, %d wishes, %d co-purchases",
			id, c.Orders.Count, c.Visits.Count, c.Promotions.Offers, c.Returns.Returns, c.Service.Contacts, c.Carts.Count, len(c.WishList), len(c.AlsoBought))
	}
	return r
}

// cxCPUTime is the CPU time the process has used, user and system: on a
// machine busy with other work the wall-clock latencies include waiting
// for a core, this does not.
func cxCPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func cxCopyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// cxAddHeavyCustomers applies, through retail.Apply, cxBenchHeavy customers
// with cxBenchHeavyOrders orders each over the last two years in every
// channel, and as much of everything else: a visit per store order, an
// offer for every third order (answered), a return for every tenth, a
// service contact for every fifteenth, an abandoned cart for every
// sixth, ten wishes. It returns the region's end (its latest order) and
// the customers, and a basket of two of the most sold products.
func cxAddHeavyCustomers(ctx context.Context, db *retail.DB) (end time.Time, ids []string, basket []BasketLine, err error) {
	var endMs int64
	if err := db.QueryRowContext(ctx, "SELECT max(placed_at) FROM orders").Scan(&endMs); err != nil {
		return end, nil, nil, err
	}
	end = time.UnixMilli(endMs).UTC()
	list := func(q string) ([]string, error) {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, rows.Err()
	}
	skus, err := list("SELECT sku FROM products WHERE active = 1 ORDER BY sku LIMIT 40")
	if err != nil {
		return end, nil, nil, err
	}
	stores, err := list("SELECT id FROM stores WHERE kind = 'store' ORDER BY id")
	if err != nil {
		return end, nil, nil, err
	}
	var dc string
	if err := db.QueryRowContext(ctx, "SELECT id FROM stores WHERE kind = 'dc' ORDER BY id LIMIT 1").Scan(&dc); err != nil {
		return end, nil, nil, err
	}
	type promo struct {
		id           string
		starts, ends int64
	}
	var promos []promo
	rows, err := db.QueryContext(ctx, "SELECT id, starts_at, ends_at FROM promotions WHERE active = 1 AND type != 'sale_price' ORDER BY id")
	if err != nil {
		return end, nil, nil, err
	}
	for rows.Next() {
		var p promo
		rows.Scan(&p.id, &p.starts, &p.ends)
		promos = append(promos, p)
	}
	rows.Close()
	basket = []BasketLine{{skus[0], 1}, {skus[1], 2}}

	type cxStamped struct {
		at   int64
		body retail.Body
	}
	var muts []cxStamped
	add := func(at time.Time, b retail.Body) { muts = append(muts, cxStamped{at.UnixMilli(), b}) }
	start := end.AddDate(-2, 0, 0)
	for _, sku := range skus {
		add(start, &retail.AdjustStock{Location: dc, SKU: sku, Delta: 100_000, Reason: "received"})
	}
	step := end.Sub(start.Add(24*time.Hour)) / cxBenchHeavyOrders
	for h := range cxBenchHeavy {
		id := fmt.Sprintf("bench-heavy-%d", h+1)
		ids = append(ids, id)
		add(start, &retail.UpsertCustomer{ID: id, Name: fmt.Sprintf("Heavy Shopper %d", h+1), Phone: fmt.Sprintf("+1999000%04d", h),
			LoyaltyCard: fmt.Sprintf("BENCH-%d", h+1), Since: start.AddDate(-1, 0, 0), AcquiredVia: retail.AcquiredWalkIn,
			AcquiredStore: stores[0], HomeStore: stores[0], Contact: retail.Contact{Email: true, SMS: true}})
		for i := range cxBenchHeavyOrders {
			at := start.Add(time.Duration(i)*step + time.Duration(h)*time.Hour)
			st := stores[i%len(stores)]
			lines := []retail.Line{
				{SKU: skus[(i+h)%len(skus)], Qty: 1 + int64(i%3), UnitPriceCents: 1000 + int64(i%7)*250},
				{SKU: skus[(i*7+h+1)%len(skus)], Qty: 1, UnitPriceCents: 2500},
				{SKU: skus[(i*13+h+2)%len(skus)], Qty: 2, UnitPriceCents: 799},
			}
			o := retail.Order{ID: fmt.Sprintf("%s-o%03d", id, i), CustomerID: id, Lines: lines}
			_, _, total := o.Totals()
			switch i % 4 {
			case 0, 1:
				o.Channel, o.StoreID, o.ClerkID, o.Fulfilment, o.FulfilFrom = retail.ChannelStore, st, "bench-clerk", retail.CarryOut, st
				if i%4 == 1 {
					o.Channel = retail.ChannelKiosk
				}
				o.Tenders = []retail.Tender{{Kind: retail.TenderCash, AmountCents: total}}
				add(at.Add(-20*time.Minute), &retail.RecordVisit{ID: o.ID + "-v", CustomerID: id, StoreID: st, Method: retail.SignInCard})
				add(at, &retail.RecordSale{Order: o})
			default:
				o.Channel, o.Fulfilment, o.FulfilFrom, o.ShipAddress = retail.ChannelWeb, retail.ShipToHome, dc, "1 Bench St"
				if i%4 == 3 {
					o.Channel = retail.ChannelPhone
				}
				o.Tenders = []retail.Tender{{Kind: retail.TenderCard, AmountCents: total, CardToken: "tok-" + id}}
				add(at, &retail.PlaceOrder{Order: o})
				add(at.Add(48*time.Hour), &retail.FulfilOrder{OrderID: o.ID, Status: retail.OrderFulfilled})
			}
			if i%10 == 0 {
				add(at.Add(72*time.Hour), &retail.ReturnItems{ID: o.ID + "-r", OrderID: o.ID, CustomerID: id, StoreID: st, ClerkID: "bench-clerk",
					Reason: "did not fit", WithReceipt: true, Restock: true,
					Lines:  []retail.ReturnLine{{OrderLineNo: 1, SKU: lines[0].SKU, Qty: 1, RefundCents: lines[0].UnitPriceCents}},
					Refund: retail.Tender{Kind: o.Tenders[0].Kind, AmountCents: lines[0].UnitPriceCents, CardToken: o.Tenders[0].CardToken}})
			}
			if i%3 == 0 {
				for k := range promos {
					p := promos[(i+k)%len(promos)]
					if made := at.Add(-24 * time.Hour).UnixMilli(); p.starts <= made && at.Add(time.Hour).UnixMilli() < p.ends {
						oid := o.ID + "-of"
						add(at.Add(-24*time.Hour), &retail.MakeOffer{ID: oid, PromotionID: p.id, CustomerID: id, Channel: retail.OfferEmail})
						outcome := []retail.OfferOutcome{retail.OutcomeRedeemed, retail.OutcomeIgnored, retail.OutcomeExpired}[(i/3)%3]
						oc := &retail.RecordOfferOutcome{OfferID: oid, Outcome: outcome}
						if outcome == retail.OutcomeRedeemed {
							oc.OrderID = o.ID
						}
						add(at.Add(time.Hour), oc)
						break
					}
				}
			}
			if i%15 == 0 {
				add(at, &retail.RecordServiceContact{ID: o.ID + "-sc", CustomerID: id, Channel: retail.ContactPhone, Reason: "where is my parcel",
					Resolved: i%30 == 0})
			}
			if i%6 == 0 {
				cart := o.ID + "-cart"
				add(at.Add(-48*time.Hour), &retail.RecordCartEvent{ID: cart + "-1", CartID: cart, CustomerID: id, Channel: retail.ChannelWeb,
					Kind: retail.CartAdd, SKU: skus[(i+5)%len(skus)], Qty: 1, Step: retail.StepCart})
				add(at.Add(-47*time.Hour), &retail.RecordCartEvent{ID: cart + "-2", CartID: cart, CustomerID: id, Channel: retail.ChannelWeb,
					Kind: retail.CartCheckoutStep, Step: retail.StepPayment})
				add(at.Add(-46*time.Hour), &retail.RecordCartEvent{ID: cart + "-3", CartID: cart, CustomerID: id, Channel: retail.ChannelWeb,
					Kind: retail.CartAbandon, Step: retail.StepPayment})
			}
		}
		for k := range 10 {
			add(end.AddDate(0, 0, -k), &retail.AddWishItem{CustomerID: id, SKU: skus[(k*3+h)%len(skus)], Source: retail.WishApp})
		}
	}
	// The clerk the sales name, so they need no store's own clerk ids.
	muts = append([]cxStamped{{start.UnixMilli(), &retail.UpsertClerk{ID: "bench-clerk", StoreID: stores[0], Name: "Bench Clerk",
		Role: retail.RoleManager, PINHash: cxBenchPINHash, Active: true}}}, muts...)
	err = db.Update(ctx, func(tx *retail.Tx) error {
		for i, m := range muts {
			res, err := retail.Apply(ctx, tx, retail.Mutation{ID: retail.MutationID{Origin: "bench", Seq: uint64(i + 1)},
				HLC: retail.HLC{Wall: m.at}, Actor: retail.Actor{Kind: "system", ID: "bench"}, Body: m.body})
			if err != nil {
				return err
			}
			if res.Status == retail.StatusRejected {
				return fmt.Errorf("heavy customers: %s %s rejected: %s", m.body.Type(), time.UnixMilli(m.at).UTC(), res.Reason)
			}
		}
		return nil
	})
	return end, ids, basket, err
}

// cxBenchPINHash is a PIN hash in retail.HashPIN's format (the PIN is 4321).
const cxBenchPINHash = "pbkdf2-sha256$120000$YTEYUsIphQ+oVjZW1niXcQ$DpLU03SVz+IToKby8isa9CbkffF1UKtOZRBt7+jBxJE"
