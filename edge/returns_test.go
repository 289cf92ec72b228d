package edge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/retail"
)

// ordPlaced is a web or phone order of SKU-1 shipped from DC1.
func ordPlaced(id, customer string, ch retail.Channel, qty int64, price retail.Cents, tenders []retail.Tender) *retail.PlaceOrder {
	return &retail.PlaceOrder{Order: retail.Order{ID: id, CustomerID: customer, Channel: ch, Fulfilment: retail.ShipToHome, FulfilFrom: "DC1",
		ShipAddress: "1 Main St", Lines: []retail.Line{{SKU: "SKU-1", Qty: qty, UnitPriceCents: price}}, Tenders: tenders}}
}

// ordSocks is a till sale of socks (SKU-2) at a price of the day.
func ordSocks(id, store string, price retail.Cents) *retail.RecordSale {
	return &retail.RecordSale{Order: retail.Order{ID: id, Channel: retail.ChannelStore, StoreID: store, Fulfilment: retail.CarryOut,
		Lines: []retail.Line{{SKU: "SKU-2", Qty: 1, UnitPriceCents: price}}, Tenders: ordCash(price)}}
}

func ordNoOrderReturn(id, customer string) *retail.ReturnItems {
	return &retail.ReturnItems{ID: id, CustomerID: customer, StoreID: "S2", ClerkID: "clerk-S2", Reason: "gift",
		Lines:  []retail.ReturnLine{{SKU: "SKU-2", Qty: 1, RefundCents: 1200}},
		Refund: retail.Tender{Kind: retail.TenderStoreCredit, AmountCents: 1200}}
}

// returnsHistory is what the shoppers bought, in every channel, and
// returned before.
//
//	ord-card     cust-1, S1 till, 5 days ago: a shoe (80.00) by card tok-cust-1
//	ord-cash     cust-1, S2 till, 10 days ago: 2 socks (12.00) in cash
//	ord-old      cust-1, S1 till, 40 days ago: a shoe by card tok-cust-1 (past the 30-day window)
//	ord-cpn      cust-1, S3 till, 7 days ago: socks and a shoe, 10.00 coupon, 82.00 cash
//	ord-web      cust-1, web, 8 days ago: 2 shoes at 70.00 by card tok-web, shipped; one returned 2 days ago
//	ord-phone    cust-2, phone, 9 days ago: a shoe, 50.00 by card tok-2 and 30.00 cash, shipped
//	ord-reserved cust-2, web, yesterday: a shoe, not shipped yet
//	ord-p20, ord-p40: socks sold at 9.00 20 days ago and at 5.00 40 days ago
//	cust-3: receipt-less returns 10, 20 and 30 days ago (the cap: 3 in 45 days) and 50 days ago
func returnsHistory() []ordDated {
	webReturn := scenario.ReturnLine("ret-web", "ord-web", "S2", "cust-1")
	webReturn.Lines[0].RefundCents, webReturn.Refund = 7000, retail.Tender{Kind: retail.TenderCard, AmountCents: 7000, CardToken: "tok-web"}
	return []ordDated{
		ordDaysAgo(40, scenario.CardSale("ord-old", "S1", "cust-1")),
		ordDaysAgo(40, ordSocks("ord-p40", "S4", 500)),
		ordDaysAgo(20, ordSocks("ord-p20", "S4", 900)),
		ordDaysAgo(10, scenario.Sale("ord-cash", "S2", "cust-1", 2, "")),
		ordDaysAgo(9, ordPlaced("ord-phone", "cust-2", retail.ChannelPhone, 1, 8000,
			append(ordCard(5000, "tok-2"), ordCash(3000)...))),
		ordDaysAgo(8, ordPlaced("ord-web", "cust-1", retail.ChannelWeb, 2, 7000, ordCard(14000, "tok-web"))),
		ordDaysAgo(7, scenario.Sale("ord-cpn", "S3", "cust-1", 1, "CPN-ONE")),
		ordDaysAgo(6, &retail.FulfilOrder{OrderID: "ord-web", Status: retail.OrderFulfilled}),
		ordDaysAgo(6, &retail.FulfilOrder{OrderID: "ord-phone", Status: retail.OrderFulfilled}),
		ordDaysAgo(5, scenario.CardSale("ord-card", "S1", "cust-1")),
		ordDaysAgo(2, webReturn),
		ordDaysAgo(1, ordPlaced("ord-reserved", "cust-2", retail.ChannelWeb, 1, 8000, ordCard(8000, "tok-2"))),
		ordDaysAgo(50, ordNoOrderReturn("ret-n50", "cust-3")),
		ordDaysAgo(30, ordNoOrderReturn("ret-n30", "cust-3")),
		ordDaysAgo(20, ordNoOrderReturn("ret-n20", "cust-3")),
		ordDaysAgo(10, ordNoOrderReturn("ret-n10", "cust-3")),
	}
}

func TestFindReturnable(t *testing.T) {
	ctx := context.Background()
	g := newOrderRegion(t, returnsHistory()...)
	lines, err := g.s.FindReturnable(ctx, "cust-1")
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		order string
		line  int64
	}
	got := map[key]ReturnableLine{}
	var order []string
	for _, l := range lines {
		got[key{l.OrderID, l.LineNo}] = l
		if len(order) == 0 || order[len(order)-1] != l.OrderID {
			order = append(order, l.OrderID)
		}
	}
	if want := []string{"ord-card", "ord-cpn", "ord-web", "ord-cash", "ord-old"}; len(order) != len(want) || len(lines) != 6 {
		t.Fatalf("orders %v (%d lines), want %v newest first (6 lines)", order, len(lines), want)
	} else {
		for i := range want {
			if order[i] != want[i] {
				t.Fatalf("orders %v, want %v newest first", order, want)
			}
		}
	}
	for _, tc := range []struct {
		order       string
		line        int64
		channel     retail.Channel
		sku         string
		bought, ret int64
		perUnit     retail.Cents
		within      bool
		tenders     []ReturnableTender
	}{
		{"ord-card", 1, retail.ChannelStore, "SKU-1", 1, 0, 8000, true, []ReturnableTender{{retail.TenderCard, "tok-cust-1", 8000, 0}}},
		{"ord-cash", 1, retail.ChannelStore, "SKU-2", 2, 0, 1200, true, []ReturnableTender{{retail.TenderCash, "", 2400, 0}}},
		{"ord-old", 1, retail.ChannelStore, "SKU-1", 1, 0, 8000, false, []ReturnableTender{{retail.TenderCard, "tok-cust-1", 8000, 0}}},
		// 10.00 off 92.00: each line pays 82/92 of its price, rounded down.
		{"ord-cpn", 1, retail.ChannelStore, "SKU-2", 1, 0, 1069, true, []ReturnableTender{{retail.TenderCash, "", 8200, 0}}},
		{"ord-cpn", 2, retail.ChannelStore, "SKU-1", 1, 0, 7130, true, []ReturnableTender{{retail.TenderCash, "", 8200, 0}}},
		{"ord-web", 1, retail.ChannelWeb, "SKU-1", 2, 1, 7000, true, []ReturnableTender{{retail.TenderCard, "tok-web", 14000, 7000}}},
	} {
		l, ok := got[key{tc.order, tc.line}]
		if !ok {
			t.Fatalf("%s line %d missing", tc.order, tc.line)
		}
		if l.Channel != tc.channel || l.SKU != tc.sku || l.QtyBought != tc.bought || l.QtyReturned != tc.ret || l.PaidPerUnitCents != tc.perUnit ||
			l.WithinWindow != tc.within || len(l.Tenders) != len(tc.tenders) || l.Name == "" {
			t.Fatalf("%s line %d: %+v", tc.order, tc.line, l)
		}
		for i := range tc.tenders {
			if l.Tenders[i] != tc.tenders[i] {
				t.Fatalf("%s tenders %+v, want %+v", tc.order, l.Tenders, tc.tenders)
			}
		}
		if !l.WindowEndsAt.Equal(l.PlacedAt.AddDate(0, 0, 30)) {
			t.Fatalf("%s window ends %s, placed %s", tc.order, l.WindowEndsAt, l.PlacedAt)
		}
	}

	byCard, err := g.s.FindReturnableByCard(ctx, "tok-cust-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(byCard) != 2 || byCard[0].OrderID != "ord-card" || byCard[1].OrderID != "ord-old" {
		t.Fatalf("by card tok-cust-1: %+v", byCard)
	}
	// Split tenders: the card finds the phone order; the reserved one is not returnable.
	byCard, err = g.s.FindReturnableByCard(ctx, "tok-2")
	if err != nil || len(byCard) != 1 || byCard[0].OrderID != "ord-phone" || byCard[0].Channel != retail.ChannelPhone {
		t.Fatalf("by card tok-2: %+v, %v", byCard, err)
	}
	if none, err := g.s.FindReturnableByCard(ctx, "tok-none"); err != nil || len(none) != 0 || none == nil {
		t.Fatalf("unknown card: %#v, %v", none, err)
	}
	if _, err := g.s.FindReturnableByCard(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty card token: %v", err)
	}
	if _, err := g.s.FindReturnable(ctx, "cust-404"); !errors.Is(err, ErrUnknownCustomer) {
		t.Fatalf("unknown customer: %v", err)
	}

	// A return here shows at once.
	if _, err := g.s.Return(ctx, ReturnRequest{ClerkID: "clerk-S1", OrderID: "ord-cash", Lines: []ReturnItem{{SKU: "SKU-2"}}, Reason: "too small"}); err != nil {
		t.Fatal(err)
	}
	lines, _ = g.s.FindReturnable(ctx, "cust-1")
	for _, l := range lines {
		if l.OrderID == "ord-cash" && (l.QtyReturned != 1 || l.Tenders[0].RefundedCents != 1200) {
			t.Fatalf("after a return: %+v", l)
		}
	}
}

func TestReturn(t *testing.T) {
	ctx := context.Background()
	hist := returnsHistory()
	cardTender := func(c retail.Cents, tok string) retail.Tender {
		return retail.Tender{Kind: retail.TenderCard, AmountCents: c, CardToken: tok}
	}
	manager := func(r ReturnRequest, who, pin string) ReturnRequest {
		r.ApproverID, r.ApproverPIN = who, pin
		return r
	}
	old := ReturnRequest{OrderID: "ord-old", Lines: []ReturnItem{{OrderLineNo: 1}}}
	capped := ReturnRequest{CustomerID: "cust-3", Lines: []ReturnItem{{Barcode: sockBarcode}}}
	for _, tc := range []struct {
		name     string
		req      ReturnRequest
		want     error
		refund   retail.Tender
		refunds  []retail.Tender // when split; else refund alone
		approved string
		serial   bool
	}{
		{name: "card sale back to its card", req: ReturnRequest{OrderID: "ord-card", Lines: []ReturnItem{{OrderLineNo: 1}}, Restock: true},
			refund: cardTender(8000, "tok-cust-1")},
		{name: "one of two socks by barcode, in cash", req: ReturnRequest{OrderID: "ord-cash", Lines: []ReturnItem{{Barcode: sockBarcode}}},
			refund: retail.Tender{Kind: retail.TenderCash, AmountCents: 1200}},
		{name: "the coupon's share stays off", req: ReturnRequest{OrderID: "ord-cpn", Lines: []ReturnItem{{SKU: "SKU-2"}, {SKU: "SKU-1"}}},
			refund: retail.Tender{Kind: retail.TenderCash, AmountCents: 1069 + 7130}},
		{name: "web order, the unit not yet returned", req: ReturnRequest{OrderID: "ord-web", Lines: []ReturnItem{{OrderLineNo: 1}}, WithReceipt: true},
			refund: cardTender(7000, "tok-web")},
		{name: "split tender, to the cash: more than it paid", req: ReturnRequest{OrderID: "ord-phone", Lines: []ReturnItem{{OrderLineNo: 1}},
			RefundTo: &retail.Tender{Kind: retail.TenderCash}}, want: ErrOverPaid},
		{name: "split tender, to the card: more than it paid", req: ReturnRequest{OrderID: "ord-phone", Lines: []ReturnItem{{OrderLineNo: 1}},
			RefundTo: &retail.Tender{Kind: retail.TenderCard, CardToken: "tok-2"}}, want: ErrOverPaid},
		{name: "split tender: no one tender can take it, so both do, the card first",
			req: ReturnRequest{OrderID: "ord-phone", Lines: []ReturnItem{{OrderLineNo: 1}}}, refund: cardTender(8000, "tok-2"),
			refunds: []retail.Tender{cardTender(5000, "tok-2"), {Kind: retail.TenderCash, AmountCents: 3000}}},
		{name: "to a tender it was not paid with", req: ReturnRequest{OrderID: "ord-card", Lines: []ReturnItem{{OrderLineNo: 1}},
			RefundTo: &retail.Tender{Kind: retail.TenderCash}}, want: ErrInvalid},
		{name: "more units than are left", req: ReturnRequest{OrderID: "ord-web", Lines: []ReturnItem{{OrderLineNo: 1, Qty: 2}}}, want: ErrInvalid},
		{name: "the same line twice, over what is left", req: ReturnRequest{OrderID: "ord-web", Lines: []ReturnItem{{OrderLineNo: 1}, {OrderLineNo: 1}}},
			want: ErrInvalid},
		{name: "a SKU the order does not have", req: ReturnRequest{OrderID: "ord-card", Lines: []ReturnItem{{SKU: "SKU-2"}}}, want: ErrInvalid},
		{name: "a line the order does not have", req: ReturnRequest{OrderID: "ord-card", Lines: []ReturnItem{{OrderLineNo: 5}}}, want: ErrInvalid},
		{name: "order not delivered", req: ReturnRequest{OrderID: "ord-reserved", Lines: []ReturnItem{{OrderLineNo: 1}}}, want: ErrInvalid},
		{name: "unknown order", req: ReturnRequest{OrderID: "ord-404", Lines: []ReturnItem{{OrderLineNo: 1}}}, want: ErrUnknownOrder},
		{name: "nothing returned", req: ReturnRequest{OrderID: "ord-card"}, want: ErrEmptyBasket},
		{name: "no reason", req: ReturnRequest{OrderID: "ord-card", Lines: []ReturnItem{{OrderLineNo: 1}}, Reason: "-"}, want: ErrInvalid},
		{name: "unknown clerk", req: ReturnRequest{ClerkID: "nobody", OrderID: "ord-card", Lines: []ReturnItem{{OrderLineNo: 1}}}, want: ErrUnknownClerk},

		{name: "past the window", req: old, want: ErrReturnWindow},
		{name: "past the window, wrong manager PIN", req: manager(old, "mgr-S1", "0000"), want: ErrWrongPIN},
		{name: "past the window, an associate approves", req: manager(old, "clerk-S1", scenario.PIN), want: ErrNotPermitted},
		{name: "past the window, another store's manager", req: manager(old, "mgr-S2", scenario.PIN), want: ErrNotPermitted},
		{name: "past the window, the manager approves", req: manager(old, "mgr-S1", scenario.PIN),
			refund: cardTender(8000, "tok-cust-1"), approved: "mgr-S1"},

		{name: "receipt-less at the lowest price of 30 days", req: ReturnRequest{CustomerID: "cust-2",
			Lines: []ReturnItem{{Barcode: sockBarcode, Qty: 2}, {SKU: "SKU-1"}, {SKU: "SKU-LAST"}}, Restock: true},
			// socks sold at 9.00 20 days ago (5.00 40 days ago does not count); a shoe at 70.00 on the web;
			// the jacket did not sell: its price.
			refund: retail.Tender{Kind: retail.TenderStoreCredit, AmountCents: 2*900 + 7000 + 20000}},
		{name: "receipt-less, her first", req: ReturnRequest{CustomerID: "cust-1", Lines: []ReturnItem{{SKU: "SKU-2"}}},
			refund: retail.Tender{Kind: retail.TenderStoreCredit, AmountCents: 900}},
		{name: "receipt-less over the cap", req: capped, want: ErrReceiptlessCap},
		{name: "receipt-less over the cap, wrong PIN", req: manager(capped, "mgr-S1", "9999"), want: ErrWrongPIN},
		{name: "receipt-less over the cap, the manager approves", req: manager(capped, "mgr-S1", scenario.PIN),
			refund: retail.Tender{Kind: retail.TenderStoreCredit, AmountCents: 900}, approved: "mgr-S1", serial: true},
		{name: "receipt-less to a card", req: ReturnRequest{CustomerID: "cust-2", Lines: []ReturnItem{{SKU: "SKU-2"}},
			RefundTo: &retail.Tender{Kind: retail.TenderCard, CardToken: "tok-2"}}, want: ErrInvalid},
		{name: "receipt-less without a shopper", req: ReturnRequest{Lines: []ReturnItem{{SKU: "SKU-2"}}}, want: ErrInvalid},
		{name: "receipt-less, unknown barcode", req: ReturnRequest{CustomerID: "cust-2", Lines: []ReturnItem{{Barcode: "999"}}}, want: ErrUnknownProduct},
		{name: "receipt-less, unknown shopper", req: ReturnRequest{CustomerID: "cust-404", Lines: []ReturnItem{{SKU: "SKU-2"}}}, want: ErrUnknownCustomer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newOrderRegion(t, hist...)
			if tc.req.ClerkID == "" {
				tc.req.ClerkID = "clerk-S1"
			}
			switch tc.req.Reason {
			case "":
				tc.req.Reason = "did not fit"
			case "-":
				tc.req.Reason = ""
			}
			before := g.state()
			res, err := g.s.Return(ctx, tc.req)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Return: %v, want %v", err, tc.want)
				}
				t.Logf("refused: %v", err)
				g.unchanged(before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Refund != tc.refund || res.ApprovedBy != tc.approved || res.SerialReturner != tc.serial {
				t.Fatalf("refund %+v approved %q serial %v, want %+v %q %v", res.Refund, res.ApprovedBy, res.SerialReturner, tc.refund, tc.approved, tc.serial)
			}
			refunds := tc.refunds
			if refunds == nil {
				refunds = []retail.Tender{tc.refund}
			}
			if !slices.Equal(res.Refunds, refunds) {
				t.Fatalf("refunds %+v, want %+v", res.Refunds, refunds)
			}
			for i, want := range refunds {
				var kind, token string
				var amount retail.Cents
				g.query(fmt.Sprintf("SELECT kind, card_token, amount_cents FROM return_tenders WHERE return_id = '%s' AND tender_no = %d", res.ReturnID, i+1),
					&kind, &token, &amount)
				if kind != string(want.Kind) || token != want.CardToken || amount != want.AmountCents {
					t.Fatalf("return_tenders row %d: %s %s %d, want %+v", i+1, kind, token, amount, want)
				}
			}
			if res.Status != retail.StatusAccepted || len(res.Exceptions) > 0 {
				t.Fatalf("status %s %+v, want accepted", res.Status, res.Exceptions)
			}
			if after := g.state(); after.pending != before.pending+1 {
				t.Fatalf("outbox %d, want %d", after.pending, before.pending+1)
			}
			var kind, approvedBy string
			var amount retail.Cents
			g.query("SELECT refund_kind, refund_cents, coalesce(approved_by, '') FROM returns WHERE id = '"+res.ReturnID+"'", &kind, &amount, &approvedBy)
			if kind != string(tc.refund.Kind) || amount != tc.refund.AmountCents || approvedBy != tc.approved {
				t.Fatalf("returns row: %s %d %q", kind, amount, approvedBy)
			}
			rc := res.Receipt
			if rc.Kind != "return" || rc.TotalCents != tc.refund.AmountCents || len(rc.Tenders) != len(refunds) || rc.Tenders[0].Kind != tc.refund.Kind ||
				rc.OriginalOrderID != tc.req.OrderID || rc.Policy == "" || len(rc.Lines) == 0 {
				t.Fatalf("receipt %+v", rc)
			}
			// The hub, applying the same return, flags nothing: the edge
			// refused what it would have flagged.
			hub := g.upload()
			if len(hub) != 1 || hub[0].Status != retail.StatusAccepted {
				t.Fatalf("the hub: %+v", hub)
			}
		})
	}
}
