package edge

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

// ordDated is a mutation the hub applied at a time of its own.
type ordDated struct {
	at   time.Time
	body retail.Body
}

// ordDaysAgo is body applied by the hub days before scenario.T0.
func ordDaysAgo(days int, body retail.Body) ordDated {
	return ordDated{at: scenario.T0.AddDate(0, 0, -days), body: body}
}

// ordSeedAt is when the region's seed was applied: an hour before T0, so
// the replica's newest change from the hub is an hour old at T0.
var ordSeedAt = scenario.T0.Add(-time.Hour)

// orderRegion is a hub database and store S1's replica following it,
// with the clock at scenario.T0 and no broker: the store is offline, as
// in most of these tests. The hub applies mutations at times of their
// own, so orders can be weeks old.
type orderRegion struct {
	t   testing.TB
	hub *retail.DB
	seq uint64
	r   *replication.Replica
	s   *Store
}

// newOrderRegion makes the region: scenario.Seed at ordSeedAt, then hist in
// order (each must be accepted or flagged).
func newOrderRegion(t testing.TB, hist ...ordDated) *orderRegion {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	hub, err := retail.Open(ctx, filepath.Join(dir, "hub.db"), retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	r, err := replication.OpenReplica(ctx, replication.ReplicaConfig{Path: filepath.Join(dir, "replica.db"), Region: "test", Edge: "S1",
		Clock: &retail.Clock{Now: func() time.Time { return scenario.T0 }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	s, err := NewStore(StoreConfig{StoreID: "S1", Replica: r, CouponKey: testKey, Now: func() time.Time { return scenario.T0 }})
	if err != nil {
		t.Fatal(err)
	}
	g := &orderRegion{t: t, hub: hub, r: r, s: s}
	var all []ordDated
	for _, b := range scenario.Seed() {
		all = append(all, ordDated{at: ordSeedAt, body: b})
	}
	all = append(all, hist...)
	var ms []retail.Mutation
	for i, d := range all {
		ms = append(ms, retail.Mutation{ID: retail.MutationID{Origin: "hub", Seq: uint64(i + 1)}, HLC: retail.HLC{Wall: d.at.UnixMilli()},
			Actor: scenario.System, Body: d.body})
	}
	g.hubApply(ms...)
	return g
}

// hubApply applies ms on the hub, in one transaction, and feeds the
// changes to the replica as the change feed would. It returns the results.
func (g *orderRegion) hubApply(ms ...retail.Mutation) []retail.Result {
	g.t.Helper()
	ctx := context.Background()
	var feed []replication.Change
	var out []retail.Result
	err := g.hub.Update(ctx, func(tx *retail.Tx) error {
		for _, m := range ms {
			res, err := retail.Apply(ctx, tx, m)
			if err != nil {
				return err
			}
			if res.Status == retail.StatusRejected && m.ID.Origin == "hub" {
				return fmt.Errorf("history %s (%s): %s", m.ID, m.Body.Type(), res.Reason)
			}
			g.seq++
			feed = append(feed, replication.Change{Seq: g.seq, MutationID: m.ID.String(), Status: res.Status, Changes: res.Changes})
			out = append(out, res)
		}
		return nil
	})
	if err != nil {
		g.t.Fatal(err)
	}
	if _, err := g.r.ApplyFeed(ctx, feed, true); err != nil {
		g.t.Fatal(err)
	}
	return out
}

// upload takes the replica's outbox to the hub, as the sync worker would.
func (g *orderRegion) upload() []retail.Result {
	g.t.Helper()
	ps, err := g.r.Pending(context.Background(), 0, 1000, false)
	if err != nil {
		g.t.Fatal(err)
	}
	var ms []retail.Mutation
	for _, p := range ps {
		m, err := retail.Decode(p.Raw)
		if err != nil {
			g.t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return g.hubApply(ms...)
}

// ordSnapshot is what a refused operation must leave as it was.
type ordSnapshot struct {
	pending int
	rows    string
}

// state counts the outbox and the rows of the tables an operation writes.
func (g *orderRegion) state() ordSnapshot {
	g.t.Helper()
	ctx := context.Background()
	st, err := g.r.Status(ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	var rows []string
	for _, tbl := range []string{"orders", "order_lines", "order_tenders", "order_coupons", "returns", "return_lines", "exceptions", "applied_mutations"} {
		var n int
		g.query("SELECT count(*) FROM "+tbl, &n)
		rows = append(rows, fmt.Sprintf("%s=%d", tbl, n))
	}
	var stock, reserved int64
	g.query("SELECT coalesce(sum(on_hand), 0), coalesce(sum(reserved), 0) FROM inventory", &stock, &reserved)
	var redeemed int
	g.query("SELECT count(*) FROM coupons WHERE redeemed_at IS NOT NULL", &redeemed)
	rows = append(rows, fmt.Sprintf("on_hand=%d reserved=%d redeemed=%d", stock, reserved, redeemed))
	return ordSnapshot{pending: st.Pending, rows: strings.Join(rows, " ")}
}

// unchanged fails unless the replica is as before: nothing half-written.
func (g *orderRegion) unchanged(before ordSnapshot) {
	g.t.Helper()
	if after := g.state(); after != before {
		g.t.Fatalf("a refusal changed the replica:\nbefore %+v\nafter  %+v", before, after)
	}
}

func (g *orderRegion) query(q string, dest ...any) {
	g.t.Helper()
	db, done := g.r.DB()
	defer done()
	if err := db.QueryRowContext(context.Background(), q).Scan(dest...); err != nil {
		g.t.Fatalf("%s: %v", q, err)
	}
}

// coupon issues a signed code of promotion to customer (valid until
// expires) and the mutation that records it.
func ordCoupon(promotion, customer string, expires time.Time) (string, *retail.IssueCoupon) {
	code := couponSigner{key: testKey}.issue(promotion, customer, expires)
	return code, &retail.IssueCoupon{Code: code, OfferID: "offer-" + code, PromotionID: promotion, CustomerID: customer,
		Channel: retail.OfferStoreSignIn, StoreID: "S1", ExpiresAt: expires}
}

func ordPromotion(id string, typ retail.PromotionType, value int64, sku, category string, minOrder retail.Cents) *retail.UpsertPromotion {
	return &retail.UpsertPromotion{ID: id, Name: id, PromoType: typ, Value: value, SKU: sku, Category: category,
		Audience: retail.AudienceAll, MinOrderCents: minOrder, StartsAt: scenario.T0.AddDate(-1, 0, 0), EndsAt: scenario.T0.AddDate(1, 0, 0), Active: true}
}

func ordCash(c retail.Cents) []retail.Tender {
	return []retail.Tender{{Kind: retail.TenderCash, AmountCents: c}}
}
func ordCard(c retail.Cents, token string) []retail.Tender {
	return []retail.Tender{{Kind: retail.TenderCard, AmountCents: c, CardToken: token}}
}

const (
	shoeBarcode = "4006381333931" // SKU-1, 80.00, category shoes
	sockBarcode = "012345678905"  // SKU-2, 12.00, category socks
)

func TestSale(t *testing.T) {
	ctx := context.Background()
	year := scenario.T0.AddDate(1, 0, 0)
	codes := map[string]string{}
	var hist []ordDated
	for _, c := range []struct{ name, promo, customer string }{
		{"ten", "P10", "cust-1"}, {"shoes15", "P15", "cust-1"}, {"socks10", "PSALE", "cust-1"}, {"ship", "PSHIP", "cust-1"},
		{"later", "PFUT", "cust-1"}, {"min", "PMIN", "cust-1"}, {"jackets", "PJACKET", "cust-1"}, {"used", "P10", "cust-1"},
		{"hers", "P10", "cust-2"},
	} {
		code, issue := ordCoupon(c.promo, c.customer, year)
		codes[c.name] = code
		hist = append(hist, ordDaysAgo(20, issue))
	}
	expired, issueExpired := ordCoupon("P10", "cust-1", scenario.T0.AddDate(0, 0, -2))
	codes["expired"] = expired
	forged := []byte(codes["ten"])
	if forged[5] == 'A' { // one character changed, to another a code may hold
		forged[5] = 'B'
	} else {
		forged[5] = 'A'
	}
	codes["forged"] = string(forged)
	used := scenario.Sale("ord-used", "S2", "cust-1", 1, codes["used"])
	promos := []ordDated{
		ordDaysAgo(30, ordPromotion("P15", retail.PromoPercentOff, 1500, "", "shoes", 0)),
		ordDaysAgo(30, ordPromotion("PSALE", retail.PromoSalePrice, 1000, "SKU-2", "", 0)),
		ordDaysAgo(30, ordPromotion("PSHIP", retail.PromoFreeShipping, 0, "", "", 0)),
		ordDaysAgo(30, ordPromotion("PFUT", retail.PromoFuturePercentOff, 2000, "", "", 0)),
		ordDaysAgo(30, ordPromotion("PMIN", retail.PromoAmountOff, 500, "", "", 20000)),
		ordDaysAgo(30, ordPromotion("PJACKET", retail.PromoAmountOff, 500, "", "jackets", 0)),
	}
	hist = append(append(promos, hist...), ordDaysAgo(30, issueExpired), ordDaysAgo(10, used))
	// cust-2 has 12.00 of store credit from a return without an order.
	hist = append(hist, ordDaysAgo(5, ordNoOrderReturn("ret-credit", "cust-2")))
	credit := func(c retail.Cents) retail.Tender {
		return retail.Tender{Kind: retail.TenderStoreCredit, AmountCents: c}
	}

	shoe := ItemLine{Barcode: shoeBarcode}
	socks := func(n int64) ItemLine { return ItemLine{SKU: "SKU-2", Qty: n} }
	for _, tc := range []struct {
		name     string
		req      SaleRequest
		want     error
		subtotal retail.Cents
		discount retail.Cents
	}{
		{name: "scans and keyed SKU, same product merged, cash",
			req:      SaleRequest{Lines: []ItemLine{shoe, socks(2), shoe}, Tenders: ordCash(18400)},
			subtotal: 18400},
		{name: "shopper signed in, card",
			req:      SaleRequest{CustomerID: "cust-2", Lines: []ItemLine{{Barcode: sockBarcode}}, Tenders: ordCard(1200, "tok-x")},
			subtotal: 1200},
		{name: "split tender", req: SaleRequest{Lines: []ItemLine{shoe}, Tenders: append(ordCard(5000, "tok-x"), ordCash(3000)...)}, subtotal: 8000},
		{name: "gift card", req: SaleRequest{Lines: []ItemLine{shoe}, Tenders: []retail.Tender{{Kind: retail.TenderGiftCard, AmountCents: 8000, CardToken: "gc-7731"}}},
			subtotal: 8000},
		{name: "her store credit and cash", req: SaleRequest{CustomerID: "cust-2", Lines: []ItemLine{shoe}, Tenders: append([]retail.Tender{credit(1200)}, ordCash(6800)...)},
			subtotal: 8000},
		{name: "amount off", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["ten"]}, Tenders: ordCard(7000, "tok-1")},
			subtotal: 8000, discount: 1000},
		{name: "percent off its category only",
			req:      SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe, socks(1)}, Coupons: []string{codes["shoes15"]}, Tenders: ordCash(8000)},
			subtotal: 9200, discount: 1200},
		{name: "sale price for its SKU",
			req:      SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{socks(3), shoe}, Coupons: []string{codes["socks10"]}, Tenders: ordCash(11000)},
			subtotal: 11600, discount: 600},
		{name: "two coupons", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["shoes15"], codes["ten"]},
			Tenders: ordCash(5800)}, subtotal: 8000, discount: 2200},

		{name: "unknown barcode", req: SaleRequest{Lines: []ItemLine{{Barcode: "999"}}, Tenders: ordCash(0)}, want: ErrUnknownProduct},
		{name: "unknown SKU", req: SaleRequest{Lines: []ItemLine{{SKU: "SKU-NOPE"}}, Tenders: ordCash(0)}, want: ErrUnknownProduct},
		{name: "neither barcode nor SKU", req: SaleRequest{Lines: []ItemLine{{Qty: 1}}, Tenders: ordCash(0)}, want: ErrInvalid},
		{name: "negative quantity", req: SaleRequest{Lines: []ItemLine{{SKU: "SKU-2", Qty: -1}}, Tenders: ordCash(0)}, want: ErrInvalid},
		{name: "empty basket", req: SaleRequest{Tenders: ordCash(0)}, want: ErrEmptyBasket},
		{name: "tenders short", req: SaleRequest{Lines: []ItemLine{shoe}, Tenders: ordCash(7999)}, want: ErrInvalid},
		{name: "tenders over", req: SaleRequest{Lines: []ItemLine{shoe}, Tenders: append(ordCash(8000), ordCash(1)...)}, want: ErrInvalid},
		{name: "card without token", req: SaleRequest{Lines: []ItemLine{shoe}, Tenders: ordCard(8000, "")}, want: ErrInvalid},
		{name: "gift card without its token", req: SaleRequest{Lines: []ItemLine{shoe}, Tenders: []retail.Tender{{Kind: retail.TenderGiftCard, AmountCents: 8000}}},
			want: ErrInvalid},
		{name: "cash with a card token", req: SaleRequest{Lines: []ItemLine{shoe}, Tenders: []retail.Tender{{Kind: retail.TenderCash, AmountCents: 8000, CardToken: "x"}}},
			want: ErrInvalid},
		{name: "a tender kind the till does not know", req: SaleRequest{Lines: []ItemLine{shoe}, Tenders: []retail.Tender{{Kind: "cheque", AmountCents: 8000}}},
			want: ErrInvalid},
		{name: "store credit over her balance", req: SaleRequest{CustomerID: "cust-2", Lines: []ItemLine{shoe}, Tenders: []retail.Tender{credit(8000)}},
			want: ErrNoCredit},
		{name: "store credit without a shopper", req: SaleRequest{Lines: []ItemLine{{Barcode: sockBarcode}}, Tenders: []retail.Tender{credit(1200)}},
			want: ErrInvalid},
		{name: "another shopper's store credit", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{{Barcode: sockBarcode}}, Tenders: []retail.Tender{credit(1200)}},
			want: ErrNoCredit},
		{name: "no clerk", req: SaleRequest{ClerkID: "-", Lines: []ItemLine{shoe}, Tenders: ordCash(8000)}, want: ErrInvalid},
		{name: "unknown clerk", req: SaleRequest{ClerkID: "nobody", Lines: []ItemLine{shoe}, Tenders: ordCash(8000)}, want: ErrUnknownClerk},
		{name: "unknown customer", req: SaleRequest{CustomerID: "cust-404", Lines: []ItemLine{shoe}, Tenders: ordCash(8000)}, want: ErrUnknownCustomer},
		{name: "coupon without a shopper", req: SaleRequest{Lines: []ItemLine{shoe}, Coupons: []string{codes["ten"]}, Tenders: ordCash(7000)}, want: ErrInvalid},
		{name: "forged coupon", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["forged"]}, Tenders: ordCash(7000)},
			want: ErrForgedCoupon},
		{name: "expired coupon", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["expired"]}, Tenders: ordCash(7000)},
			want: ErrCouponExpired},
		{name: "coupon already used", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["used"]}, Tenders: ordCash(7000)},
			want: ErrCouponUsed},
		{name: "another shopper's coupon", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["hers"]}, Tenders: ordCash(7000)},
			want: ErrCouponNotHers},
		{name: "coupon twice", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["ten"], codes["ten"]}, Tenders: ordCash(6000)},
			want: ErrInvalid},
		{name: "free shipping at the till", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["ship"]}, Tenders: ordCash(8000)},
			want: ErrCouponNotApplicable},
		{name: "future percent off", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["later"]}, Tenders: ordCash(8000)},
			want: ErrCouponNotApplicable},
		{name: "minimum order not reached", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["min"]}, Tenders: ordCash(7500)},
			want: ErrCouponNotApplicable},
		{name: "category not in the basket", req: SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["jackets"]}, Tenders: ordCash(7500)},
			want: ErrCouponNotApplicable},
		{name: "discount right, tenders pay the undiscounted total",
			req:  SaleRequest{CustomerID: "cust-1", Lines: []ItemLine{shoe}, Coupons: []string{codes["ten"]}, Tenders: ordCash(8000)},
			want: ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newOrderRegion(t, hist...)
			switch tc.req.ClerkID {
			case "":
				tc.req.ClerkID = "clerk-S1"
			case "-":
				tc.req.ClerkID = ""
			}
			before := g.state()
			var onHand int64
			g.query("SELECT coalesce(sum(on_hand), 0) FROM inventory WHERE location_id = 'S1'", &onHand)
			res, err := g.s.Sale(ctx, tc.req)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Sale: %v, want %v", err, tc.want)
				}
				var e *Error
				if !errors.As(err, &e) || e.Message == "" {
					t.Fatalf("%v is not an *Error with a message", err)
				}
				t.Logf("refused: %s", e.Message)
				g.unchanged(before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			total := tc.subtotal - tc.discount
			if res.SubtotalCents != tc.subtotal || res.DiscountCents != tc.discount || res.TotalCents != total {
				t.Fatalf("totals %d - %d = %d, want %d - %d = %d", res.SubtotalCents, res.DiscountCents, res.TotalCents, tc.subtotal, tc.discount, total)
			}
			if res.Status != retail.StatusAccepted || len(res.Exceptions) > 0 {
				t.Fatalf("status %s %v, want accepted", res.Status, res.Exceptions)
			}
			if after := g.state(); after.pending != before.pending+1 {
				t.Fatalf("outbox %d, want %d", after.pending, before.pending+1)
			}
			var dbTotal retail.Cents
			var status, channel, store string
			g.query("SELECT total_cents, status, channel, store_id FROM orders WHERE id = '"+res.OrderID+"'", &dbTotal, &status, &channel, &store)
			if dbTotal != total || status != "completed" || channel != "store" || store != "S1" {
				t.Fatalf("order row: %d %s %s %s", dbTotal, status, channel, store)
			}
			var sold int64
			for _, l := range res.Receipt.Lines {
				sold += l.Qty
			}
			var after int64
			g.query("SELECT coalesce(sum(on_hand), 0) FROM inventory WHERE location_id = 'S1'", &after)
			if onHand-after != sold {
				t.Fatalf("stock at S1 fell by %d, %d sold", onHand-after, sold)
			}
			rc := res.Receipt
			if rc.Kind != "sale" || rc.ID != res.OrderID || rc.StoreName != "Store S1" || rc.TotalCents != total || len(rc.Coupons) != len(tc.req.Coupons) ||
				len(rc.Tenders) != len(tc.req.Tenders) || rc.Policy == "" {
				t.Fatalf("receipt %+v", rc)
			}
			var onReceipt retail.Cents
			for _, c := range rc.Coupons {
				onReceipt += c.DiscountCents
			}
			if onReceipt != tc.discount {
				t.Fatalf("receipt coupons %+v, want %d off", rc.Coupons, tc.discount)
			}
		})
	}
}

// The sale redeems the coupon and records the offer's outcome in the
// same mutation; the hub accepts it as written.
func TestSaleRedeemsCouponAndOffer(t *testing.T) {
	ctx := context.Background()
	code, issue := ordCoupon("P10", "cust-1", scenario.T0.AddDate(0, 1, 0))
	g := newOrderRegion(t, ordDaysAgo(3, issue))
	res, err := g.s.Sale(ctx, SaleRequest{ClerkID: "clerk-S1", CustomerID: "cust-1", Lines: []ItemLine{{Barcode: shoeBarcode}},
		Coupons: []string{code}, Tenders: ordCard(7000, "tok-1")})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		var order, store, outcome, outcomeOrder, use string
		var discount retail.Cents
		g.query("SELECT redeemed_order_id, redeemed_store FROM coupons WHERE code = '"+code+"'", &order, &store)
		g.query("SELECT outcome, outcome_order_id FROM offers WHERE id = 'offer-"+code+"'", &outcome, &outcomeOrder)
		g.query("SELECT status, discount_cents FROM order_coupons WHERE code = '"+code+"'", &use, &discount)
		if order != res.OrderID || store != "S1" || outcome != "redeemed" || outcomeOrder != res.OrderID || use != "redeemed" || discount != 1000 {
			t.Fatalf("%s: coupon redeemed by %s at %s, offer %s with %s, use %s %d", when, order, store, outcome, outcomeOrder, use, discount)
		}
	}
	check("on the replica")
	if _, err := g.s.Sale(ctx, SaleRequest{ClerkID: "clerk-S1", CustomerID: "cust-1", Lines: []ItemLine{{Barcode: shoeBarcode}},
		Coupons: []string{code}, Tenders: ordCard(7000, "tok-1")}); !errors.Is(err, ErrCouponUsed) {
		t.Fatalf("second use: %v", err)
	}
	results := g.upload()
	if len(results) != 1 || results[0].Status != retail.StatusAccepted {
		t.Fatalf("hub: %+v", results)
	}
	check("after the hub applied it")
	if st, _ := g.r.Status(ctx); st.Pending != 0 || st.Attention != 0 {
		t.Fatalf("after sync: %+v", st)
	}
}
