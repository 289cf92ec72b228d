package edge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

// cxStamped is a mutation and when it happened (its HLC wall time).
type cxStamped struct {
	at   time.Time
	body retail.Body
}

// cxAgo is n days before scenario.T0, to the millisecond (what the
// database keeps).
func cxAgo(n float64) time.Time {
	return scenario.T0.Add(-time.Duration(math.Round(n*24*60*60*1000)) * time.Millisecond)
}

// cxDaysAgo stamps bodies n days before scenario.T0.
func cxDaysAgo(n float64, bodies ...retail.Body) []cxStamped {
	at := cxAgo(n)
	out := make([]cxStamped, len(bodies))
	for i, b := range bodies {
		out[i] = cxStamped{at, b}
	}
	return out
}

// cxHistoryStore is testStore for histories that span time: scenario.Seed
// at T0, then extra, each at its own time, applied as the hub would and
// followed by the replica through the feed. Without coPurchaseIdx the
// replica lacks the co-purchase index, as before migration 0003.
func cxHistoryStore(t testing.TB, coPurchaseIdx bool, extra ...[]cxStamped) (*Store, *replication.Replica) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	hub, err := retail.Open(ctx, filepath.Join(dir, "hub.db"), retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	var all []cxStamped
	for _, b := range scenario.Seed() {
		all = append(all, cxStamped{scenario.T0, b})
	}
	for _, e := range extra {
		all = append(all, e...)
	}
	var feed []replication.Change
	err = hub.Update(ctx, func(tx *retail.Tx) error {
		for i, m := range all {
			mut := retail.Mutation{ID: retail.MutationID{Origin: "hub", Seq: uint64(i + 1)}, HLC: retail.HLC{Wall: m.at.UnixMilli()},
				Actor: scenario.System, Body: m.body}
			res, err := retail.Apply(ctx, tx, mut)
			if err != nil {
				return err
			}
			if res.Status == retail.StatusRejected {
				return fmt.Errorf("mutation %d (%s): %s", i+1, m.body.Type(), res.Reason)
			}
			feed = append(feed, replication.Change{Seq: uint64(i + 1), MutationID: mut.ID.String(), Status: res.Status, Changes: res.Changes})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := replication.OpenReplica(ctx, replication.ReplicaConfig{Path: filepath.Join(dir, "replica.db"), Region: "test", Edge: "S1",
		Clock: &retail.Clock{Now: func() time.Time { return scenario.T0 }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := r.ApplyFeed(ctx, feed, true); err != nil {
		t.Fatal(err)
	}
	if !coPurchaseIdx {
		// A replica from before migration 0003.
		db, done := r.DB()
		_, err := db.ExecContext(ctx, "DROP INDEX order_lines_sku")
		done()
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewStore(StoreConfig{StoreID: "S1", Replica: r, CouponKey: testKey, Now: func() time.Time { return scenario.T0 }})
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

func cxLine(sku string, qty, price int64) retail.Line {
	return retail.Line{SKU: sku, Qty: qty, UnitPriceCents: price}
}

// cxTill is a sale at store's till (channel store or kiosk), paid in cash
// or, with a card token, by card.
func cxTill(id, store, customer string, ch retail.Channel, card string, lines ...retail.Line) *retail.RecordSale {
	o := retail.Order{ID: id, CustomerID: customer, Channel: ch, StoreID: store, ClerkID: "clerk-" + store,
		Fulfilment: retail.CarryOut, FulfilFrom: store, Lines: lines}
	_, _, total := o.Totals()
	o.Tenders = []retail.Tender{{Kind: retail.TenderCash, AmountCents: total}}
	if card != "" {
		o.Tenders = []retail.Tender{{Kind: retail.TenderCard, AmountCents: total, CardToken: card}}
	}
	return &retail.RecordSale{Order: o}
}

// cxShipped is a web or phone order shipped from DC1, paid by card.
func cxShipped(id, customer string, ch retail.Channel, card string, lines ...retail.Line) *retail.PlaceOrder {
	o := retail.Order{ID: id, CustomerID: customer, Channel: ch, Fulfilment: retail.ShipToHome, FulfilFrom: "DC1",
		ShipAddress: "1 Main St", Lines: lines}
	_, _, total := o.Totals()
	o.Tenders = []retail.Tender{{Kind: retail.TenderCard, AmountCents: total, CardToken: card}}
	return &retail.PlaceOrder{Order: o}
}

func cxCustomer(id, name, phone, card string, since time.Time, via retail.Acquisition, by string) *retail.UpsertCustomer {
	return &retail.UpsertCustomer{ID: id, Name: name, Phone: phone, LoyaltyCard: card, Since: since,
		AcquiredVia: via, AcquiredBy: by, AcquiredStore: "S1", HomeStore: "S1", Contact: retail.Contact{Email: true}}
}

func cxReturn(id, order, customer string, line int64, sku string, qty, refund int64) *retail.ReturnItems {
	return &retail.ReturnItems{ID: id, OrderID: order, CustomerID: customer, StoreID: "S1", ClerkID: "clerk-S1", Reason: "changed mind",
		WithReceipt: true, Restock: true, Lines: []retail.ReturnLine{{OrderLineNo: line, SKU: sku, Qty: qty, RefundCents: refund}},
		Refund: retail.Tender{Kind: retail.TenderCash, AmountCents: refund}}
}

func cxReturnNoOrder(id, customer, sku string, refund int64) *retail.ReturnItems {
	return &retail.ReturnItems{ID: id, CustomerID: customer, StoreID: "S1", ClerkID: "clerk-S1", Reason: "no receipt",
		Lines: []retail.ReturnLine{{SKU: sku, Qty: 1, RefundCents: refund}}, Refund: retail.Tender{Kind: retail.TenderStoreCredit, AmountCents: refund}}
}

func cxBool(b bool) *bool { return &b }

// Ann's region. Ann (cust-ann), referred by Customer 1 400 days ago, has
// shopped in all four channels; other shoppers bought what she bought;
// returners for the high-maintenance rules. Every figure the tests assert
// follows from this list; the comments give the arithmetic.
func annRegion() [][]cxStamped {
	T := scenario.T0
	catalogue := cxDaysAgo(500,
		&retail.UpsertProduct{SKU: "SKU-LACE", Name: "Laces", Category: "accessories", PriceCents: 500, Active: true},
		&retail.UpsertProduct{SKU: "SKU-BAG", Name: "Shoe bag", Category: "accessories", PriceCents: 1500, Active: true},
		&retail.UpsertProduct{SKU: "SKU-WAX", Name: "Shoe wax", Category: "accessories", PriceCents: 700, Active: true},
		&retail.UpsertProduct{SKU: "SKU-TEE", Name: "T-shirt", Category: "shirts", PriceCents: 2000, Active: true},
		&retail.UpsertProduct{SKU: "SKU-GONE", Name: "Old cap", Category: "hats", PriceCents: 900, Active: false},
		&retail.UpsertProduct{SKU: "SKU-HAT", Name: "Sun hat", Category: "hats", PriceCents: 2500, Active: true, Complements: []string{"SKU-BAG"}},
		// The trail shoe goes with socks (she has them), laces (offered,
		// not bought) and the old cap (no longer sold).
		&retail.UpsertProduct{SKU: "SKU-1", Name: "Trail shoe", Category: "shoes", PriceCents: 8000, Active: true,
			Barcodes: []string{"4006381333931"}, Complements: []string{"SKU-2", "SKU-LACE", "SKU-GONE"}},
		&retail.AdjustStock{Location: "S1", SKU: "SKU-LACE", Delta: 10, Reason: "received"},
		&retail.AdjustStock{Location: "S1", SKU: "SKU-BAG", Delta: 5, Reason: "received"},
		&retail.AdjustStock{Location: "S1", SKU: "SKU-TEE", Delta: 100, Reason: "received"},
		&retail.AdjustStock{Location: "S2", SKU: "SKU-WAX", Delta: 100, Reason: "received"},
		&retail.AdjustStock{Location: "S2", SKU: "SKU-LACE", Delta: 100, Reason: "received"},
		&retail.AdjustStock{Location: "S2", SKU: "SKU-HAT", Delta: 100, Reason: "received"},
		&retail.AdjustStock{Location: "DC1", SKU: "SKU-2", Delta: 100, Reason: "received"},
		&retail.AdjustStock{Location: "DC1", SKU: "SKU-HAT", Delta: 100, Reason: "received"},
		&retail.AdjustStock{Location: "DC1", SKU: "SKU-BAG", Delta: 100, Reason: "received"},
		&retail.UpsertPromotion{ID: "PFS", Name: "Free shipping", PromoType: retail.PromoFreeShipping, Audience: retail.AudienceAll,
			StartsAt: T.AddDate(-1, 0, 0), EndsAt: T.AddDate(1, 0, 0), Active: true},
		&retail.UpsertPromotion{ID: "PPCT", Name: "15% off", PromoType: retail.PromoPercentOff, Value: 1500, Audience: retail.AudienceAll,
			StartsAt: T.AddDate(-1, 0, 0), EndsAt: T.AddDate(1, 0, 0), Active: true},
		&retail.UpsertPromotion{ID: "PFUT", Name: "10% off next time", PromoType: retail.PromoFuturePercentOff, Value: 1000, Audience: retail.AudienceAll,
			StartsAt: T.AddDate(-1, 0, 0), EndsAt: T.AddDate(1, 0, 0), Active: true},
		&retail.UpsertPromotion{ID: "PLACE", Name: "20% off laces", PromoType: retail.PromoPercentOff, Value: 2000, SKU: "SKU-LACE", Audience: retail.AudienceAll,
			StartsAt: T.AddDate(-1, 0, 0), EndsAt: T.AddDate(1, 0, 0), Active: true},
	)
	people := cxDaysAgo(400,
		cxCustomer("cust-ann", "Ann Lee", "+15557777", "LC-ANN", T.AddDate(0, 0, -400), retail.AcquiredReferral, "cust-1"),
		cxCustomer("cust-b", "Bea", "+15559999", "LC-B", T.AddDate(0, 0, -400), retail.AcquiredWalkIn, "clerk-S1"),
		cxCustomer("cust-c", "Cy", "+15559999", "LC-C", T.AddDate(0, 0, -400), retail.AcquiredWalkIn, ""),
		cxCustomer("cust-d", "Di", "", "LC-D", T.AddDate(0, 0, -400), retail.AcquiredCampaign, "P10"),
		// Rita returned 3 of the 4 T-shirts she bought: 75% > 30%, 3 returns.
		cxCustomer("cust-rita", "Rita", "", "LC-RITA", T.AddDate(0, 0, -400), retail.AcquiredWeb, ""),
		// Sam returned 3 of 10: exactly 30%, not above it.
		cxCustomer("cust-sam", "Sam", "", "LC-SAM", T.AddDate(0, 0, -400), retail.AcquiredWeb, ""),
		// Quinn made 2 returns without an order in 45 days: the cap is 3.
		cxCustomer("cust-quinn", "Quinn", "", "LC-QUINN", T.AddDate(0, 0, -400), retail.AcquiredWeb, ""),
		// Pia made 1, and 1 more 60 days ago, outside the window.
		cxCustomer("cust-pia", "Pia", "", "LC-PIA", T.AddDate(0, 0, -400), retail.AcquiredWeb, ""),
		// Zoe made 3 returns without an order months ago and bought nothing.
		cxCustomer("cust-zoe", "Zoe", "", "LC-ZOE", T.AddDate(0, 0, -400), retail.AcquiredWeb, ""),
	)
	var out [][]cxStamped
	out = append(out, catalogue, people)
	// Ann's orders, not cancelled: 8000 + 3600 + 2500 + 2400 = 16500 in 4
	// orders, average 4125; 7 units.
	out = append(out,
		cxDaysAgo(100.02, &retail.RecordVisit{ID: "v1", CustomerID: "cust-ann", StoreID: "S1", Method: retail.SignInCard}), // bought the same day
		cxDaysAgo(100, cxTill("o1", "S1", "cust-ann", retail.ChannelStore, "tok-ann", cxLine("SKU-1", 1, 8000))),
		cxDaysAgo(62, &retail.RecordVisit{ID: "v2", CustomerID: "cust-ann", StoreID: "S1", Method: retail.SignInPhone}), // bought 2 days later, on the web
		cxDaysAgo(60, cxShipped("o2", "cust-ann", retail.ChannelWeb, "tok-ann", cxLine("SKU-2", 3, 1200))),
		cxDaysAgo(50, cxReturn("r1", "o2", "cust-ann", 1, "SKU-2", 1, 1200)),
		cxDaysAgo(40, &retail.RecordVisit{ID: "v3", CustomerID: "cust-ann", StoreID: "S2", Method: retail.SignInAppQR}), // nothing within 7 days
		cxDaysAgo(30, cxShipped("o3", "cust-ann", retail.ChannelPhone, "tok-ann", cxLine("SKU-HAT", 1, 2500))),
		cxDaysAgo(10.04, &retail.RecordVisit{ID: "v4", CustomerID: "cust-ann", StoreID: "S1", Method: retail.SignInCard}), // bought the same day
		cxDaysAgo(10, cxTill("o4", "S1", "cust-ann", retail.ChannelKiosk, "", cxLine("SKU-2", 2, 1200))),
		cxDaysAgo(200, &retail.RecordVisit{ID: "v5", CustomerID: "cust-ann", StoreID: "S1", Method: retail.SignInCard}), // long ago, nothing bought
		cxDaysAgo(5, cxShipped("o5", "cust-ann", retail.ChannelWeb, "tok-ann", cxLine("SKU-BAG", 1, 1500))),
		cxDaysAgo(4, &retail.FulfilOrder{OrderID: "o5", Status: retail.OrderCancelled}),
	)
	// Her offers: 2 redeemed, 2 ignored, 1 expired, 1 pending: she
	// responds to 2 of 5 decided.
	out = append(out,
		cxDaysAgo(110, &retail.MakeOffer{ID: "of1", PromotionID: "P10", CustomerID: "cust-ann", Channel: retail.OfferEmail}),
		cxDaysAgo(100, &retail.RecordOfferOutcome{OfferID: "of1", Outcome: retail.OutcomeRedeemed, OrderID: "o1"}),
		cxDaysAgo(70, &retail.MakeOffer{ID: "of2", PromotionID: "PFS", CustomerID: "cust-ann", Channel: retail.OfferApp}),
		cxDaysAgo(60, &retail.RecordOfferOutcome{OfferID: "of2", Outcome: retail.OutcomeRedeemed, OrderID: "o2"}),
		cxDaysAgo(55, &retail.MakeOffer{ID: "of3", PromotionID: "PPCT", CustomerID: "cust-ann", Channel: retail.OfferSMS}),
		cxDaysAgo(50, &retail.RecordOfferOutcome{OfferID: "of3", Outcome: retail.OutcomeIgnored}),
		cxDaysAgo(45, &retail.MakeOffer{ID: "of4", PromotionID: "PFUT", CustomerID: "cust-ann", Channel: retail.OfferEmail}),
		cxDaysAgo(20, &retail.RecordOfferOutcome{OfferID: "of4", Outcome: retail.OutcomeExpired}),
		cxDaysAgo(35, &retail.MakeOffer{ID: "of5", PromotionID: "PLACE", CustomerID: "cust-ann", Channel: retail.OfferClerk, StoreID: "S1"}),
		cxDaysAgo(30, &retail.RecordOfferOutcome{OfferID: "of5", Outcome: retail.OutcomeIgnored}),
		cxDaysAgo(2, &retail.MakeOffer{ID: "of6", PromotionID: "P10", CustomerID: "cust-ann", Channel: retail.OfferEmail}),
	)
	// Service: ended well twice (resolved and satisfied, resolved and not
	// asked), once resolved but unhappy, once still open.
	out = append(out,
		cxDaysAgo(90, &retail.RecordServiceContact{ID: "sc1", CustomerID: "cust-ann", Channel: retail.ContactPhone, Reason: "late parcel", Resolved: true, Satisfied: cxBool(true)}),
		cxDaysAgo(45, &retail.RecordServiceContact{ID: "sc2", CustomerID: "cust-ann", Channel: retail.ContactEmail, Reason: "wrong size", Resolved: true, Satisfied: cxBool(false)}),
		cxDaysAgo(3, &retail.RecordServiceContact{ID: "sc3", CustomerID: "cust-ann", Channel: retail.ContactChat, Reason: "refund status"}),
		cxDaysAgo(20, &retail.RecordServiceContact{ID: "sc4", CustomerID: "cust-ann", Channel: retail.ContactStore, Reason: "fitting", Resolved: true, StoreID: "S1"}),
	)
	// Wish list: the shoe bag (5 here), then the last jacket (none here).
	out = append(out,
		cxDaysAgo(20, &retail.AddWishItem{CustomerID: "cust-ann", SKU: "SKU-BAG", Source: retail.WishApp}),
		cxDaysAgo(3, &retail.AddWishItem{CustomerID: "cust-ann", SKU: "SKU-LAST", Source: retail.WishKiosk, Note: "size M"}),
	)
	// Carts: one left at payment with a shoe and one pair of socks, one at
	// the cart with a hat; one bought.
	ev := func(id, cart string, ch retail.Channel, kind retail.CartEventKind, sku string, qty int64, step retail.CheckoutStep, order string) *retail.RecordCartEvent {
		return &retail.RecordCartEvent{ID: id, CartID: cart, CustomerID: "cust-ann", Channel: ch, Kind: kind, SKU: sku, Qty: qty, Step: step, OrderID: order}
	}
	out = append(out,
		cxDaysAgo(15, ev("e1", "cartA", retail.ChannelWeb, retail.CartAdd, "SKU-1", 1, retail.StepCart, "")),
		cxDaysAgo(14.9, ev("e2", "cartA", retail.ChannelWeb, retail.CartAdd, "SKU-2", 2, retail.StepCart, "")),
		cxDaysAgo(14.8, ev("e3", "cartA", retail.ChannelWeb, retail.CartRemove, "SKU-2", 1, retail.StepCart, "")),
		cxDaysAgo(14.7, ev("e4", "cartA", retail.ChannelWeb, retail.CartCheckoutStep, "", 0, retail.StepShipping, "")),
		cxDaysAgo(14.6, ev("e5", "cartA", retail.ChannelWeb, retail.CartCheckoutStep, "", 0, retail.StepPayment, "")),
		cxDaysAgo(14.5, ev("e6", "cartA", retail.ChannelWeb, retail.CartAbandon, "", 0, retail.StepPayment, "")),
		cxDaysAgo(8, ev("e7", "cartB", retail.ChannelWeb, retail.CartAdd, "SKU-HAT", 1, retail.StepCart, "")),
		cxDaysAgo(7, ev("e8", "cartB", retail.ChannelWeb, retail.CartAbandon, "", 0, retail.StepCart, "")),
		cxDaysAgo(10.01, ev("e9", "cartC", retail.ChannelKiosk, retail.CartAdd, "SKU-2", 2, retail.StepCart, "")),
		cxDaysAgo(10, ev("e10", "cartC", retail.ChannelKiosk, retail.CartPurchase, "", 0, retail.StepReview, "o4")),
	)
	// Other shoppers. Orders with the trail shoe other than Ann's: ob1 to
	// ob7 and ob11 (cancelled, but the sample does not read the orders
	// table, so it counts): 8. Shoe wax with it: 3 of 8 (38%); laces: 2 of
	// 8 (25%); the shoe bag: 1, too few to show. Orders with socks other
	// than Ann's: ob8, ob9, ob10; the sun hat with them: 2 of 3 (67%).
	out = append(out, cxDaysAgo(120,
		cxTill("ob1", "S2", "cust-1", retail.ChannelStore, "", cxLine("SKU-1", 1, 8000), cxLine("SKU-WAX", 1, 700)),
		cxTill("ob2", "S2", "cust-2", retail.ChannelStore, "", cxLine("SKU-1", 1, 8000), cxLine("SKU-WAX", 1, 700)),
		cxTill("ob3", "S2", "cust-3", retail.ChannelStore, "", cxLine("SKU-1", 1, 8000), cxLine("SKU-WAX", 2, 700)),
		cxTill("ob4", "S2", "cust-b", retail.ChannelStore, "tok-shared", cxLine("SKU-1", 1, 8000)),
		cxTill("ob5", "S2", "cust-c", retail.ChannelStore, "", cxLine("SKU-1", 1, 8000), cxLine("SKU-LACE", 1, 500)),
		cxTill("ob6", "S2", "cust-d", retail.ChannelStore, "", cxLine("SKU-1", 1, 8000), cxLine("SKU-LACE", 1, 500)),
		cxTill("ob7", "S2", "", retail.ChannelStore, "", cxLine("SKU-1", 1, 8000)),
		cxTill("ob8", "S2", "cust-b", retail.ChannelStore, "", cxLine("SKU-2", 1, 1200), cxLine("SKU-HAT", 1, 2500)),
		cxTill("ob9", "S2", "cust-c", retail.ChannelStore, "", cxLine("SKU-2", 1, 1200), cxLine("SKU-HAT", 1, 2500)),
		cxTill("ob10", "S2", "cust-d", retail.ChannelStore, "", cxLine("SKU-2", 1, 1200)),
		cxShipped("ob11", "cust-d", retail.ChannelWeb, "tok-d", cxLine("SKU-1", 1, 8000), cxLine("SKU-BAG", 1, 1500)),
		&retail.FulfilOrder{OrderID: "ob11", Status: retail.OrderCancelled},
	))
	// Cy paid with the shared card after Bea did: the card finds Cy.
	out = append(out, cxDaysAgo(20, cxTill("ob12", "S2", "cust-c", retail.ChannelStore, "tok-shared", cxLine("SKU-WAX", 1, 700))))
	// The returners.
	out = append(out,
		cxDaysAgo(40, cxTill("or1", "S1", "cust-rita", retail.ChannelStore, "", cxLine("SKU-TEE", 4, 2000))),
		cxDaysAgo(39, cxReturn("rr1", "or1", "cust-rita", 1, "SKU-TEE", 1, 2000)),
		cxDaysAgo(38, cxReturn("rr2", "or1", "cust-rita", 1, "SKU-TEE", 1, 2000)),
		cxDaysAgo(37, cxReturn("rr3", "or1", "cust-rita", 1, "SKU-TEE", 1, 2000)),
		cxDaysAgo(40, cxTill("os1", "S1", "cust-sam", retail.ChannelStore, "", cxLine("SKU-TEE", 10, 2000))),
		cxDaysAgo(39, cxReturn("rs1", "os1", "cust-sam", 1, "SKU-TEE", 1, 2000)),
		cxDaysAgo(38, cxReturn("rs2", "os1", "cust-sam", 1, "SKU-TEE", 1, 2000)),
		cxDaysAgo(37, cxReturn("rs3", "os1", "cust-sam", 1, "SKU-TEE", 1, 2000)),
		cxDaysAgo(30, cxReturnNoOrder("rq1", "cust-quinn", "SKU-TEE", 2000)),
		cxDaysAgo(10, cxReturnNoOrder("rq2", "cust-quinn", "SKU-TEE", 2000)),
		cxDaysAgo(60, cxReturnNoOrder("rp1", "cust-pia", "SKU-TEE", 2000)),
		cxDaysAgo(10, cxReturnNoOrder("rp2", "cust-pia", "SKU-TEE", 2000)),
		cxDaysAgo(100, cxReturnNoOrder("rz1", "cust-zoe", "SKU-TEE", 2000)),
		cxDaysAgo(90, cxReturnNoOrder("rz2", "cust-zoe", "SKU-TEE", 2000)),
		cxDaysAgo(80, cxReturnNoOrder("rz3", "cust-zoe", "SKU-TEE", 2000)),
	)
	return out
}

func annStore(t testing.TB) *Store {
	t.Helper()
	s, _ := cxHistoryStore(t, true, annRegion()...)
	return s
}

func cxWantCode(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("error %v, want none", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want.(*Error).Code)
	}
}

func TestFindCustomer(t *testing.T) {
	ctx := context.Background()
	s := annStore(t)
	other, err := NewStore(StoreConfig{StoreID: "S1", Replica: s.replica, CouponKey: []byte("another region's key, 32 bytes.")})
	if err != nil {
		t.Fatal(err)
	}
	valid := s.SignInToken("cust-ann", scenario.T0.Add(time.Minute))
	forged := strings.Replace(valid, "cust-ann", "cust-1", 1) // her signature, another customer
	for _, tc := range []struct {
		name  string
		by    LookupKind
		value string
		want  string // customer id
		err   error
		msg   string // the message, when it matters
	}{
		{"loyalty card", ByLoyaltyCard, "LC-ANN", "cust-ann", nil, ""},
		{"unknown loyalty card", ByLoyaltyCard, "LC-9999", "", ErrUnknownCustomer, "No customer with loyalty card LC-9999; check the card or sign her up."},
		{"phone as stored", ByPhone, "+15557777", "cust-ann", nil, ""},
		{"phone typed with punctuation", ByPhone, "+1 (555) 777-7", "cust-ann", nil, ""},
		{"phone without the plus", ByPhone, "1 555 7777", "cust-ann", nil, ""},
		{"phone of a household", ByPhone, "+15559999", "", ErrAmbiguousCustomer, "Phone number +15559999 belongs to more than one customer; look her up by loyalty card."},
		{"unknown phone", ByPhone, "+1 555 0000", "", ErrUnknownCustomer, "No customer with phone number +1 555 0000; check the number or sign her up."},
		{"phone with letters", ByPhone, "555-CALL-ANN", "", ErrInvalid, ""},
		{"phone without digits", ByPhone, "+", "", ErrInvalid, ""},
		{"app token", BySignInToken, valid, "cust-ann", nil, ""},
		{"expired app token", BySignInToken, s.SignInToken("cust-ann", scenario.T0), "", ErrSignInExpired, ""},
		{"app token for another customer", BySignInToken, forged, "", ErrSignInInvalid, ""},
		{"app token signed with another key", BySignInToken, other.SignInToken("cust-ann", scenario.T0.Add(time.Hour)), "", ErrSignInInvalid, ""},
		{"app token with a changed expiry", BySignInToken, strings.Replace(valid, ".", ".1", 1), "", ErrSignInInvalid, ""},
		{"not an app token", BySignInToken, "hello", "", ErrSignInInvalid, ""},
		{"app token with no expiry", BySignInToken, "ECSI:cust-ann.XYZ", "", ErrSignInInvalid, ""},
		{"coupon code as app token", BySignInToken, s.coupons.issue("P10", "cust-ann", scenario.T0.AddDate(0, 0, 1)), "", ErrSignInInvalid, ""},
		{"app token of a customer not here yet", BySignInToken, s.SignInToken("cust-new", scenario.T0.Add(time.Hour)), "", ErrUnknownCustomer,
			"Her app signed her in as customer cust-new, whom this store does not know yet; use her loyalty card or sign her up."},
		{"payment card", ByCardToken, "tok-ann", "cust-ann", nil, ""},
		{"payment card used by two: the latest", ByCardToken, "tok-shared", "cust-c", nil, ""},
		{"payment card of a cancelled order still finds her", ByCardToken, "tok-d", "cust-d", nil, ""},
		{"unknown payment card", ByCardToken, "tok-nobody", "", ErrUnknownCustomer, ""},
		{"empty", ByLoyaltyCard, "  ", "", ErrInvalid, ""},
		{"unknown kind", LookupKind("email"), "ann@example.com", "", ErrInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.FindCustomer(ctx, tc.by, tc.value)
			cxWantCode(t, err, tc.err)
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("message %q, want %q", err, tc.msg)
			}
			if c.ID != tc.want {
				t.Errorf("found %q, want %q", c.ID, tc.want)
			}
			if tc.err == nil && c.By != tc.by {
				t.Errorf("by %q, want %q", c.By, tc.by)
			}
		})
	}
}

func TestSignInTokenFormat(t *testing.T) {
	s, _, _ := testStore(t)
	exp := time.Date(2026, 11, 2, 10, 5, 0, 0, time.UTC)
	tok := s.SignInToken("cust-1", exp)
	rest, ok := strings.CutPrefix(tok, "ECSI:cust-1.")
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 2 || len(parts[1]) != 20 {
		t.Fatalf("token %q is not ECSI:<customer>.<expiry>.<20-character signature>", tok)
	}
	if parts[0] != "tnvdcc" { // 1793613900 in base 36
		t.Errorf("expiry %q, want tnvdcc (unix seconds in base 36)", parts[0])
	}
	if s.SignInToken("cust-1", exp) != tok {
		t.Error("the same customer and expiry gave another token")
	}
	_, err := s.FindCustomer(context.Background(), BySignInToken, tok)
	cxWantCode(t, err, nil)
	// A second past the expiry it is refused, saying when it expired.
	s.now = func() time.Time { return exp }
	_, err = s.FindCustomer(context.Background(), BySignInToken, tok)
	cxWantCode(t, err, ErrSignInExpired)
	if want := "Her app sign-in code expired at 2 Nov 10:05 UTC; ask her to refresh it in the app."; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func cxNear(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestCustomer360(t *testing.T) {
	ctx := context.Background()
	s := annStore(t)
	c, err := s.Customer360(ctx, "cust-ann")
	if err != nil {
		t.Fatal(err)
	}
	day := func(n float64) *time.Time {
		t := cxAgo(n)
		return &t
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"profile", []any{c.Customer.ID, c.Customer.Name, c.Customer.LoyaltyCard, c.Customer.Phone, c.Customer.HomeStore, c.Customer.Contact.Email},
			[]any{"cust-ann", "Ann Lee", "LC-ANN", "+15557777", "S1", true}},
		{"as of", c.AsOf, scenario.T0},
		{"tenure", c.Tenure, Tenure{Since: scenario.T0.AddDate(0, 0, -400), Days: 400, AcquiredVia: retail.AcquiredReferral,
			AcquiredBy: "cust-1", AcquiredByName: "Customer 1", AcquiredStore: "S1",
			Summary: "Customer since 28 Sep 2025 (13 months); referred by Customer 1."}},
		{"orders", c.Orders, OrderStats{Count: 4, Cancelled: 1, SpendCents: 16500, AverageCents: 4125, Units: 7,
			ByChannel: map[retail.Channel]ChannelStat{
				retail.ChannelStore: {1, 8000}, retail.ChannelWeb: {1, 3600}, retail.ChannelPhone: {1, 2500}, retail.ChannelKiosk: {1, 2400}},
			FirstAt: day(100), LastAt: day(10)}},
		{"top categories", c.TopCategories, []CategoryStat{{"shoes", 1, 8000}, {"socks", 5, 6000}, {"hats", 1, 2500}}},
		{"promotions", c.Promotions, PromotionStats{Offers: 6, Pending: 1, Redeemed: 2, Ignored: 2, Expired: 1, ResponseRate: 0.4, Response: "responds",
			ByType: []PromoTypeStat{
				{retail.PromoAmountOff, 2, 1, 1, 1}, {retail.PromoFreeShipping, 1, 1, 1, 1},
				{retail.PromoFuturePercentOff, 1, 0, 1, 0}, {retail.PromoPercentOff, 2, 0, 2, 0}},
			BuysWith: []retail.PromotionType{retail.PromoAmountOff, retail.PromoFreeShipping}}},
		// 4 of her 5 visits in the last 180 days: 4/6 a month. v1 and v4
		// bought the same day, v2 two days later; v3 and v5 nothing.
		{"visits", c.Visits, VisitStats{Count: 5, Last180Days: 4, Per30Days: 4.0 / 6, LastAt: day(10.04), PerOrder: 1.25,
			BoughtSameDay: 2, BoughtLater: 1, NoPurchase: 2, SameDayRate: 0.4, LaterRate: 0.2, Pattern: "buys_on_visit"}},
		{"complements", c.Complements, []Complement{
			{SKU: "SKU-LACE", Name: "Laces", PriceCents: 500, StockHere: 10, For: "SKU-1", ForName: "Trail shoe", Offered: true, OfferOutcome: retail.OutcomeIgnored},
			{SKU: "SKU-BAG", Name: "Shoe bag", PriceCents: 1500, StockHere: 5, For: "SKU-HAT", ForName: "Sun hat"}}},
		{"also bought", c.AlsoBought, []CoPurchase{
			{SKU: "SKU-WAX", Name: "Shoe wax", PriceCents: 700, With: "SKU-1", WithName: "Trail shoe", Buyers: 3, Sampled: 8, Percent: 38,
				Why: "bought with Trail shoe by 38% of buyers"},
			{SKU: "SKU-LACE", Name: "Laces", PriceCents: 500, StockHere: 10, With: "SKU-1", WithName: "Trail shoe", Buyers: 2, Sampled: 8, Percent: 25,
				Why: "bought with Trail shoe by 25% of buyers"}}},
		{"service", []int{c.Service.Contacts, c.Service.Resolved, c.Service.Open, c.Service.Satisfied, c.Service.Unsatisfied, c.Service.EndedWell},
			[]int{4, 3, 1, 1, 1, 2}},
		{"latest service contacts", func() (out []string) {
			for _, r := range c.Service.Recent {
				out = append(out, fmt.Sprintf("%s %s ended well %v", r.ID, r.Reason, r.EndedWell))
			}
			return out
		}(), []string{"sc3 refund status ended well false", "sc4 fitting ended well true", "sc2 wrong size ended well false", "sc1 late parcel ended well true"}},
		{"returns", c.Returns, ReturnStats{Returns: 1, UnitsReturned: 1, UnitsBought: 7, RefundCents: 1200, Rate: 1.0 / 7, ReceiptlessCap: 3, CapDays: 45}},
		{"wish list", c.WishList, []WishItem{
			{SKU: "SKU-LAST", Name: "Last jacket", PriceCents: 20000, AddedAt: *day(3), Source: retail.WishKiosk, Note: "size M"},
			{SKU: "SKU-BAG", Name: "Shoe bag", PriceCents: 1500, AddedAt: *day(20), Source: retail.WishApp, StockHere: 5}}},
		{"abandoned carts", c.Carts, AbandonedCart{Count: 2, ByStep: map[retail.CheckoutStep]int{retail.StepCart: 1, retail.StepPayment: 1},
			Recent: []Cart{
				{ID: "cartB", Channel: retail.ChannelWeb, Step: retail.StepCart, At: *day(7), Items: []BasketLine{{"SKU-HAT", 1}}},
				{ID: "cartA", Channel: retail.ChannelWeb, Step: retail.StepPayment, At: *day(14.5), Items: []BasketLine{{"SKU-1", 1}, {"SKU-2", 1}}}}}},
		{"notes", c.Notes, []string(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", tc.got, tc.want)
			}
		})
	}
}

func TestCustomer360Returners(t *testing.T) {
	ctx := context.Background()
	s := annStore(t)
	for _, tc := range []struct {
		customer string
		want     ReturnStats
	}{
		{"cust-rita", ReturnStats{Returns: 3, UnitsReturned: 3, UnitsBought: 4, RefundCents: 6000, Rate: 0.75, ReceiptlessCap: 3, CapDays: 45,
			HighMaintenance: true, Why: "returned 3 of 4 units bought (75%) in 3 returns"}},
		{"cust-sam", ReturnStats{Returns: 3, UnitsReturned: 3, UnitsBought: 10, RefundCents: 6000, Rate: 0.3, ReceiptlessCap: 3, CapDays: 45}},
		{"cust-quinn", ReturnStats{Returns: 2, WithoutOrder: 2, UnitsReturned: 2, RefundCents: 4000, ReceiptlessInWindow: 2, ReceiptlessCap: 3, CapDays: 45,
			HighMaintenance: true, Why: "made 2 returns without a receipt in the last 45 days; the cap is 3", StoreCreditCents: 4000}},
		{"cust-pia", ReturnStats{Returns: 2, WithoutOrder: 2, UnitsReturned: 2, RefundCents: 4000, ReceiptlessInWindow: 1, ReceiptlessCap: 3, CapDays: 45,
			StoreCreditCents: 4000}},
		{"cust-zoe", ReturnStats{Returns: 3, WithoutOrder: 3, UnitsReturned: 3, RefundCents: 6000, ReceiptlessCap: 3, CapDays: 45,
			HighMaintenance: true, Why: "returned 3 units in 3 returns and bought nothing on record", StoreCreditCents: 6000}},
	} {
		t.Run(tc.customer, func(t *testing.T) {
			c, err := s.Customer360(ctx, tc.customer)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Returns
			if !cxNear(got.Rate, tc.want.Rate) {
				t.Errorf("rate %v, want %v", got.Rate, tc.want.Rate)
			}
			got.Rate = tc.want.Rate
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCustomer360Refusals(t *testing.T) {
	s := annStore(t)
	for _, tc := range []struct {
		name, id string
		err      error
		msg      string
	}{
		{"unknown customer", "cust-nobody", ErrUnknownCustomer, "No customer cust-nobody in this region; look her up by loyalty card or phone, or sign her up."},
		{"no customer", "", ErrInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Customer360(context.Background(), tc.id)
			cxWantCode(t, err, tc.err)
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("message %q, want %q", err, tc.msg)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Customer360(ctx, "cust-ann"); !errors.Is(err, context.Canceled) {
		t.Errorf("with the context cancelled: %v, want context.Canceled", err)
	}
}

// A customer with no orders (only returns without one): every list is
// empty, not null, and nothing divides by zero.
func TestCustomer360NewCustomer(t *testing.T) {
	s := annStore(t)
	c, err := s.Customer360(context.Background(), "cust-quinn")
	if err != nil {
		t.Fatal(err)
	}
	if c.Orders.Count != 0 || c.Orders.AverageCents != 0 || c.Visits.Pattern != "" || c.Visits.PerOrder != 0 ||
		c.Promotions.Response != "unknown" || c.Tenure.Summary != "Customer since 28 Sep 2025 (13 months); signed up on the web." {
		t.Errorf("%+v", c)
	}
	for name, l := range map[string]int{"top categories": len(c.TopCategories), "complements": len(c.Complements), "also bought": len(c.AlsoBought),
		"wish list": len(c.WishList), "carts": len(c.Carts.Recent), "service": len(c.Service.Recent), "by type": len(c.Promotions.ByType)} {
		if l != 0 {
			t.Errorf("%s: %d, want none", name, l)
		}
	}
	for _, l := range []any{c.TopCategories, c.Complements, c.AlsoBought, c.WishList, c.Carts.Recent, c.Service.Recent, c.Promotions.ByType, c.Promotions.BuysWith} {
		if reflect.ValueOf(l).IsNil() {
			t.Errorf("%T is nil: JSON would say null", l)
		}
	}
}

// Without the index on order_lines(sku, order_id) (a replica not yet
// migrated to 0003) there are no co-purchases, and a note says why,
// instead of a scan of every order line in the region.
func TestCustomer360WithoutCoPurchaseIndex(t *testing.T) {
	s, _ := cxHistoryStore(t, false, annRegion()...)
	c, err := s.Customer360(context.Background(), "cust-ann")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.AlsoBought) != 0 || len(c.Notes) != 1 || !strings.Contains(c.Notes[0], coPurchaseIndex) {
		t.Errorf("also bought %v, notes %q", c.AlsoBought, c.Notes)
	}
	if c.Orders.Count != 4 || len(c.Complements) != 2 {
		t.Errorf("the rest should be there: %+v", c)
	}
}

// TestReadsUseIndexes checks the plan of every read: each reaches its
// rows through an index (or a primary key), never by scanning a table
// that grows with the region, so a 360 costs the same on a replica of
// millions of orders as on this one.
func TestReadsUseIndexes(t *testing.T) {
	s, r := cxHistoryStore(t, true)
	_ = s
	db, done := r.DB()
	defer done()
	// Small tables a scan of which is fine: the schema, the settings, a
	// JSON parameter, the co-purchase sample (bounded by its LIMIT).
	fine := regexp.MustCompile(`^SCAN (json_each|pragma_|settings|sqlite_schema|[sb]$|\(subquery|CONSTANT ROW|\w+ VIRTUAL TABLE)`)
	for name, q := range map[string]string{
		"by card": sqlByCard, "by phone": sqlByPhone, "by id": sqlByID, "by card token": sqlByCardToken,
		"customer name": sqlCustomerName, "promotion name": sqlPromotionName, "clerk name": sqlClerkName,
		"profile": sqlProfile, "orders": sqlOrders, "bought": sqlBought, "offers": sqlOffers, "visits": sqlVisits,
		"return settings": sqlReturnSettings, "returns": sqlReturns, "service": sqlService, "wish list": sqlWishList,
		"carts": sqlCarts, "cart items": sqlCartItems, "complements": sqlComplements, "products": sqlProducts,
		"co-purchase index": sqlCoPurchaseIndex, "co-purchase sample": sqlCoPurchaseSample, "co-purchase lines": sqlCoPurchaseLines,
	} {
		t.Run(name, func(t *testing.T) {
			n := strings.Count(q, "?")
			if strings.Contains(q, "?3") {
				n = 3
			}
			args := make([]any, n)
			for i := range args {
				args[i] = "x"
			}
			if strings.Contains(q, "json_each(?)") {
				args[len(args)-1] = `["x"]`
			}
			rows, err := db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			for _, step := range plan {
				if strings.HasPrefix(step, "SCAN") && !fine.MatchString(step) {
					t.Errorf("%q scans: plan %q", step, plan)
				}
			}
			if strings.Contains(strings.Join(plan, "\n"), "USE TEMP B-TREE") && name == "co-purchase sample" {
				t.Errorf("the co-purchase sample sorts instead of reading the index backwards: %q", plan)
			}
		})
	}
}

// The co-purchase index is found by what it indexes, whatever its name.
func TestCoPurchaseIndexFound(t *testing.T) {
	_, r := cxHistoryStore(t, false)
	db, done := r.DB()
	defer done()
	ctx := context.Background()
	for _, tc := range []struct {
		create string
		want   bool
	}{
		{"", false},
		{coPurchaseIndex, true},
		{"CREATE INDEX lines_by_sku ON order_lines (sku,  order_id)", true},
		{`CREATE INDEX "x" ON "order_lines"(sku, order_id)`, true},
		{"CREATE INDEX lines_sku_only ON order_lines(sku)", false},
		{"CREATE INDEX lines_other_way ON order_lines(order_id, sku)", false},
		{"CREATE INDEX lines_sku_qty ON order_lines(sku, qty)", false},
	} {
		t.Run(tc.create, func(t *testing.T) {
			if tc.create != "" {
				if _, err := db.ExecContext(ctx, tc.create); err != nil {
					t.Fatal(err)
				}
			}
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			got, err := hasCoPurchaseIndex(ctx, conn)
			if err != nil || got != tc.want {
				t.Errorf("found %v (%v), want %v", got, err, tc.want)
			}
			rows, _ := db.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'order_lines' AND sql IS NOT NULL")
			var names []string
			for rows.Next() {
				var n string
				rows.Scan(&n)
				names = append(names, n)
			}
			rows.Close()
			for _, n := range names {
				if _, err := db.ExecContext(ctx, fmt.Sprintf("DROP INDEX %q", n)); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// A 360 reads from one snapshot, and the snapshot never holds the
// replica's write lock: a visit is written while it is open, and the
// snapshot does not see it.
func TestSnapshotDoesNotBlockWrites(t *testing.T) {
	s := annStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const visits = "SELECT count(*) FROM visits WHERE customer_id = 'cust-ann'"
	start := time.Now()
	err := s.snapshot(ctx, func(q querier) error {
		var before, after int
		if err := q.QueryRowContext(ctx, visits).Scan(&before); err != nil {
			return err
		}
		if _, err := s.write(ctx, scenario.Clerk("S1"), &retail.RecordVisit{ID: "v-now", CustomerID: "cust-ann", StoreID: "S1", Method: retail.SignInCard}); err != nil {
			return err
		}
		if err := q.QueryRowContext(ctx, visits).Scan(&after); err != nil {
			return err
		}
		if before != 5 || after != before {
			return fmt.Errorf("the snapshot saw %d visits, then %d; want 5 both times", before, after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the write waited %s for the snapshot", d)
	}
	c, err := s.Customer360(context.Background(), "cust-ann")
	if err != nil || c.Visits.Count != 6 {
		t.Errorf("after the snapshot: %d visits (%v), want 6", c.Visits.Count, err)
	}
}

// The store's read connections let go of the old database when the
// replica bootstraps onto a snapshot, and reads go on against the new one.
func TestReadsAcrossABootstrap(t *testing.T) {
	ctx := context.Background()
	s, r, _ := testStore(t)
	if _, err := s.Customer360(ctx, "cust-1"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	entries, err := scenario.Changes(dir, append(scenario.Seed(), &retail.AddWishItem{CustomerID: "cust-1", SKU: "SKU-2", Source: retail.WishWeb}))
	if err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "snapshot.db")
	hub, err := retail.Open(ctx, filepath.Join(dir, "scenario-hub.db"), retail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.ExecContext(ctx, "VACUUM INTO ?", snap); err != nil {
		t.Fatal(err)
	}
	hub.Close()
	if err := r.Bootstrap(ctx, snap, replication.SnapshotMeta{HubSeq: uint64(len(entries))}); err != nil {
		t.Fatal(err)
	}
	c, err := s.Customer360(ctx, "cust-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.WishList) != 1 {
		t.Fatalf("after the bootstrap the 360 shows %d wish items, want the snapshot's 1", len(c.WishList))
	}
	if err := s.AddWish(ctx, clerkS1, "cust-1", "SKU-1", retail.WishClerk, ""); err != nil {
		t.Fatal(err)
	}
	db, done := r.DB()
	defer done()
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity after the bootstrap: %q %v", check, err)
	}
}
