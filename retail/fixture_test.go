package retail

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// mustOpen opens a fresh region database in a temp dir and closes it at cleanup.
func mustOpen(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(context.Background(), filepath.Join(tb.TempDir(), "region.db"), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// region is a small test region: stores S1 and S2, distribution centre
// DC1, an associate and a manager, two customers, three products with
// stock, and a running promotion. Mutations get ids "test/1", "test/2", …
// and the region's clock, which tests move with advance.
type region struct {
	tb  testing.TB
	db  *DB
	seq uint64
	now time.Time
}

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func newRegion(tb testing.TB) *region {
	tb.Helper()
	r := &region{tb: tb, db: mustOpen(tb), now: t0}
	for _, b := range baseRegion(tb) {
		r.mustAccept(b)
	}
	return r
}

func baseRegion(tb testing.TB) []Body {
	hash, err := hashPIN("4321", []byte("fixed-salt-16byt"), 1000)
	if err != nil {
		tb.Fatal(err)
	}
	return []Body{
		&UpsertStore{ID: "S1", Kind: KindStore, Name: "Main St", Region: "west", Timezone: "America/Los_Angeles"},
		&UpsertStore{ID: "S2", Kind: KindStore, Name: "Mall", Region: "west"},
		&UpsertStore{ID: "DC1", Kind: KindDC, Name: "West DC", Region: "west"},
		&UpsertClerk{ID: "assoc", StoreID: "S1", Name: "Ann", Role: RoleAssociate, PINHash: hash, Active: true},
		&UpsertClerk{ID: "mgr", StoreID: "S1", Name: "Meg", Role: RoleManager, PINHash: hash, Active: true},
		&UpsertProduct{SKU: "SKU-1", Name: "Trail shoe", Category: "shoes", PriceCents: 8000, Active: true, Barcodes: []string{"4006381333931"}},
		&UpsertProduct{SKU: "SKU-2", Name: "Socks", Category: "socks", PriceCents: 1200, Active: true, Barcodes: []string{"012345678905"}},
		&UpsertProduct{SKU: "SKU-3", Name: "Insoles", Category: "accessories", PriceCents: 2500, Active: true, Complements: []string{"SKU-1"}},
		&UpsertCustomer{ID: "cust-1", Name: "Dana", Phone: "+15550001", LoyaltyCard: "LC-0001", Since: t0.AddDate(-2, 0, 0),
			AcquiredVia: AcquiredReferral, AcquiredBy: "cust-0", AcquiredStore: "S1", HomeStore: "S1", Contact: Contact{Email: true, Push: true}},
		&UpsertCustomer{ID: "cust-2", Name: "Eli", Phone: "+15550002", LoyaltyCard: "LC-0002", Since: t0.AddDate(-1, 0, 0),
			AcquiredVia: AcquiredWalkIn, AcquiredBy: "assoc", AcquiredStore: "S2"},
		&AdjustStock{Location: "S1", SKU: "SKU-1", Delta: 5, Reason: "received"},
		&AdjustStock{Location: "S1", SKU: "SKU-2", Delta: 20, Reason: "received"},
		&AdjustStock{Location: "S2", SKU: "SKU-1", Delta: 1, Reason: "received"},
		&AdjustStock{Location: "DC1", SKU: "SKU-1", Delta: 2, Reason: "received"},
		&AdjustStock{Location: "DC1", SKU: "SKU-3", Delta: 10, Reason: "received"},
		&UpsertPromotion{ID: "P10", Name: "$10 off", PromoType: PromoAmountOff, Value: 1000, Audience: AudienceAll,
			StartsAt: t0.AddDate(0, 0, -1), EndsAt: t0.AddDate(0, 1, 0), Active: true},
	}
}

func (r *region) mutation(b Body) Mutation {
	r.seq++
	return Mutation{ID: MutationID{Origin: "test", Seq: r.seq}, HLC: HLC{Wall: r.now.UnixMilli()}, Actor: Actor{Kind: "clerk", ID: "assoc"}, Body: b}
}

// apply applies b in its own transaction and returns the result.
func (r *region) apply(b Body) Result {
	r.tb.Helper()
	return r.applyMutation(r.mutation(b))
}

func (r *region) applyMutation(m Mutation) Result {
	r.tb.Helper()
	var res Result
	err := r.db.Update(context.Background(), func(tx *Tx) error {
		var err error
		res, err = Apply(context.Background(), tx, m)
		return err
	})
	if err != nil {
		r.tb.Fatalf("apply %T: %v", m.Body, err)
	}
	return res
}

func (r *region) mustAccept(b Body) Result {
	r.tb.Helper()
	res := r.apply(b)
	if res.Status != StatusAccepted {
		r.tb.Fatalf("%s: want accepted, got %s %s %s %+v", b.Type(), res.Status, res.Code, res.Reason, res.Exceptions)
	}
	return res
}

func (r *region) advance(d time.Duration) { r.now = r.now.Add(d) }

// int runs a query that returns one integer.
func (r *region) int(query string, args ...any) int64 {
	r.tb.Helper()
	var n int64
	if err := r.db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		r.tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func (r *region) str(query string, args ...any) string {
	r.tb.Helper()
	var s string
	if err := r.db.QueryRowContext(context.Background(), query, args...).Scan(&s); err != nil {
		r.tb.Fatalf("%s: %v", query, err)
	}
	return s
}

func (r *region) onHand(loc, sku string) int64 {
	return r.int("SELECT coalesce((SELECT on_hand FROM inventory WHERE location_id = ? AND sku = ?), 0)", loc, sku)
}

func (r *region) reserved(loc, sku string) int64 {
	return r.int("SELECT coalesce((SELECT reserved FROM inventory WHERE location_id = ? AND sku = ?), 0)", loc, sku)
}

// sale is a till sale at S1 of the given lines, paid by card.
func sale(id, customer string, lines ...Line) *RecordSale {
	o := Order{ID: id, CustomerID: customer, Channel: ChannelStore, StoreID: "S1", ClerkID: "assoc", Fulfilment: CarryOut, Lines: lines}
	_, _, total := o.Totals()
	o.Tenders = []Tender{{Kind: TenderCard, AmountCents: total, CardToken: "tok-" + customer}}
	return &RecordSale{Order: o}
}

// withCoupon adds a coupon use to a sale and re-balances its tender.
func withCoupon(s *RecordSale, code string, off Cents) *RecordSale {
	s.Coupons = append(s.Coupons, CouponUse{Code: code, DiscountCents: off})
	_, _, total := s.Totals()
	s.Tenders[0].AmountCents = total
	return s
}

// kioskOrder is an endless-aisle order shipped from DC1 to cust-1's home.
func kioskOrder(id string, lines ...Line) *PlaceOrder {
	o := Order{ID: id, CustomerID: "cust-1", Channel: ChannelKiosk, StoreID: "S1", Fulfilment: ShipToHome,
		FulfilFrom: "DC1", ShipAddress: "1 Elm St", Lines: lines}
	_, _, total := o.Totals()
	o.Tenders = []Tender{{Kind: TenderCard, AmountCents: total, CardToken: "tok-cust-1"}}
	return &PlaceOrder{Order: o}
}

func coupon(code, customer string, expires time.Time) *IssueCoupon {
	return &IssueCoupon{Code: code, OfferID: "offer-" + code, PromotionID: "P10", CustomerID: customer,
		Channel: OfferStoreSignIn, StoreID: "S1", ExpiresAt: expires}
}
