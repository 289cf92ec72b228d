package edge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/retail"
)

// aisleHistory adds to the seed a lamp stocked only at S3 and a vase
// stocked nowhere. The seed has the shoe (SKU-1) at every store and DC1,
// socks (SKU-2) at the stores only, and one jacket (SKU-LAST) at DC1 only.
func aisleHistory() []ordDated {
	return []ordDated{
		ordDaysAgo(30, &retail.UpsertProduct{SKU: "SKU-RARE", Name: "Brass lamp", Description: "A reading lamp, 100% brass", Category: "lamps",
			PriceCents: 4500, Active: true}),
		ordDaysAgo(30, &retail.UpsertProduct{SKU: "SKU-NONE", Name: "Glass vase", Category: "vases", PriceCents: 3000, Active: true}),
		ordDaysAgo(30, &retail.UpsertProduct{SKU: "SKU-GONE", Name: "Old trail shoe", Category: "shoes", PriceCents: 3000, Active: false}),
		ordDaysAgo(29, &retail.AdjustStock{Location: "S3", SKU: "SKU-RARE", Delta: 2, Reason: "received"}),
	}
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	g := newOrderRegion(t, aisleHistory()...)
	const million = 1000000
	stores := func(ids ...string) []LocationStock {
		out := []LocationStock{}
		for _, id := range ids {
			out = append(out, LocationStock{ID: id, Name: "Store " + id, Kind: retail.KindStore, Available: million})
		}
		return out
	}
	dc := func(n int64) []LocationStock {
		return []LocationStock{{ID: "DC1", Name: "West DC", Kind: retail.KindDC, Available: n}}
	}
	for _, tc := range []struct {
		name   string
		q      SearchQuery
		want   error
		skus   []string
		here   int64
		stores []LocationStock
		dcs    []LocationStock
	}{
		{name: "text in the name", q: SearchQuery{Text: "trail"}, skus: []string{"SKU-1"}, here: million, stores: stores("S2", "S3", "S4"), dcs: dc(million)},
		{name: "any case", q: SearchQuery{Text: "SHOE"}, skus: []string{"SKU-1"}, here: million, stores: stores("S2", "S3", "S4"), dcs: dc(million)},
		{name: "text in the description, only at another store", q: SearchQuery{Text: "reading"}, skus: []string{"SKU-RARE"},
			stores: []LocationStock{{ID: "S3", Name: "Store S3", Kind: retail.KindStore, Available: 2}}, dcs: []LocationStock{}},
		{name: "exact SKU", q: SearchQuery{Text: "SKU-NONE"}, skus: []string{"SKU-NONE"}, stores: []LocationStock{}, dcs: []LocationStock{}},
		{name: "category, at the DC only", q: SearchQuery{Category: "jackets"}, skus: []string{"SKU-LAST"}, stores: []LocationStock{}, dcs: dc(1)},
		{name: "scanned barcode", q: SearchQuery{Barcode: sockBarcode}, skus: []string{"SKU-2"}, here: million, stores: stores("S2", "S3", "S4"),
			dcs: []LocationStock{}},
		{name: "text and category", q: SearchQuery{Text: "a", Category: "lamps"}, skus: []string{"SKU-RARE"},
			stores: []LocationStock{{ID: "S3", Name: "Store S3", Kind: retail.KindStore, Available: 2}}, dcs: []LocationStock{}},
		{name: "LIKE wildcards are plain text", q: SearchQuery{Text: "100%"}, skus: []string{"SKU-RARE"},
			stores: []LocationStock{{ID: "S3", Name: "Store S3", Kind: retail.KindStore, Available: 2}}, dcs: []LocationStock{}},
		{name: "a wildcard alone matches nothing", q: SearchQuery{Text: "_"}, skus: []string{}},
		{name: "limit", q: SearchQuery{Text: "a", Limit: 2}, skus: []string{"SKU-RARE", "SKU-NONE"}},
		{name: "nothing found", q: SearchQuery{Text: "kayak"}, skus: []string{}},
		{name: "inactive products are not sold", q: SearchQuery{Text: "old trail"}, skus: []string{}},
		{name: "unknown barcode", q: SearchQuery{Barcode: "999"}, want: ErrUnknownProduct},
		{name: "no query", q: SearchQuery{Text: "  "}, want: ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits, err := g.s.Search(ctx, tc.q)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Search: %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			var skus []string
			for _, h := range hits {
				skus = append(skus, h.SKU)
			}
			if strings.Join(skus, ",") != strings.Join(tc.skus, ",") {
				t.Fatalf("hits %v, want %v", skus, tc.skus)
			}
			if len(hits) == 0 || tc.stores == nil {
				return
			}
			h := hits[0]
			if h.Here != tc.here || !equalStock(h.Stores, tc.stores) || !equalStock(h.DCs, tc.dcs) {
				t.Fatalf("stock here %d, stores %+v, DCs %+v; want %d, %+v, %+v", h.Here, h.Stores, h.DCs, tc.here, tc.stores, tc.dcs)
			}
			if !h.AsOf.Equal(ordSeedAt) || h.AgeSeconds != 3600 || h.AppliedSeq == 0 {
				t.Fatalf("as of %s, %d s old, seq %d; want %s, 3600 s", h.AsOf, h.AgeSeconds, h.AppliedSeq, ordSeedAt)
			}
		})
	}
}

func equalStock(a, b []LocationStock) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The age of the stock is that of the newest change from elsewhere: this
// store's own writes do not make it fresher; the feed does.
func TestSearchStockAge(t *testing.T) {
	ctx := context.Background()
	g := newOrderRegion(t)
	age := func() StockAge {
		t.Helper()
		hits, err := g.s.Search(ctx, SearchQuery{Text: "jacket"})
		if err != nil || len(hits) != 1 {
			t.Fatalf("%v %v", hits, err)
		}
		return hits[0].StockAge
	}
	first := age()
	if first.AgeSeconds != 3600 {
		t.Fatalf("age %+v, want an hour", first)
	}
	if _, err := g.s.Sale(ctx, SaleRequest{ClerkID: "clerk-S1", Lines: []ItemLine{{SKU: "SKU-2"}}, Tenders: ordCash(1200)}); err != nil {
		t.Fatal(err)
	}
	if a := age(); a != first {
		t.Fatalf("a local sale changed the age: %+v, was %+v", a, first)
	}
	at := scenario.T0.Add(-10 * time.Minute)
	g.hubApply(retail.Mutation{ID: retail.MutationID{Origin: "S2", Seq: 1}, HLC: retail.HLC{Wall: at.UnixMilli()}, Actor: scenario.Clerk("S2"),
		Body: scenario.Sale("ord-s2", "S2", "", 1, "")})
	if a := age(); !a.AsOf.Equal(at) || a.AgeSeconds != 600 || a.AppliedSeq != first.AppliedSeq+1 {
		t.Fatalf("after S2's sale came through the feed: %+v", a)
	}
}

func TestOrderForLater(t *testing.T) {
	ctx := context.Background()
	hist := aisleHistory()
	ship := func(lines ...ItemLine) AisleOrder {
		return AisleOrder{CustomerID: "cust-1", Lines: lines, Fulfilment: retail.ShipToHome, ShipAddress: "2 High St"}
	}
	pickup := func(lines ...ItemLine) AisleOrder {
		return AisleOrder{CustomerID: "cust-1", Lines: lines, Fulfilment: retail.StorePickup}
	}
	with := func(o AisleOrder, f func(*AisleOrder)) AisleOrder { f(&o); return o }
	jacket, lamp := ItemLine{SKU: "SKU-LAST"}, ItemLine{SKU: "SKU-RARE"}
	for _, tc := range []struct {
		name     string
		req      AisleOrder
		tenders  []retail.Tender
		want     error
		wantText string // in the refusal
		from     string
		days     int
		pickup   string
	}{
		{name: "at the DC, shipped home", req: ship(jacket), tenders: ordCard(20000, "tok-1"), from: "DC1", days: 3},
		{name: "only at another store, picked up here", req: pickup(ItemLine{SKU: "SKU-RARE", Qty: 2}), tenders: ordCash(9000),
			from: "S3", days: 2, pickup: "S1"},
		{name: "picked up at another store, which has it", req: with(pickup(ItemLine{Barcode: shoeBarcode}), func(o *AisleOrder) { o.PickupStore = "S4" }),
			tenders: ordCash(8000), from: "DC1", days: 2, pickup: "S4"},
		{name: "from a chosen store, at a kiosk", req: with(ship(ItemLine{Barcode: shoeBarcode}), func(o *AisleOrder) { o.FulfilFrom = "S2"; o.ClerkID = "-" }),
			tenders: ordCard(8000, "tok-1"), from: "S2", days: 3},

		{name: "nowhere", req: ship(ItemLine{SKU: "SKU-NONE"}), tenders: ordCash(3000), want: ErrOutOfStock, wantText: "none anywhere"},
		{name: "more than anywhere has", req: ship(ItemLine{SKU: "SKU-LAST", Qty: 2}), tenders: ordCash(40000), want: ErrOutOfStock,
			wantText: "available at DC1 1"},
		{name: "not at the chosen location", req: with(ship(jacket), func(o *AisleOrder) { o.FulfilFrom = "S2" }), tenders: ordCash(20000),
			want: ErrOutOfStock, wantText: "SKU-LAST (1 wanted): available at DC1 1"},
		{name: "no one location has the whole basket", req: ship(jacket, lamp), tenders: ordCash(24500), want: ErrOutOfStock,
			wantText: "SKU-RARE (1 wanted): available at S3 2"},
		{name: "no shopper", req: with(ship(jacket), func(o *AisleOrder) { o.CustomerID = "" }), tenders: ordCash(20000), want: ErrInvalid},
		{name: "unknown shopper", req: with(ship(jacket), func(o *AisleOrder) { o.CustomerID = "cust-404" }), tenders: ordCash(20000), want: ErrUnknownCustomer},
		{name: "no address", req: with(ship(jacket), func(o *AisleOrder) { o.ShipAddress = " " }), tenders: ordCash(20000), want: ErrInvalid},
		{name: "carried out is a sale", req: with(ship(jacket), func(o *AisleOrder) { o.Fulfilment = retail.CarryOut }), tenders: ordCash(20000), want: ErrInvalid},
		{name: "a DC is no pickup store", req: with(pickup(jacket), func(o *AisleOrder) { o.PickupStore = "DC1" }), tenders: ordCash(20000), want: ErrInvalid},
		{name: "unknown location", req: with(ship(jacket), func(o *AisleOrder) { o.FulfilFrom = "S9" }), tenders: ordCash(20000), want: ErrInvalid},
		{name: "web is not taken here", req: with(ship(jacket), func(o *AisleOrder) { o.Channel = retail.ChannelWeb }), tenders: ordCash(20000), want: ErrInvalid},
		{name: "tenders short", req: ship(jacket), tenders: ordCash(19999), want: ErrInvalid},
		{name: "unknown barcode", req: ship(ItemLine{Barcode: "999"}), tenders: ordCash(0), want: ErrUnknownProduct},
		{name: "empty", req: ship(), tenders: ordCash(0), want: ErrEmptyBasket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newOrderRegion(t, hist...)
			switch tc.req.ClerkID {
			case "":
				tc.req.ClerkID = "clerk-S1"
			case "-":
				tc.req.ClerkID = ""
			}
			tc.req.Tenders = tc.tenders
			before := g.state()
			res, err := g.s.OrderForLater(ctx, tc.req)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("OrderForLater: %v, want %v", err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.wantText) {
					t.Fatalf("refusal %q does not say %q", err, tc.wantText)
				}
				t.Logf("refused: %v", err)
				g.unchanged(before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			expected := scenario.T0.AddDate(0, 0, tc.days)
			if res.Status != AisleStatusPending || res.FulfilFrom != tc.from || !res.ExpectedAt.Equal(expected) || res.AgeSeconds != 3600 {
				t.Fatalf("result %+v; want from %s, expected %s", res, tc.from, expected)
			}
			if after := g.state(); after.pending != before.pending+1 {
				t.Fatalf("outbox %d, want %d", after.pending, before.pending+1)
			}
			var status, from, channel, pickupStore string
			var expectedAt int64
			g.query("SELECT status, fulfil_from, channel, coalesce(pickup_store, ''), expected_at FROM orders WHERE id = '"+res.OrderID+"'",
				&status, &from, &channel, &pickupStore, &expectedAt)
			wantChannel := "store"
			if tc.req.ClerkID == "" {
				wantChannel = "kiosk"
			}
			if status != "reserved" || from != tc.from || channel != wantChannel || pickupStore != tc.pickup || expectedAt != expected.UnixMilli() {
				t.Fatalf("order row: %s from %s, %s, pickup %q, expected %d", status, from, channel, pickupStore, expectedAt)
			}
			var reserved int64
			sku := tc.req.Lines[0].SKU
			if sku == "" {
				sku = "SKU-1"
			}
			g.query("SELECT reserved FROM inventory WHERE location_id = '"+tc.from+"' AND sku = '"+sku+"'", &reserved)
			if reserved != max(tc.req.Lines[0].Qty, 1) {
				t.Fatalf("reserved at %s: %d", tc.from, reserved)
			}
			rc := res.Receipt
			if rc.Kind != "order" || rc.ExpectedAt == nil || !rc.ExpectedAt.Equal(expected) || rc.Fulfilment != tc.req.Fulfilment || len(rc.Notes) == 0 {
				t.Fatalf("receipt %+v", rc)
			}
			if hub := g.upload(); len(hub) != 1 || hub[0].Status != retail.StatusAccepted {
				t.Fatalf("the hub: %+v", hub)
			}
		})
	}
}

// Offline, the store takes the order against the last stock it knew; the
// hub, which has meanwhile given the last jacket to store S2, refuses it,
// and the refusal lands on the store's attention list.
func TestOrderForLaterRefusedByTheHubLater(t *testing.T) {
	ctx := context.Background()
	g := newOrderRegion(t)
	res, err := g.s.OrderForLater(ctx, AisleOrder{ClerkID: "clerk-S1", CustomerID: "cust-1", Lines: []ItemLine{{SKU: "SKU-LAST"}},
		Fulfilment: retail.ShipToHome, ShipAddress: "2 High St", Tenders: ordCard(20000, "tok-1")})
	if err != nil || res.Status != AisleStatusPending {
		t.Fatalf("%+v, %v", res, err)
	}
	// S2's order reached the hub first; then this store came back online.
	s2 := retail.Mutation{ID: retail.MutationID{Origin: "S2", Seq: 1}, HLC: retail.HLC{Wall: scenario.T0.Add(-time.Minute).UnixMilli()},
		Actor: scenario.Clerk("S2"), Body: scenario.ReserveLast("ord-s2", "S2", "cust-2")}
	ps, err := g.r.Pending(ctx, 0, 10, false)
	if err != nil || len(ps) != 1 {
		t.Fatalf("outbox %+v, %v", ps, err)
	}
	mine, err := retail.Decode(ps[0].Raw)
	if err != nil {
		t.Fatal(err)
	}
	results := g.hubApply(s2, mine)
	if results[1].Status != retail.StatusRejected || results[1].Code != retail.CodeInsufficientStock {
		t.Fatalf("the hub: %+v", results[1])
	}
	att, err := g.r.AttentionList(ctx, false)
	if err != nil || len(att) != 1 || att[0].ID != ps[0].ID || att[0].Status != "rejected" || att[0].Code != retail.CodeInsufficientStock {
		t.Fatalf("attention %+v, %v", att, err)
	}
	var n int
	g.query("SELECT count(*) FROM orders WHERE id = '"+res.OrderID+"'", &n)
	if n != 0 {
		t.Fatal("the refused order is still on the replica")
	}
	if st, _ := g.r.Status(ctx); st.Pending != 0 {
		t.Fatalf("status %+v", st)
	}
}
