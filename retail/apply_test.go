package retail

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// applyCase is one table-driven Apply test: mutations applied first
// (none may be rejected), the mutation under test, and what must follow.
type applyCase struct {
	name    string
	setup   []Body
	advance time.Duration // moved after setup, before body
	body    Body
	status  Status
	code    string          // rejection code, for rejected
	reason  string          // substring of the reason, for rejected
	flags   []ExceptionKind // exception kinds, in order, for flagged
	check   func(t *testing.T, r *region)
}

func runApplyCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegion(t)
			for _, b := range tc.setup {
				if res := r.apply(b); res.Status == StatusRejected {
					t.Fatalf("setup %s rejected: %s", b.Type(), res.Reason)
				}
			}
			r.advance(tc.advance)
			before := r.int("SELECT count(*) FROM applied_mutations")
			res := r.apply(tc.body)
			if res.Status != tc.status {
				t.Fatalf("status %s (%s: %s, exceptions %+v), want %s", res.Status, res.Code, res.Reason, res.Exceptions, tc.status)
			}
			if res.Code != tc.code {
				t.Errorf("code %q, want %q (reason %q)", res.Code, tc.code, res.Reason)
			}
			if tc.reason != "" && !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", res.Reason, tc.reason)
			}
			var kinds []ExceptionKind
			for _, e := range res.Exceptions {
				kinds = append(kinds, e.Kind)
				if e.Detail == "" || e.Entity == "" {
					t.Errorf("exception %+v lacks detail or entity", e)
				}
			}
			if !slices.Equal(kinds, tc.flags) {
				t.Errorf("exceptions %v, want %v", kinds, tc.flags)
			}
			if got := r.int("SELECT count(*) FROM exceptions WHERE mutation_id = ?", res.ID.String()); got != int64(len(tc.flags)) {
				t.Errorf("%d exception rows stored, want %d", got, len(tc.flags))
			}
			if got := r.int("SELECT count(*) FROM applied_mutations"); got != before+1 {
				t.Errorf("applied_mutations grew by %d, want 1", got-before)
			}
			if r.str("SELECT status FROM applied_mutations WHERE id = ?", res.ID.String()) != string(tc.status) {
				t.Errorf("stored status differs from the result")
			}
			if tc.status == StatusRejected {
				if len(res.Changes) != 1 || res.Changes[0].Table != "applied_mutations" {
					t.Errorf("a rejection changed %v, want only its applied_mutations row", tables(res.Changes))
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func tables(cs []RowChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c.Op)+" "+c.Table)
	}
	return out
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestPlaceOrder(t *testing.T) {
	shoe := func(q int64) Line { return Line{SKU: "SKU-1", Qty: q, UnitPriceCents: 8000} }
	future := t0.AddDate(0, 0, 14)
	runApplyCases(t, []applyCase{
		{name: "reserves stock where it ships from", body: kioskOrder("o1", shoe(2)), status: StatusAccepted,
			check: func(t *testing.T, r *region) {
				eq(t, "DC1 reserved", r.reserved("DC1", "SKU-1"), 2)
				eq(t, "DC1 on hand", r.onHand("DC1", "SKU-1"), 2)
				eq(t, "S1 on hand", r.onHand("S1", "SKU-1"), 5)
				eq(t, "status", r.str("SELECT status FROM orders WHERE id = 'o1'"), "reserved")
				eq(t, "total", r.int("SELECT total_cents FROM orders WHERE id = 'o1'"), 16000)
			}},
		{name: "refused when it would take available stock below zero", body: kioskOrder("o1", shoe(3)),
			status: StatusRejected, code: CodeInsufficientStock, reason: "Only 2 of SKU-1 available at DC1; 3 ordered",
			check: func(t *testing.T, r *region) {
				eq(t, "orders", r.int("SELECT count(*) FROM orders"), 0)
				eq(t, "DC1 reserved", r.reserved("DC1", "SKU-1"), 0)
			}},
		{name: "stock reserved by an earlier order is not available", setup: []Body{kioskOrder("o0", shoe(2))},
			body: kioskOrder("o1", shoe(1)), status: StatusRejected, code: CodeInsufficientStock, reason: "Only 0 of SKU-1"},
		{name: "lines of the same product add up", body: kioskOrder("o1", shoe(1), shoe(2)),
			status: StatusRejected, code: CodeInsufficientStock},
		{name: "a product never stocked there", body: kioskOrder("o1", Line{SKU: "SKU-2", Qty: 1, UnitPriceCents: 1200}),
			status: StatusRejected, code: CodeInsufficientStock},
		{name: "a valid coupon is redeemed with the order", setup: []Body{coupon("C1", "cust-1", future)},
			body: withOrderCoupon(kioskOrder("o1", shoe(1)), "C1", 1000), status: StatusAccepted,
			check: func(t *testing.T, r *region) {
				eq(t, "coupon order", r.str("SELECT redeemed_order_id FROM coupons WHERE code = 'C1'"), "o1")
				eq(t, "offer outcome", r.str("SELECT outcome FROM offers WHERE id = 'offer-C1'"), "redeemed")
				eq(t, "offer order", r.str("SELECT outcome_order_id FROM offers WHERE id = 'offer-C1'"), "o1")
				eq(t, "total", r.int("SELECT total_cents FROM orders WHERE id = 'o1'"), 7000)
			}},
		{name: "a used coupon is refused", setup: []Body{coupon("C1", "cust-1", future), &RedeemCoupon{Code: "C1", StoreID: "S2"}},
			body: withOrderCoupon(kioskOrder("o1", shoe(1)), "C1", 1000), status: StatusRejected, code: CodeCouponUsed,
			reason: "already redeemed at store S2",
			check:  func(t *testing.T, r *region) { eq(t, "DC1 reserved", r.reserved("DC1", "SKU-1"), 0) }},
		{name: "an expired coupon is refused", setup: []Body{coupon("C1", "cust-1", t0.Add(time.Hour))}, advance: 2 * time.Hour,
			body: withOrderCoupon(kioskOrder("o1", shoe(1)), "C1", 1000), status: StatusRejected, code: CodeCouponExpired},
		{name: "someone else's coupon is refused", setup: []Body{coupon("C1", "cust-2", future)},
			body: withOrderCoupon(kioskOrder("o1", shoe(1)), "C1", 1000), status: StatusRejected, code: CodeCouponNotHers},
		{name: "an unknown coupon is refused", body: withOrderCoupon(kioskOrder("o1", shoe(1)), "NOPE", 1000),
			status: StatusRejected, code: CodeNotFound},
		{name: "an order id used before is refused", setup: []Body{kioskOrder("o1", shoe(1))},
			body: kioskOrder("o1", shoe(1)), status: StatusRejected, code: CodeDuplicateID},
		{name: "unknown product", body: kioskOrder("o1", Line{SKU: "SKU-404", Qty: 1, UnitPriceCents: 1}),
			status: StatusRejected, code: CodeInsufficientStock},
		{name: "unknown customer", body: func() Body { o := kioskOrder("o1", shoe(1)); o.CustomerID = "ghost"; return o }(),
			status: StatusRejected, code: CodeNotFound, reason: "Unknown customer ghost"},
		{name: "empty basket", body: kioskOrder("o1"), status: StatusRejected, code: CodeInvalid, reason: "basket is empty"},
		{name: "carry-out is a sale, not an order", body: func() Body { o := kioskOrder("o1", shoe(1)); o.Fulfilment = CarryOut; return o }(),
			status: StatusRejected, code: CodeInvalid},
		{name: "tenders must pay the total", body: func() Body { o := kioskOrder("o1", shoe(1)); o.Tenders[0].AmountCents--; return o }(),
			status: StatusRejected, code: CodeInvalid, reason: "tenders pay 7999, the total is 8000"},
		{name: "store pickup names the store", body: func() Body {
			o := kioskOrder("o1", shoe(1))
			o.Fulfilment, o.ShipAddress = StorePickup, ""
			return o
		}(), status: StatusRejected, code: CodeInvalid, reason: "pickup store"},
	})
}

func withOrderCoupon(o *PlaceOrder, code string, off Cents) *PlaceOrder {
	o.Coupons = append(o.Coupons, CouponUse{Code: code, DiscountCents: off})
	_, _, total := o.Totals()
	o.Tenders[0].AmountCents = total
	return o
}

func TestRecordSale(t *testing.T) {
	shoe := func(q int64) Line { return Line{SKU: "SKU-1", Qty: q, UnitPriceCents: 8000} }
	future := t0.AddDate(0, 0, 14)
	runApplyCases(t, []applyCase{
		{name: "takes stock at the store", body: sale("s1", "cust-1", shoe(2), Line{SKU: "SKU-2", Qty: 3, UnitPriceCents: 1200}),
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "S1 SKU-1", r.onHand("S1", "SKU-1"), 3)
				eq(t, "S1 SKU-2", r.onHand("S1", "SKU-2"), 17)
				eq(t, "status", r.str("SELECT status FROM orders WHERE id = 's1'"), "completed")
				eq(t, "lines", r.int("SELECT count(*) FROM order_lines WHERE order_id = 's1'"), 2)
			}},
		{name: "an anonymous sale", body: sale("s1", "", shoe(1)), status: StatusAccepted},
		{name: "below zero is applied and flagged", body: sale("s1", "cust-1", shoe(6)), status: StatusFlagged,
			flags: []ExceptionKind{ExStockDiscrepancy}, check: func(t *testing.T, r *region) {
				eq(t, "S1 SKU-1", r.onHand("S1", "SKU-1"), -1)
				eq(t, "orders", r.int("SELECT count(*) FROM orders WHERE id = 's1'"), 1)
			}},
		{name: "a product never stocked at the store is flagged", body: sale("s1", "cust-1", Line{SKU: "SKU-3", Qty: 1, UnitPriceCents: 2500}),
			status: StatusFlagged, flags: []ExceptionKind{ExStockDiscrepancy}},
		{name: "a coupon is redeemed", setup: []Body{coupon("C1", "cust-1", future)},
			body: withCoupon(sale("s1", "cust-1", shoe(1)), "C1", 1000), status: StatusAccepted,
			check: func(t *testing.T, r *region) {
				eq(t, "coupon order", r.str("SELECT redeemed_order_id FROM coupons WHERE code = 'C1'"), "s1")
				eq(t, "coupon store", r.str("SELECT redeemed_store FROM coupons WHERE code = 'C1'"), "S1")
				eq(t, "use", r.str("SELECT status FROM order_coupons WHERE order_id = 's1'"), "redeemed")
				eq(t, "offer", r.str("SELECT outcome FROM offers WHERE id = 'offer-C1'"), "redeemed")
			}},
		{name: "a second redemption (two stores offline) counts once and is flagged",
			setup: []Body{coupon("C1", "cust-1", future), withCoupon(sale("s0", "cust-1", shoe(1)), "C1", 1000)},
			body:  withCoupon(sale("s1", "cust-1", shoe(1)), "C1", 1000), status: StatusFlagged,
			flags: []ExceptionKind{ExDuplicateRedemption}, check: func(t *testing.T, r *region) {
				eq(t, "first redemption kept", r.str("SELECT redeemed_order_id FROM coupons WHERE code = 'C1'"), "s0")
				eq(t, "second use", r.str("SELECT status FROM order_coupons WHERE order_id = 's1'"), "duplicate")
				eq(t, "flagged amount", r.int("SELECT amount_cents FROM exceptions WHERE kind = 'duplicate_redemption'"), 1000)
				eq(t, "sale applied", r.onHand("S1", "SKU-1"), 3)
			}},
		{name: "an expired coupon is flagged", setup: []Body{coupon("C1", "cust-1", t0.Add(time.Hour))}, advance: 2 * time.Hour,
			body: withCoupon(sale("s1", "cust-1", shoe(1)), "C1", 1000), status: StatusFlagged, flags: []ExceptionKind{ExExpiredCoupon},
			check: func(t *testing.T, r *region) {
				eq(t, "not redeemed", r.int("SELECT count(*) FROM coupons WHERE redeemed_at IS NOT NULL"), 0)
			}},
		{name: "an unknown coupon is flagged", body: withCoupon(sale("s1", "cust-1", shoe(1)), "FORGED", 500),
			status: StatusFlagged, flags: []ExceptionKind{ExUnknownCoupon}},
		{name: "someone else's coupon counts and is flagged", setup: []Body{coupon("C1", "cust-2", future)},
			body: withCoupon(sale("s1", "cust-1", shoe(1)), "C1", 1000), status: StatusFlagged, flags: []ExceptionKind{ExCouponNotHers},
			check: func(t *testing.T, r *region) {
				eq(t, "redeemed", r.str("SELECT redeemed_order_id FROM coupons WHERE code = 'C1'"), "s1")
			}},
		{name: "an unknown product cannot be recorded", body: sale("s1", "cust-1", Line{SKU: "SKU-404", Qty: 1, UnitPriceCents: 1}),
			status: StatusRejected, code: CodeNotFound},
		{name: "a sale id used before", setup: []Body{sale("s1", "cust-1", shoe(1))}, body: sale("s1", "cust-1", shoe(1)),
			status: StatusRejected, code: CodeDuplicateID, check: func(t *testing.T, r *region) {
				eq(t, "stock taken once", r.onHand("S1", "SKU-1"), 4)
			}},
		{name: "a sale names its store", body: func() Body { s := sale("s1", "", shoe(1)); s.StoreID = ""; return s }(),
			status: StatusRejected, code: CodeInvalid},
	})
}

func TestFulfilOrder(t *testing.T) {
	order := kioskOrder("o1", Line{SKU: "SKU-1", Qty: 2, UnitPriceCents: 8000})
	runApplyCases(t, []applyCase{
		{name: "shipping takes the reserved stock", setup: []Body{order}, body: &FulfilOrder{OrderID: "o1", Status: OrderFulfilled},
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "on hand", r.onHand("DC1", "SKU-1"), 0)
				eq(t, "reserved", r.reserved("DC1", "SKU-1"), 0)
				eq(t, "status", r.str("SELECT status FROM orders WHERE id = 'o1'"), "fulfilled")
			}},
		{name: "cancelling releases the reservation", setup: []Body{order}, body: &FulfilOrder{OrderID: "o1", Status: OrderCancelled},
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "on hand", r.onHand("DC1", "SKU-1"), 2)
				eq(t, "reserved", r.reserved("DC1", "SKU-1"), 0)
			}},
		{name: "shipping stock that was counted away is flagged",
			setup: []Body{order, &AdjustStock{Location: "DC1", SKU: "SKU-1", Delta: -2, Reason: "damaged"}},
			body:  &FulfilOrder{OrderID: "o1", Status: OrderFulfilled}, status: StatusFlagged, flags: []ExceptionKind{ExStockDiscrepancy}},
		{name: "twice is refused", setup: []Body{order, &FulfilOrder{OrderID: "o1", Status: OrderFulfilled}},
			body: &FulfilOrder{OrderID: "o1", Status: OrderCancelled}, status: StatusRejected, code: CodeBadTransition},
		{name: "a till sale is not reserved", setup: []Body{sale("s1", "", Line{SKU: "SKU-2", Qty: 1, UnitPriceCents: 1200})},
			body: &FulfilOrder{OrderID: "s1", Status: OrderFulfilled}, status: StatusRejected, code: CodeBadTransition},
		{name: "unknown order", body: &FulfilOrder{OrderID: "nope", Status: OrderFulfilled}, status: StatusRejected, code: CodeNotFound},
		{name: "bad status", body: &FulfilOrder{OrderID: "o1", Status: OrderReserved}, status: StatusRejected, code: CodeInvalid},
	})
}

// paidSale is sale s1 at S1 for cust-1: 2 shoes (16000) and 1 pair of
// socks (1200), paid 5000 cash and the rest by card tok-cust-1.
func paidSale() *RecordSale {
	s := sale("s1", "cust-1", Line{SKU: "SKU-1", Qty: 2, UnitPriceCents: 8000}, Line{SKU: "SKU-2", Qty: 1, UnitPriceCents: 1200})
	s.Tenders = []Tender{{Kind: TenderCash, AmountCents: 5000}, {Kind: TenderCard, AmountCents: 12200, CardToken: "tok-cust-1"}}
	return s
}

// ret returns qty shoes from s1's line 1 to the card, refunding refund.
func ret(id string, qty int64, refund Cents) *ReturnItems {
	return &ReturnItems{ID: id, OrderID: "s1", CustomerID: "cust-1", StoreID: "S1", ClerkID: "assoc", Reason: "too small",
		Lines:  []ReturnLine{{OrderLineNo: 1, SKU: "SKU-1", Qty: qty, RefundCents: refund}},
		Refund: Tender{Kind: TenderCard, AmountCents: refund, CardToken: "tok-cust-1"}, Restock: true}
}

func receiptless(id string, kind TenderKind) *ReturnItems {
	return &ReturnItems{ID: id, CustomerID: "cust-1", StoreID: "S1", ClerkID: "assoc", Reason: "gift",
		Lines:  []ReturnLine{{SKU: "SKU-2", Qty: 1, RefundCents: 1000}},
		Refund: Tender{Kind: kind, AmountCents: 1000}}
}

func approved(r *ReturnItems, by string) *ReturnItems { r.ApprovedBy = by; return r }

func toTender(r *ReturnItems, kind TenderKind, token string) *ReturnItems {
	r.Refund.Kind, r.Refund.CardToken = kind, token
	return r
}

// split returns qty shoes from s1's line 1, refunded to the given tenders.
func split(id string, qty int64, ts ...Tender) *ReturnItems {
	r := ret(id, qty, 0)
	r.Refund = Tender{}
	r.Refunds = ts
	for _, t := range ts {
		r.Lines[0].RefundCents += t.AmountCents
	}
	return r
}

func cash(c Cents) Tender { return Tender{Kind: TenderCash, AmountCents: c} }
func card(c Cents) Tender { return Tender{Kind: TenderCard, AmountCents: c, CardToken: "tok-cust-1"} }

func TestReturnItems(t *testing.T) {
	runApplyCases(t, []applyCase{
		{name: "split over the card and cash", setup: []Body{paidSale(), ret("r0", 1, 8000)}, body: split("r1", 1, card(4200), cash(3800)),
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "total", r.int("SELECT refund_cents FROM returns WHERE id = 'r1'"), 8000)
				eq(t, "first tender", r.str("SELECT refund_kind FROM returns WHERE id = 'r1'"), "card")
				eq(t, "tenders", r.int("SELECT count(*) FROM return_tenders WHERE return_id = 'r1'"), 2)
				eq(t, "cash", r.int("SELECT amount_cents FROM return_tenders WHERE return_id = 'r1' AND kind = 'cash'"), 3800)
				eq(t, "single tender kept too", r.int("SELECT amount_cents FROM return_tenders WHERE return_id = 'r0'"), 8000)
			}},
		{name: "split, more to the card than is left of it", setup: []Body{paidSale(), ret("r0", 1, 8000)},
			body: split("r1", 1, card(5000), cash(3000)), status: StatusFlagged, flags: []ExceptionKind{ExOverRefund},
			check: func(t *testing.T, r *region) { eq(t, "over by", r.int("SELECT amount_cents FROM exceptions"), 800) }},
		{name: "split, one part to a tender not used", setup: []Body{paidSale()},
			body:   split("r1", 1, card(4000), Tender{Kind: TenderGiftCard, AmountCents: 4000, CardToken: "gc-9"}),
			status: StatusFlagged, flags: []ExceptionKind{ExTenderMismatch}},
		{name: "split and single refund both given", setup: []Body{paidSale()},
			body:   func() Body { x := split("r1", 1, card(4000), cash(4000)); x.Refund = card(8000); return x }(),
			status: StatusRejected, code: CodeInvalid},
		{name: "split naming a tender twice", setup: []Body{paidSale()}, body: split("r1", 1, cash(4000), cash(4000)),
			status: StatusRejected, code: CodeInvalid},
		{name: "split not adding up to the lines", setup: []Body{paidSale()},
			body:   func() Body { x := split("r1", 1, card(4000), cash(4000)); x.Lines[0].RefundCents = 7000; return x }(),
			status: StatusRejected, code: CodeInvalid},
		{name: "without an order, split with cash", body: func() Body {
			x := receiptless("r1", TenderStoreCredit)
			x.Refund, x.Refunds = Tender{}, []Tender{{Kind: TenderStoreCredit, AmountCents: 600}, cash(400)}
			return x
		}(), status: StatusFlagged, flags: []ExceptionKind{ExTenderMismatch},
			check: func(t *testing.T, r *region) {
				eq(t, "flagged amount", r.int("SELECT amount_cents FROM exceptions"), 400)
			}},
		{name: "to the original card, restocked", setup: []Body{paidSale()}, body: ret("r1", 1, 8000), status: StatusAccepted,
			check: func(t *testing.T, r *region) {
				eq(t, "restocked", r.onHand("S1", "SKU-1"), 4)
				eq(t, "refund", r.int("SELECT refund_cents FROM returns WHERE id = 'r1'"), 8000)
				eq(t, "lines", r.int("SELECT count(*) FROM return_lines WHERE return_id = 'r1'"), 1)
			}},
		{name: "not restocked", setup: []Body{paidSale()}, body: func() Body { x := ret("r1", 1, 8000); x.Restock = false; return x }(),
			status: StatusAccepted, check: func(t *testing.T, r *region) { eq(t, "stock", r.onHand("S1", "SKU-1"), 3) }},
		{name: "more units than bought", setup: []Body{paidSale()}, body: ret("r1", 3, 8000),
			status: StatusFlagged, flags: []ExceptionKind{ExOverReturnUnits}},
		{name: "more units than bought minus already returned", setup: []Body{paidSale(), ret("r0", 1, 8000)}, body: ret("r1", 2, 4000),
			status: StatusFlagged, flags: []ExceptionKind{ExOverReturnUnits}},
		{name: "more than was paid", setup: []Body{paidSale()}, body: ret("r1", 2, 17300),
			status: StatusFlagged, flags: []ExceptionKind{ExOverRefund}, check: func(t *testing.T, r *region) {
				eq(t, "over by", r.int("SELECT amount_cents FROM exceptions"), 100)
			}},
		{name: "more than was paid in all, over two returns", setup: []Body{paidSale(), ret("r0", 1, 12000)}, body: ret("r1", 1, 6000),
			status: StatusFlagged, flags: []ExceptionKind{ExOverRefund}},
		{name: "more than was paid with that tender", setup: []Body{paidSale()}, body: toTender(ret("r1", 1, 8000), TenderCash, ""),
			status: StatusFlagged, flags: []ExceptionKind{ExOverRefund}, check: func(t *testing.T, r *region) {
				eq(t, "over by", r.int("SELECT amount_cents FROM exceptions"), 3000)
			}},
		{name: "to a tender not used", setup: []Body{paidSale()}, body: toTender(ret("r1", 1, 8000), TenderGiftCard, ""),
			status: StatusFlagged, flags: []ExceptionKind{ExTenderMismatch}},
		{name: "to another card", setup: []Body{paidSale()}, body: toTender(ret("r1", 1, 8000), TenderCard, "tok-other"),
			status: StatusFlagged, flags: []ExceptionKind{ExTenderMismatch}},
		{name: "to a tender not used, with a manager's approval", setup: []Body{paidSale()},
			body: approved(toTender(ret("r1", 1, 8000), TenderGiftCard, ""), "mgr"), status: StatusAccepted,
			check: func(t *testing.T, r *region) { eq(t, "approver", r.str("SELECT approved_by FROM returns"), "mgr") }},
		{name: "an associate's approval does not count", setup: []Body{paidSale()},
			body: approved(toTender(ret("r1", 1, 8000), TenderGiftCard, ""), "assoc"), status: StatusFlagged,
			flags: []ExceptionKind{ExUnapprovedApprover, ExTenderMismatch}},
		{name: "approval cannot make an over-refund right", setup: []Body{paidSale()}, body: approved(ret("r1", 2, 20000), "mgr"),
			status: StatusFlagged, flags: []ExceptionKind{ExOverRefund}},
		{name: "past the return window", setup: []Body{paidSale()}, advance: 31 * 24 * time.Hour, body: ret("r1", 1, 8000),
			status: StatusFlagged, flags: []ExceptionKind{ExPastReturnWindow}},
		{name: "inside a window the region widened", setup: []Body{paidSale(), &SetSetting{Key: "return_window_days", Value: 60}},
			advance: 31 * 24 * time.Hour, body: ret("r1", 1, 8000), status: StatusAccepted},
		{name: "past the window with a manager's approval", setup: []Body{paidSale()}, advance: 31 * 24 * time.Hour,
			body: approved(ret("r1", 1, 8000), "mgr"), status: StatusAccepted},
		{name: "inside the window", setup: []Body{paidSale()}, advance: 29 * 24 * time.Hour, body: ret("r1", 1, 8000), status: StatusAccepted},
		{name: "without an order, as store credit", body: receiptless("r1", TenderStoreCredit), status: StatusAccepted,
			check: func(t *testing.T, r *region) { eq(t, "receipt", r.int("SELECT with_receipt FROM returns"), 0) }},
		{name: "without an order, as cash", body: receiptless("r1", TenderCash), status: StatusFlagged, flags: []ExceptionKind{ExTenderMismatch}},
		{name: "without an order, over the cap",
			setup: []Body{receiptless("r1", TenderStoreCredit), receiptless("r2", TenderStoreCredit), receiptless("r3", TenderStoreCredit)},
			body:  receiptless("r4", TenderStoreCredit), status: StatusFlagged, flags: []ExceptionKind{ExReceiptlessCap}},
		{name: "without an order, under a cap the region raised",
			setup: []Body{&SetSetting{Key: "receiptless_cap_count", Value: 5},
				receiptless("r1", TenderStoreCredit), receiptless("r2", TenderStoreCredit), receiptless("r3", TenderStoreCredit)},
			body: receiptless("r4", TenderStoreCredit), status: StatusAccepted},
		{name: "without an order, the cap counts only recent returns",
			setup:   []Body{receiptless("r1", TenderStoreCredit), receiptless("r2", TenderStoreCredit), receiptless("r3", TenderStoreCredit)},
			advance: 46 * 24 * time.Hour, body: receiptless("r4", TenderStoreCredit), status: StatusAccepted},
		{name: "without an order, over the cap, approved",
			setup: []Body{receiptless("r1", TenderStoreCredit), receiptless("r2", TenderStoreCredit), receiptless("r3", TenderStoreCredit)},
			body:  approved(receiptless("r4", TenderStoreCredit), "mgr"), status: StatusAccepted},
		{name: "unknown order", body: ret("r1", 1, 8000), status: StatusRejected, code: CodeNotFound},
		{name: "a line the order does not have", setup: []Body{paidSale()},
			body: func() Body { x := ret("r1", 1, 8000); x.Lines[0].OrderLineNo = 9; return x }(), status: StatusRejected, code: CodeNotFound},
		{name: "the wrong product for the line", setup: []Body{paidSale()},
			body: func() Body { x := ret("r1", 1, 8000); x.Lines[0].SKU = "SKU-2"; return x }(), status: StatusRejected, code: CodeInvalid},
		{name: "refund is not the sum of the lines", setup: []Body{paidSale()},
			body: func() Body { x := ret("r1", 1, 8000); x.Refund.AmountCents = 9000; return x }(), status: StatusRejected, code: CodeInvalid},
		{name: "a return id used before", setup: []Body{paidSale(), ret("r1", 1, 8000)}, body: ret("r1", 1, 8000),
			status: StatusRejected, code: CodeDuplicateID},
	})
}

func TestCouponsAndOffers(t *testing.T) {
	future := t0.AddDate(0, 0, 14)
	runApplyCases(t, []applyCase{
		{name: "issue makes an offer and a coupon", body: coupon("C1", "cust-1", future), status: StatusAccepted,
			check: func(t *testing.T, r *region) {
				eq(t, "offer", r.str("SELECT outcome FROM offers WHERE id = 'offer-C1'"), "pending")
				eq(t, "channel", r.str("SELECT channel FROM offers WHERE id = 'offer-C1'"), "store_signin")
				eq(t, "coupon", r.str("SELECT customer_id FROM coupons WHERE code = 'C1'"), "cust-1")
			}},
		{name: "a code issued before", setup: []Body{coupon("C1", "cust-1", future)},
			body: func() Body { c := coupon("C1", "cust-2", future); c.OfferID = "other"; return c }(), status: StatusRejected, code: CodeDuplicateID},
		{name: "a promotion that ended", advance: 40 * 24 * time.Hour, body: coupon("C1", "cust-1", t0.AddDate(0, 2, 0)),
			status: StatusRejected, code: CodeInactive},
		{name: "an unknown promotion", body: func() Body { c := coupon("C1", "cust-1", future); c.PromotionID = "nope"; return c }(),
			status: StatusRejected, code: CodeNotFound},
		{name: "expiring before it is issued", body: coupon("C1", "cust-1", t0.Add(-time.Hour)), status: StatusRejected, code: CodeInvalid},
		{name: "redeem", setup: []Body{coupon("C1", "cust-1", future)}, body: &RedeemCoupon{Code: "C1", CustomerID: "cust-1", StoreID: "S2"},
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "store", r.str("SELECT redeemed_store FROM coupons"), "S2")
				eq(t, "offer", r.str("SELECT outcome FROM offers"), "redeemed")
			}},
		{name: "redeem twice", setup: []Body{coupon("C1", "cust-1", future), &RedeemCoupon{Code: "C1", StoreID: "S2"}},
			body: &RedeemCoupon{Code: "C1", StoreID: "S1"}, status: StatusRejected, code: CodeCouponUsed, reason: "at store S2 on 2026-11-02"},
		{name: "redeem expired", setup: []Body{coupon("C1", "cust-1", t0.Add(time.Hour))}, advance: 2 * time.Hour,
			body: &RedeemCoupon{Code: "C1"}, status: StatusRejected, code: CodeCouponExpired},
		{name: "redeem someone else's", setup: []Body{coupon("C1", "cust-1", future)},
			body: &RedeemCoupon{Code: "C1", CustomerID: "cust-2"}, status: StatusRejected, code: CodeCouponNotHers},
		{name: "redeem forged", body: &RedeemCoupon{Code: "FORGED"}, status: StatusRejected, code: CodeNotFound},
		{name: "an email offer", body: &MakeOffer{ID: "of1", PromotionID: "P10", CustomerID: "cust-2", Channel: OfferEmail},
			status: StatusAccepted},
		{name: "an offer ignored", setup: []Body{&MakeOffer{ID: "of1", PromotionID: "P10", CustomerID: "cust-2", Channel: OfferEmail}},
			body: &RecordOfferOutcome{OfferID: "of1", Outcome: OutcomeIgnored}, status: StatusAccepted,
			check: func(t *testing.T, r *region) { eq(t, "outcome", r.str("SELECT outcome FROM offers"), "ignored") }},
		{name: "a redeemed offer stays redeemed", setup: []Body{coupon("C1", "cust-1", future), &RedeemCoupon{Code: "C1"}},
			body: &RecordOfferOutcome{OfferID: "offer-C1", Outcome: OutcomeExpired}, status: StatusRejected, code: CodeBadTransition},
		{name: "outcome of an unknown offer", body: &RecordOfferOutcome{OfferID: "nope", Outcome: OutcomeIgnored},
			status: StatusRejected, code: CodeNotFound},
		{name: "redeemed names its order", body: &RecordOfferOutcome{OfferID: "of1", Outcome: OutcomeRedeemed},
			status: StatusRejected, code: CodeInvalid},
	})
}

func TestCustomersAndCatalog(t *testing.T) {
	cust := func(id, card string) *UpsertCustomer {
		return &UpsertCustomer{ID: id, Name: "N", LoyaltyCard: card, Since: t0, AcquiredVia: AcquiredWeb}
	}
	runApplyCases(t, []applyCase{
		{name: "a new customer", body: cust("cust-3", "LC-0003"), status: StatusAccepted, check: func(t *testing.T, r *region) {
			eq(t, "language", r.str("SELECT language FROM customers WHERE id = 'cust-3'"), "en")
		}},
		{name: "updating keeps her card", body: func() Body { c := cust("cust-1", "LC-0001"); c.Name = "Dana B"; return c }(),
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "name", r.str("SELECT name FROM customers WHERE id = 'cust-1'"), "Dana B")
			}},
		{name: "another customer's card", body: cust("cust-3", "LC-0001"), status: StatusRejected, code: CodeConflict},
		{name: "a referral names the referrer", body: &UpsertCustomer{ID: "c", Name: "N", Since: t0, AcquiredVia: AcquiredReferral},
			status: StatusRejected, code: CodeInvalid},
		{name: "an unknown home store", body: func() Body { c := cust("cust-3", ""); c.HomeStore = "S9"; return c }(),
			status: StatusRejected, code: CodeNotFound},
		{name: "letters in a phone number", body: func() Body { c := cust("cust-3", ""); c.Phone = "555-CALL"; return c }(),
			status: StatusRejected, code: CodeInvalid},
		{name: "a barcode of another product", body: &UpsertProduct{SKU: "SKU-9", Name: "x", Category: "c", Barcodes: []string{"012345678905"}},
			status: StatusRejected, code: CodeConflict},
		{name: "barcodes and complements are replaced",
			body: &UpsertProduct{SKU: "SKU-3", Name: "Insoles", Category: "accessories", PriceCents: 2500, Active: true,
				Barcodes: []string{"5901234123457"}, Complements: []string{"SKU-2"}},
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "complement", r.str("SELECT complement_sku FROM product_complements WHERE sku = 'SKU-3'"), "SKU-2")
				eq(t, "complements", r.int("SELECT count(*) FROM product_complements WHERE sku = 'SKU-3'"), 1)
				eq(t, "barcode", r.str("SELECT sku FROM product_barcodes WHERE barcode = '5901234123457'"), "SKU-3")
			}},
		{name: "a complement that does not exist", body: &UpsertProduct{SKU: "SKU-9", Name: "x", Category: "c", Complements: []string{"SKU-404"}},
			status: StatusRejected, code: CodeNotFound},
		{name: "a negative price", body: &UpsertProduct{SKU: "SKU-9", Name: "x", Category: "c", PriceCents: -1},
			status: StatusRejected, code: CodeInvalid},
		{name: "a clerk's PIN must be hashed", body: &UpsertClerk{ID: "k", Name: "K", Role: RoleAssociate, PINHash: "1234"},
			status: StatusRejected, code: CodeInvalid, reason: "pin_hash"},
		{name: "a store with an unknown time zone", body: &UpsertStore{ID: "S3", Kind: KindStore, Name: "x", Region: "west", Timezone: "Mars/Base"},
			status: StatusRejected, code: CodeInvalid},
		{name: "a percent promotion over 100%", body: &UpsertPromotion{ID: "P", Name: "x", PromoType: PromoPercentOff, Value: 10001,
			Audience: AudienceAll, StartsAt: t0, EndsAt: t0.Add(time.Hour)}, status: StatusRejected, code: CodeInvalid},
		{name: "a sale price for a product", body: &UpsertPromotion{ID: "P", Name: "x", PromoType: PromoSalePrice, Value: 6000, SKU: "SKU-1",
			Audience: AudienceWishList, StartsAt: t0, EndsAt: t0.Add(time.Hour), Active: true}, status: StatusAccepted},
		{name: "an unknown setting", body: &SetSetting{Key: "max_discount", Value: 5}, status: StatusRejected, code: CodeInvalid},
		{name: "a setting out of range", body: &SetSetting{Key: "return_window_days", Value: 0}, status: StatusRejected, code: CodeInvalid},
		{name: "stock received", body: &AdjustStock{Location: "S2", SKU: "SKU-2", Delta: 4, Reason: "received"}, status: StatusAccepted,
			check: func(t *testing.T, r *region) { eq(t, "S2 SKU-2", r.onHand("S2", "SKU-2"), 4) }},
		{name: "shrink below zero is flagged", body: &AdjustStock{Location: "S2", SKU: "SKU-1", Delta: -3, Reason: "shrink"},
			status: StatusFlagged, flags: []ExceptionKind{ExStockDiscrepancy}},
		{name: "stock at an unknown location", body: &AdjustStock{Location: "S9", SKU: "SKU-1", Delta: 1, Reason: "received"},
			status: StatusRejected, code: CodeNotFound},
		{name: "a reason the region does not use", body: &AdjustStock{Location: "S1", SKU: "SKU-1", Delta: 1, Reason: "magic"},
			status: StatusRejected, code: CodeInvalid},
	})
}

func TestEngagement(t *testing.T) {
	yes := true
	runApplyCases(t, []applyCase{
		{name: "wish list add", body: &AddWishItem{CustomerID: "cust-1", SKU: "SKU-3", Source: WishKiosk}, status: StatusAccepted},
		{name: "wish list add again keeps the date", setup: []Body{&AddWishItem{CustomerID: "cust-1", SKU: "SKU-3", Source: WishKiosk}},
			advance: time.Hour, body: &AddWishItem{CustomerID: "cust-1", SKU: "SKU-3", Source: WishClerk, Note: "size 9"},
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "added", r.int("SELECT added_at FROM wish_items"), t0.UnixMilli())
				eq(t, "note", r.str("SELECT note FROM wish_items"), "size 9")
			}},
		{name: "wish list remove", setup: []Body{&AddWishItem{CustomerID: "cust-1", SKU: "SKU-3", Source: WishKiosk}},
			body: &RemoveWishItem{CustomerID: "cust-1", SKU: "SKU-3"}, status: StatusAccepted,
			check: func(t *testing.T, r *region) { eq(t, "items", r.int("SELECT count(*) FROM wish_items"), 0) }},
		{name: "wish list remove what is not there", body: &RemoveWishItem{CustomerID: "cust-1", SKU: "SKU-3"}, status: StatusAccepted},
		{name: "wish list of an unknown product", body: &AddWishItem{CustomerID: "cust-1", SKU: "SKU-404", Source: WishKiosk},
			status: StatusRejected, code: CodeNotFound},
		{name: "visit", body: &RecordVisit{ID: "v1", CustomerID: "cust-1", StoreID: "S1", Method: SignInCard}, status: StatusAccepted},
		{name: "visit by an unknown customer", body: &RecordVisit{ID: "v1", CustomerID: "ghost", StoreID: "S1", Method: SignInCard},
			status: StatusRejected, code: CodeNotFound},
		{name: "visit by an unknown method", body: &RecordVisit{ID: "v1", CustomerID: "cust-1", StoreID: "S1", Method: "telepathy"},
			status: StatusRejected, code: CodeInvalid},
		{name: "service contact resolved later keeps its opening time",
			setup:   []Body{&RecordServiceContact{ID: "sc1", CustomerID: "cust-1", Channel: ContactPhone, Reason: "late parcel"}},
			advance: 48 * time.Hour,
			body:    &RecordServiceContact{ID: "sc1", CustomerID: "cust-1", Channel: ContactPhone, Reason: "late parcel", Resolved: true, Satisfied: &yes},
			status:  StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "opened", r.int("SELECT opened_at FROM service_contacts"), t0.UnixMilli())
				eq(t, "satisfied", r.int("SELECT satisfied FROM service_contacts"), 1)
			}},
		{name: "cart abandoned at payment",
			setup: []Body{
				&RecordCartEvent{ID: "e1", CartID: "k1", CustomerID: "cust-1", Channel: ChannelWeb, Kind: CartAdd, SKU: "SKU-1", Qty: 1, Step: StepCart},
				&RecordCartEvent{ID: "e2", CartID: "k1", CustomerID: "cust-1", Channel: ChannelWeb, Kind: CartCheckoutStep, Step: StepPayment},
			},
			body:   &RecordCartEvent{ID: "e3", CartID: "k1", CustomerID: "cust-1", Channel: ChannelWeb, Kind: CartAbandon, Step: StepCart},
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "status", r.str("SELECT status FROM carts"), "abandoned")
				eq(t, "step", r.str("SELECT last_step FROM carts"), "payment")
			}},
		{name: "cart purchased", setup: []Body{sale("s1", "cust-1", Line{SKU: "SKU-2", Qty: 1, UnitPriceCents: 1200}),
			&RecordCartEvent{ID: "e1", CartID: "k1", CustomerID: "cust-1", Channel: ChannelKiosk, Kind: CartAdd, SKU: "SKU-2", Qty: 1, Step: StepCart}},
			body:   &RecordCartEvent{ID: "e2", CartID: "k1", CustomerID: "cust-1", Channel: ChannelKiosk, Kind: CartPurchase, Step: StepReview, OrderID: "s1"},
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				eq(t, "status", r.str("SELECT status FROM carts"), "purchased")
				eq(t, "order", r.str("SELECT order_id FROM carts"), "s1")
			}},
		{name: "a cart add without a product", body: &RecordCartEvent{ID: "e1", CartID: "k1", Channel: ChannelWeb, Kind: CartAdd, Step: StepCart},
			status: StatusRejected, code: CodeInvalid},
		{name: "a manager resolves an exception", setup: []Body{&AdjustStock{Location: "S2", SKU: "SKU-1", Delta: -3, Reason: "shrink"}},
			body: &ResolveException{ExceptionID: "test/17#1", ClerkID: "mgr", Resolution: "recounted: 0"}, status: StatusAccepted,
			check: func(t *testing.T, r *region) {
				eq(t, "status", r.str("SELECT status FROM exceptions"), "resolved")
				eq(t, "by", r.str("SELECT resolved_by FROM exceptions"), "mgr")
			}},
		{name: "an associate may not resolve", setup: []Body{&AdjustStock{Location: "S2", SKU: "SKU-1", Delta: -3, Reason: "shrink"}},
			body: &ResolveException{ExceptionID: "test/17#1", ClerkID: "assoc", Resolution: "x"}, status: StatusRejected, code: CodeNotPermitted},
		{name: "resolving twice", setup: []Body{&AdjustStock{Location: "S2", SKU: "SKU-1", Delta: -3, Reason: "shrink"},
			&ResolveException{ExceptionID: "test/17#1", ClerkID: "mgr", Resolution: "x"}},
			body: &ResolveException{ExceptionID: "test/17#1", ClerkID: "mgr", Resolution: "y"}, status: StatusRejected, code: CodeBadTransition},
	})
}

// withCredit pays c of the order with store credit, the rest by card.
func withCredit[T interface{ *RecordSale | *PlaceOrder }](b T, c Cents) T {
	var o *Order
	switch v := any(b).(type) {
	case *RecordSale:
		o = &v.Order
	case *PlaceOrder:
		o = &v.Order
	}
	_, _, total := o.Totals()
	o.Tenders = []Tender{{Kind: TenderStoreCredit, AmountCents: c}}
	if total > c {
		o.Tenders = append(o.Tenders, Tender{Kind: TenderCard, AmountCents: total - c, CardToken: "tok-cust-1"})
	}
	return b
}

// Store credit: refunds paid as store credit, less what she paid with it.
// A till sale (a fact) that spends more is applied and flagged; an order
// (a request) is refused.
func TestStoreCredit(t *testing.T) {
	socks := Line{SKU: "SKU-2", Qty: 1, UnitPriceCents: 1200}
	shoe := Line{SKU: "SKU-1", Qty: 1, UnitPriceCents: 8000} // in stock at DC1, where kiosk orders ship from
	credit := receiptless("r-credit", TenderStoreCredit)     // 1000 of credit for cust-1
	runApplyCases(t, []applyCase{
		{name: "a sale within her credit", setup: []Body{credit}, body: withCredit(sale("s1", "cust-1", socks), 1000),
			status: StatusAccepted, check: func(t *testing.T, r *region) {
				bal, err := StoreCreditBalance(context.Background(), r.db, "cust-1")
				eq(t, "balance error", err, nil)
				eq(t, "balance", bal, 0)
			}},
		{name: "a second sale spending the same credit", setup: []Body{credit, withCredit(sale("s0", "cust-1", socks), 1000)},
			body: withCredit(sale("s1", "cust-1", socks), 600), status: StatusFlagged, flags: []ExceptionKind{ExCreditOverdrawn},
			check: func(t *testing.T, r *region) {
				eq(t, "over by", r.int("SELECT amount_cents FROM exceptions"), 600)
				eq(t, "the sale stands", r.int("SELECT count(*) FROM orders WHERE id = 's1'"), 1)
			}},
		{name: "a sale with credit she never had", body: withCredit(sale("s1", "cust-1", socks), 1200),
			status: StatusFlagged, flags: []ExceptionKind{ExCreditOverdrawn}},
		{name: "store credit without a customer", setup: []Body{credit}, body: withCredit(sale("s1", "", socks), 1000),
			status: StatusRejected, code: CodeInvalid},
		{name: "an order within her credit", setup: []Body{credit}, body: withCredit(kioskOrder("o1", shoe), 1000), status: StatusAccepted},
		{name: "an order over her credit", setup: []Body{credit}, body: withCredit(kioskOrder("o1", shoe), 1200),
			status: StatusRejected, code: CodeInsufficientCredit},
		{name: "a cancelled order gives its credit back", setup: []Body{credit, withCredit(kioskOrder("o0", shoe), 1000),
			&FulfilOrder{OrderID: "o0", Status: OrderCancelled}},
			body: withCredit(kioskOrder("o1", shoe), 1000), status: StatusAccepted},
	})
}
