package retail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// scenario is a mutation log that uses every mutation type, with requests
// refused, facts flagged and time moving on: the base region, then a
// seeded random mix of shopping. It is the same on every call.
func scenario(tb testing.TB) []Mutation {
	tb.Helper()
	r := &region{tb: tb, now: t0}
	var log []Mutation
	add := func(b Body) { log = append(log, r.mutation(b)) }
	for _, b := range baseRegion(tb) {
		add(b)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	skus := []string{"SKU-1", "SKU-2", "SKU-3"}
	prices := map[string]Cents{"SKU-1": 8000, "SKU-2": 1200, "SKU-3": 2500}
	custs := []string{"cust-1", "cust-2"}
	line := func() Line {
		s := skus[rng.IntN(len(skus))]
		return Line{SKU: s, Qty: int64(1 + rng.IntN(3)), UnitPriceCents: prices[s]}
	}
	var sales, orders []string
	for i := range 150 {
		r.advance(time.Duration(rng.IntN(6*60)) * time.Minute)
		c := custs[rng.IntN(2)]
		switch i % 15 {
		case 0:
			add(&SetSetting{Key: "return_window_days", Value: int64(20 + rng.IntN(20))})
			add(&AdjustStock{Location: []string{"S1", "S2", "DC1"}[rng.IntN(3)], SKU: skus[rng.IntN(3)], Delta: int64(rng.IntN(8) - 2), Reason: "count"})
		case 1, 2:
			id := fmt.Sprintf("s%d", i)
			s := sale(id, c, line(), line())
			if rng.IntN(3) == 0 {
				s = withCoupon(s, fmt.Sprintf("C%d", rng.IntN(i+1)), 500) // some unknown, some reused
			}
			sales = append(sales, id)
			add(s)
		case 3:
			id := fmt.Sprintf("o%d", i)
			o := kioskOrder(id, line())
			o.CustomerID = c
			orders = append(orders, id)
			add(o) // some refused for stock
		case 4:
			add(coupon(fmt.Sprintf("C%d", i), c, r.now.Add(72*time.Hour)))
		case 5:
			add(&RedeemCoupon{Code: fmt.Sprintf("C%d", i-1-15*rng.IntN(2)), CustomerID: c, StoreID: "S2"})
		case 6:
			if len(sales) > 0 {
				s := sales[rng.IntN(len(sales))]
				add(&ReturnItems{ID: fmt.Sprintf("r%d", i), OrderID: s, CustomerID: c, StoreID: "S1", ClerkID: "assoc", Reason: "changed mind",
					Lines:  []ReturnLine{{OrderLineNo: 1, SKU: "SKU-2", Qty: 1, RefundCents: 1200}}, // wrong sku for some lines: refused
					Refund: Tender{Kind: TenderStoreCredit, AmountCents: 1200}, ApprovedBy: []string{"", "mgr", "assoc"}[rng.IntN(3)], Restock: true})
			}
		case 7:
			add(receiptless(fmt.Sprintf("rr%d", i), []TenderKind{TenderStoreCredit, TenderCash}[rng.IntN(2)]))
		case 8:
			if len(orders) > 0 {
				add(&FulfilOrder{OrderID: orders[rng.IntN(len(orders))], Status: []OrderStatus{OrderFulfilled, OrderCancelled}[rng.IntN(2)]})
			}
		case 9:
			add(&AddWishItem{CustomerID: c, SKU: skus[rng.IntN(3)], Source: WishKiosk})
			add(&RemoveWishItem{CustomerID: c, SKU: skus[rng.IntN(3)]})
		case 10:
			add(&RecordVisit{ID: fmt.Sprintf("v%d", i), CustomerID: c, StoreID: "S1", Method: SignInPhone})
			add(&MakeOffer{ID: fmt.Sprintf("of%d", i), PromotionID: "P10", CustomerID: c, Channel: OfferEmail})
			add(&RecordOfferOutcome{OfferID: fmt.Sprintf("of%d", i-15*rng.IntN(2)), Outcome: OutcomeIgnored})
		case 11:
			sat := rng.IntN(2) == 0
			add(&RecordServiceContact{ID: fmt.Sprintf("sc%d", i%45), CustomerID: c, Channel: ContactChat, Reason: "where is my parcel", Resolved: sat, Satisfied: &sat})
		case 12:
			cart := fmt.Sprintf("k%d", i%30)
			add(&RecordCartEvent{ID: fmt.Sprintf("e%d", i), CartID: cart, CustomerID: c, Channel: ChannelWeb, Kind: CartAdd, SKU: "SKU-3", Qty: 1, Step: StepCart})
			add(&RecordCartEvent{ID: fmt.Sprintf("e%db", i), CartID: cart, CustomerID: c, Channel: ChannelWeb,
				Kind: []CartEventKind{CartCheckoutStep, CartAbandon}[rng.IntN(2)], Step: StepShipping})
		case 13:
			add(&UpsertCustomer{ID: fmt.Sprintf("cust-n%d", i), Name: "New", Since: r.now, AcquiredVia: AcquiredCampaign, AcquiredBy: "P10",
				LoyaltyCard: fmt.Sprintf("LC-%d", rng.IntN(5)), Contact: Contact{SMS: true}}) // some cards clash: refused
			add(&UpsertProduct{SKU: "SKU-3", Name: "Insoles", Category: "accessories", PriceCents: 2500 + int64(i), Active: true,
				Complements: slices.Clone(skus[:rng.IntN(3)])[:0]})
		case 14:
			add(&ResolveException{ExceptionID: fmt.Sprintf("test/%d#1", 1+rng.IntN(len(log))), ClerkID: "mgr", Resolution: "checked"})
			add(&UpsertClerk{ID: "temp", Name: "Tim", Role: RoleAssociate, PINHash: log[3].Body.(*UpsertClerk).PINHash, Active: i%2 == 0})
		}
	}
	return log
}

// applyLog applies ms in transactions of batch mutations and returns the results.
func applyLog(tb testing.TB, db *DB, ms []Mutation, batch int) []Result {
	tb.Helper()
	ctx := context.Background()
	var out []Result
	for len(ms) > 0 {
		n := min(batch, len(ms))
		err := db.Update(ctx, func(tx *Tx) error {
			for _, m := range ms[:n] {
				res, err := Apply(ctx, tx, m)
				if err != nil {
					return err
				}
				out = append(out, res)
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		ms = ms[n:]
	}
	return out
}

func dump(tb testing.TB, db *DB) string {
	tb.Helper()
	var b bytes.Buffer
	if err := Dump(context.Background(), db, &b); err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

// diffLines names the first line where two dumps differ.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n  %s\n  %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(al), len(bl))
}

func TestScenarioCoversEveryMutationType(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range scenario(t) {
		seen[m.Body.Type()] = true
	}
	for _, typ := range MutationTypes() {
		if !seen[typ] {
			t.Errorf("the scenario has no %s", typ)
		}
	}
}

func TestDeterminism(t *testing.T) {
	log := scenario(t)
	a, b := mustOpen(t), mustOpen(t)
	resA := applyLog(t, a, log, 1)

	// B gets the same log through the wire form, in batches of 50.
	wire := make([]Mutation, len(log))
	for i, m := range log {
		enc, err := Encode(m)
		if errors.Is(err, ErrInvalid) {
			wire[i] = m // never leaves its node; Apply rejects it on both
			continue
		}
		if err != nil {
			t.Fatalf("encode %s: %v", m.ID, err)
		}
		if wire[i], err = Decode(enc); err != nil {
			t.Fatalf("decode %s: %v", m.ID, err)
		}
	}
	resB := applyLog(t, b, wire, 50)

	statuses := map[Status]int{}
	for i := range resA {
		statuses[resA[i].Status]++
		x, y := resA[i], resB[i]
		x.Changes, y.Changes = nil, nil
		if fmt.Sprint(x) != fmt.Sprint(y) {
			t.Fatalf("mutation %s: results differ:\n%+v\n%+v", log[i].ID, x, y)
		}
	}
	// The scenario must exercise all three outcomes to prove anything.
	for _, s := range []Status{StatusAccepted, StatusRejected, StatusFlagged} {
		if statuses[s] < 5 {
			t.Errorf("only %d %s mutations in the scenario: %v", statuses[s], s, statuses)
		}
	}
	if da, db := dump(t, a), dump(t, b); da != db {
		t.Fatalf("dumps differ at %s", diffLines(da, db))
	}
	ca, _ := Checksum(context.Background(), a)
	cb, _ := Checksum(context.Background(), b)
	if ca != cb {
		t.Fatalf("checksums differ: %s %s", ca, cb)
	}
}

// The changes Apply records are the whole story: replayed (after a trip
// through JSON, as the change feed carries them) into a fresh database they
// give the same contents as applying the mutations.
func TestChangesReplayToSameContents(t *testing.T) {
	log := scenario(t)
	a, c := mustOpen(t), mustOpen(t)
	var changes []RowChange
	for _, res := range applyLog(t, a, log, 25) {
		changes = append(changes, res.Changes...)
	}
	b, err := json.Marshal(changes)
	if err != nil {
		t.Fatal(err)
	}
	var wire []RowChange
	if err := json.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(context.Background(), func(tx *Tx) error { return ApplyChanges(context.Background(), tx, wire) }); err != nil {
		t.Fatal(err)
	}
	// The settings rows come from the migration on both sides.
	if da, dc := dump(t, a), dump(t, c); da != dc {
		t.Fatalf("replayed dump differs at %s", diffLines(da, dc))
	}
}

func TestApplyChangesRefusesWhatItDoesNotKnow(t *testing.T) {
	db := mustOpen(t)
	ok := RowChange{Table: "settings", Op: OpPut, Cols: []string{"key", "value"}, Vals: []any{"k", "v"}}
	cases := []struct {
		name string
		c    RowChange
		want string
	}{
		{"unknown table", RowChange{Table: "sqlite_master; DROP TABLE orders", Op: OpPut}, "unknown table"},
		{"missing column", RowChange{Table: "settings", Op: OpPut, Cols: []string{"key"}, Vals: []any{"k"}}, "columns"},
		{"injected column", RowChange{Table: "settings", Op: OpPut, Cols: []string{"key", "value); DROP TABLE x; --"}, Vals: []any{"k", "v"}}, "columns"},
		{"wrong key", RowChange{Table: "settings", Op: OpDel, Cols: []string{"value"}, Vals: []any{"v"}}, "key"},
		{"unknown op", RowChange{Table: "settings", Op: "truncate", Cols: ok.Cols, Vals: ok.Vals}, "unknown op"},
		{"values short", RowChange{Table: "settings", Op: OpPut, Cols: ok.Cols, Vals: []any{"k"}}, "values"},
		{"breaks a constraint", RowChange{Table: "inventory", Op: OpPut, Cols: tInventory.cols, Vals: []any{"nowhere", "x", int64(1), int64(0), int64(1)}}, "FOREIGN KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := db.Update(context.Background(), func(tx *Tx) error { return ApplyChanges(context.Background(), tx, []RowChange{ok, tc.c}) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if n := (&region{tb: t, db: db}).int("SELECT count(*) FROM settings WHERE key = 'k'"); n != 0 {
				t.Fatal("a failed batch left a row behind")
			}
		})
	}
}

func TestDuplicateMutationAppliesOnce(t *testing.T) {
	r := newRegion(t)
	future := t0.AddDate(0, 0, 7)
	r.mustAccept(coupon("C1", "cust-1", future))
	r.mustAccept(withCoupon(sale("s0", "cust-1", Line{SKU: "SKU-2", Qty: 1, UnitPriceCents: 1200}), "C1", 100))
	for _, tc := range []struct {
		name string
		body Body
		want Status
	}{
		{"accepted", sale("s1", "cust-1", Line{SKU: "SKU-1", Qty: 1, UnitPriceCents: 8000}), StatusAccepted},
		{"rejected", kioskOrder("o1", Line{SKU: "SKU-1", Qty: 99, UnitPriceCents: 8000}), StatusRejected},
		{"flagged", withCoupon(sale("s2", "cust-1", Line{SKU: "SKU-1", Qty: 9, UnitPriceCents: 8000}), "C1", 100), StatusFlagged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := r.mutation(tc.body)
			first := r.applyMutation(m)
			if first.Status != tc.want || first.Duplicate {
				t.Fatalf("first: %+v", first)
			}
			before := dump(t, r.db)
			again := r.applyMutation(m)
			if !again.Duplicate || again.Status != first.Status || again.Code != first.Code || again.Reason != first.Reason {
				t.Fatalf("again: %+v, first %+v", again, first)
			}
			if fmt.Sprint(again.Exceptions) != fmt.Sprint(first.Exceptions) {
				t.Fatalf("exceptions %v, first %v", again.Exceptions, first.Exceptions)
			}
			if len(again.Changes) != 0 {
				t.Fatalf("a duplicate wrote %v", tables(again.Changes))
			}
			if after := dump(t, r.db); after != before {
				t.Fatalf("a duplicate changed the database at %s", diffLines(before, after))
			}
		})
	}
}

// Every table the schema has is in tableDefs with the same columns in the
// same order and the same primary key, so put always writes whole rows.
func TestTableDefsMatchSchema(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	if len(names) != len(tableDefs) {
		t.Errorf("schema has %d tables, tableDefs %d", len(names), len(tableDefs))
	}
	for _, name := range names {
		def := tableDefs[name]
		if def == nil {
			t.Errorf("table %s is not in tableDefs", name)
			continue
		}
		info, err := db.QueryContext(ctx, "SELECT name, pk FROM pragma_table_info(?) ORDER BY cid", name)
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		pks := map[int]string{}
		for info.Next() {
			var c string
			var pk int
			info.Scan(&c, &pk)
			cols = append(cols, c)
			if pk > 0 {
				pks[pk] = c
			}
		}
		info.Close()
		var pk []string
		for i := 1; i <= len(pks); i++ {
			pk = append(pk, pks[i])
		}
		if !slices.Equal(cols, def.cols) {
			t.Errorf("%s: schema columns %v, tableDefs %v", name, cols, def.cols)
		}
		if !slices.Equal(pk, def.pk) {
			t.Errorf("%s: schema key %v, tableDefs %v", name, pk, def.pk)
		}
	}
}
