package demodata

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/endcap/endcap/retail"
)

// The tests share one generated region of 300 customers (about two seconds to
// make) and make a few smaller ones of their own.
var (
	sharedOnce  sync.Once
	sharedDB    *retail.DB
	sharedStats Stats
	sharedErr   error
	sharedDir   string
)

const sharedCustomers = 300

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDB != nil {
		sharedDB.Close()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// shared returns the shared region and what generating it did.
func shared(t *testing.T) (*retail.DB, Stats) {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "demodata-test-")
		if sharedErr != nil {
			return
		}
		sharedDB, sharedStats, sharedErr = generate(context.Background(), filepath.Join(sharedDir, "region.db"),
			Config{Seed: 42, Customers: sharedCustomers})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedDB, sharedStats
}

func generate(ctx context.Context, path string, cfg Config) (*retail.DB, Stats, error) {
	db, err := retail.Open(ctx, path, retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		return nil, Stats{}, err
	}
	st, err := Generate(ctx, db, cfg, nil)
	if err != nil {
		db.Close()
		return nil, st, err
	}
	return db, st, nil
}

func checksum(t *testing.T, cfg Config) string {
	t.Helper()
	ctx := context.Background()
	db, _, err := generate(ctx, filepath.Join(t.TempDir(), "region.db"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sum, err := retail.Checksum(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestGenerateIsDeterministic(t *testing.T) {
	cfg := Config{Seed: 7, Customers: 60, Stores: 2, Products: 40, BatchSize: 97}
	a, b := checksum(t, cfg), checksum(t, cfg)
	if a != b {
		t.Fatalf("same config, different databases: %s and %s", a, b)
	}
	// Transactions are only grouping: another batch size writes the same.
	other := cfg
	other.BatchSize = 1000
	if c := checksum(t, other); c != a {
		t.Errorf("batch size changed the database: %s, want %s", c, a)
	}
	other = cfg
	other.Seed = 8
	if c := checksum(t, other); c == a {
		t.Errorf("seeds 7 and 8 made the same database %s", a)
	}
}

func TestEveryTableHasRows(t *testing.T) {
	db, st := shared(t)
	rows, err := db.QueryContext(context.Background(), "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		n++
		if got := st.Rows(name); got <= 0 {
			t.Errorf("table %s has %d rows", name, got)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(st.Tables) {
		t.Errorf("Stats lists %d tables, the schema has %d", len(st.Tables), n)
	}
}

func TestEveryMutationTypeIsUsed(t *testing.T) {
	_, st := shared(t)
	for _, typ := range retail.MutationTypes() {
		if st.ByType[typ] == 0 {
			t.Errorf("no %s mutation", typ)
		}
	}
}

func TestResultsAreCounted(t *testing.T) {
	db, st := shared(t)
	if st.Unexpected != 0 {
		t.Errorf("%d results the generator did not expect; first: %s", st.Unexpected, st.FirstUnexpected)
	}
	if st.Customers != sharedCustomers || st.Rows("customers") != sharedCustomers {
		t.Errorf("%d customers generated, %d rows; want %d", st.Customers, st.Rows("customers"), sharedCustomers)
	}
	if st.Accepted+st.Rejected+st.Flagged != st.Mutations {
		t.Errorf("%d accepted + %d rejected + %d flagged != %d mutations", st.Accepted, st.Rejected, st.Flagged, st.Mutations)
	}
	if got := st.Rows("applied_mutations"); got != int64(st.Mutations) {
		t.Errorf("%d applied_mutations rows, Stats says %d mutations", got, st.Mutations)
	}
	if got := st.Rows("exceptions"); got != int64(st.Exceptions) {
		t.Errorf("%d exceptions rows, Stats says %d", got, st.Exceptions)
	}
	// A few rejections and exceptions are part of the story; many would
	// mean the generator fights the rules.
	if st.Rejected == 0 || float64(st.Rejected) > 0.01*float64(st.Mutations) {
		t.Errorf("%d of %d mutations rejected (%v); want a few, under 1%%", st.Rejected, st.Mutations, st.Rejections)
	}
	if st.Flagged == 0 || float64(st.Flagged) > 0.03*float64(st.Mutations) {
		t.Errorf("%d of %d mutations flagged (%v); want a few, under 3%%", st.Flagged, st.Mutations, st.ExceptionKinds)
	}
	var seqs, maxSeq int64
	if err := db.QueryRow("SELECT count(*), max(CAST(substr(id, 6) AS INTEGER)) FROM applied_mutations WHERE id LIKE 'demo/%'").Scan(&seqs, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if seqs != int64(st.Mutations) || maxSeq != seqs {
		t.Errorf("mutation ids: %d with origin demo, highest seq %d; want demo/1 … demo/%d", seqs, maxSeq, st.Mutations)
	}
}

// TestStory checks that the region tells the whole story: every
// acquisition path, channel, promotion type and audience, offer outcome,
// checkout step abandoned, and the awkward cases.
func TestStory(t *testing.T) {
	db, _ := shared(t)
	end := DefaultEnd.UnixMilli()
	for _, tc := range []struct {
		name  string
		query string
		want  int64 // at least
	}{
		{"acquisition paths", "SELECT count(DISTINCT acquired_via) FROM customers", 5},
		{"referrals name an earlier customer", "SELECT count(*) FROM customers WHERE acquired_via = 'referral' AND acquired_by < id AND acquired_by LIKE 'cust-%'", 1},
		{"referrals naming anyone else", "SELECT -count(*) FROM customers WHERE acquired_via = 'referral' AND NOT (acquired_by < id AND acquired_by LIKE 'cust-%')", 0},
		{"campaign acquisitions name a promotion", "SELECT count(*) FROM customers c JOIN promotions p ON p.id = c.acquired_by WHERE c.acquired_via = 'campaign'", 1},
		{"loyalty cards", "SELECT count(*) FROM customers WHERE loyalty_card IS NOT NULL", sharedCustomers / 2},
		{"phones", "SELECT count(*) FROM customers WHERE phone LIKE '+1%'", sharedCustomers / 2},
		{"contact preferences", "SELECT count(DISTINCT contact_email || contact_sms || contact_push || contact_mail) FROM customers", 6},
		{"languages", "SELECT count(DISTINCT language) FROM customers", 2},
		{"order channels", "SELECT count(DISTINCT channel) FROM orders", 4},
		{"fulfilments", "SELECT count(DISTINCT fulfilment) FROM orders", 3},
		{"order statuses", "SELECT count(DISTINCT status) FROM orders", 4},
		{"orders per customer", "SELECT count(*) / (SELECT count(*) FROM customers) FROM orders", 3},
		{"pickups from a store", "SELECT count(*) FROM orders WHERE fulfilment = 'store_pickup' AND fulfil_from LIKE 'S%'", 1},
		{"pickups from the distribution centre", "SELECT count(*) FROM orders WHERE fulfilment = 'store_pickup' AND fulfil_from = 'DC1'", 1},
		{"tenders", "SELECT count(DISTINCT kind) FROM order_tenders", 3},
		{"split tenders", "SELECT count(*) FROM (SELECT order_id FROM order_tenders GROUP BY order_id HAVING count(*) > 1)", 1},
		{"promotion types", "SELECT count(DISTINCT type) FROM promotions", 5},
		{"audiences", "SELECT count(DISTINCT audience) FROM promotions", 7},
		{"offer channels", "SELECT count(DISTINCT channel) FROM offers", 4},
		{"offer outcomes", "SELECT count(DISTINCT outcome) FROM offers", 4},
		{"coupons redeemed in a sale", "SELECT count(*) FROM order_coupons oc JOIN orders o ON o.id = oc.order_id WHERE o.channel = 'store' AND oc.status = 'redeemed'", 1},
		{"coupons redeemed on their own", "SELECT count(*) FROM coupons c WHERE redeemed_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM order_coupons oc WHERE oc.code = c.code)", 1},
		{"returns with an order", "SELECT count(*) FROM returns WHERE order_id IS NOT NULL", 1},
		{"returns without an order", "SELECT count(*) FROM returns WHERE order_id IS NULL", 1},
		{"serial returners", "SELECT count(*) FROM (SELECT customer_id FROM returns WHERE order_id IS NULL GROUP BY customer_id HAVING count(*) >= 3)", 1},
		{"approved returns", "SELECT count(*) FROM returns WHERE approved_by IS NOT NULL", 1},
		{"service contacts resolved, open, satisfied, not", "SELECT count(DISTINCT resolved || coalesce(satisfied, '-')) FROM service_contacts", 4},
		{"contact channels", "SELECT count(DISTINCT channel) FROM service_contacts", 5},
		{"visits by each sign-in method", "SELECT count(DISTINCT method) FROM visits", 3},
		{"wish list sources", "SELECT count(DISTINCT source) FROM wish_items", 3},
		{"checkout steps carts were abandoned at", "SELECT count(DISTINCT last_step) FROM carts WHERE status = 'abandoned'", 4},
		{"cart statuses", "SELECT count(DISTINCT status) FROM carts", 3},
		{"cart event kinds", "SELECT count(DISTINCT kind) FROM cart_events", 6},
		{"exceptions resolved", "SELECT count(*) FROM exceptions WHERE status = 'resolved'", 1},
		{"exceptions open", "SELECT count(*) FROM exceptions WHERE status = 'open'", 1},
		{"stock received", "SELECT count(*) FROM applied_mutations WHERE type = 'adjust_stock'", 1},
		{"inactive clerks", "SELECT count(*) FROM clerks WHERE active = 0", 1},
		{"inactive products", "SELECT count(*) FROM products WHERE active = 0", 1},
		{"products with two barcodes", "SELECT count(*) FROM (SELECT sku FROM product_barcodes GROUP BY sku HAVING count(*) > 1)", 1},
		{"nothing after the end of the timeline", fmt.Sprintf("SELECT -count(*) FROM applied_mutations WHERE CAST(hlc AS INTEGER) >= %d", end), 0},
		{"orders after the start of the timeline", fmt.Sprintf("SELECT -count(*) FROM orders WHERE placed_at < %d", DefaultEnd.AddDate(-2, 0, 0).UnixMilli()), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got int64
			if err := db.QueryRow(tc.query).Scan(&got); err != nil {
				t.Fatalf("%s: %v", tc.query, err)
			}
			if got < tc.want {
				t.Errorf("%s = %d, want at least %d", tc.query, got, tc.want)
			}
		})
	}
}

func TestBarcodesAreEAN13(t *testing.T) {
	db, _ := shared(t)
	rows, err := db.Query("SELECT barcode FROM product_barcodes")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		if !validEAN13(b) {
			t.Errorf("barcode %s is not a valid EAN-13", b)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestClerkPINs(t *testing.T) {
	db, _ := shared(t)
	rows, err := db.Query("SELECT id, pin_hash FROM clerks")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var id, hash string
		if err := rows.Scan(&id, &hash); err != nil {
			t.Fatal(err)
		}
		if !retail.VerifyPIN(hash, DemoPIN) || retail.VerifyPIN(hash, "4321") {
			t.Errorf("clerk %s: hash %s does not verify exactly PIN %s", id, hash, DemoPIN)
		}
		if seen[hash] {
			t.Errorf("clerk %s shares a salt with another clerk", id)
		}
		seen[hash] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestEAN13(t *testing.T) {
	for _, tc := range []struct {
		code string
		ok   bool
	}{
		{"4006381333931", true},
		{"0012345678905", true},
		{"4006381333932", false},
		{"400638133393", false},
		{"40063813339a1", false},
	} {
		if got := validEAN13(tc.code); got != tc.ok {
			t.Errorf("validEAN13(%q) = %v, want %v", tc.code, got, tc.ok)
		}
	}
}

func TestIDs(t *testing.T) {
	codes := map[string]bool{}
	phones := map[string]bool{}
	for n := range 20000 {
		c := couponCode(uint64(n), 12345)
		if codes[c] || len(c) != len("C-XXXX-XXXX") || strings.ContainsRune(c, 0) {
			t.Fatalf("coupon %d: code %q repeated or malformed", n, c)
		}
		codes[c] = true
		p := phoneNumber("503", n, 99)
		if phones[p] || len(p) != len("+15035550123") {
			t.Fatalf("customer %d: phone %q repeated or malformed", n, p)
		}
		phones[p] = true
	}
	for _, tc := range []struct{ got, want string }{
		{customerID(0), "cust-0000001"},
		{customerID(999_999), "cust-1000000"},
		{productSKU(41), "SKU-00042"},
		{storeID(0), "S01"},
		{clerkID("S01", 1), "clerk-S01-01"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Stores != 5 || c.Customers != 2000 || c.Products != 200 || c.OrdersPerCustomer != 5 || c.Years != 2 ||
		c.BatchSize != 1000 || !c.End.Equal(DefaultEnd) || c.Region == "" {
		t.Errorf("defaults: %+v", c)
	}
	for _, tc := range []struct {
		customers int
		want      float64
	}{
		{0, 5}, {2000, 5}, {200_000, 5}, {400_000, 2.5}, {1_000_000, 1}, {4_000_000, 0.25},
	} {
		if got := DefaultOrdersPerCustomer(tc.customers); got != tc.want {
			t.Errorf("DefaultOrdersPerCustomer(%d) = %v, want %v", tc.customers, got, tc.want)
		}
	}
}

func TestGenerateRefusesNonEmptyDatabase(t *testing.T) {
	db, _ := shared(t)
	if _, err := Generate(context.Background(), db, Config{Customers: 1}, nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("Generate into a generated region: %v, want an error about an empty database", err)
	}
}

func TestGenerateStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := retail.Open(ctx, filepath.Join(t.TempDir(), "region.db"), retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var calls []int
	_, err = Generate(ctx, db, Config{Customers: 1000, Products: 20, Stores: 1}, func(done, total int) {
		calls = append(calls, done)
		if total != 1000 {
			t.Errorf("progress total %d, want 1000", total)
		}
		if done == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate after cancel: %v, want context.Canceled", err)
	}
	if !slices.Equal(calls, []int{0, 1, 2, 3}) {
		t.Errorf("progress calls %v, want 0 1 2 3", calls)
	}
}

func TestOddSizes(t *testing.T) {
	for _, cfg := range []Config{
		{Customers: 3, Stores: 1, Products: 1},
		{Customers: 8, Stores: 13, Products: 5, Seed: -1},
		{Customers: 8, Products: 30, Years: 1, End: DefaultEnd.AddDate(1, 6, 0), OrdersPerCustomer: 12},
	} {
		t.Run(fmt.Sprintf("%d customers, %d stores, %d products", cfg.Customers, cfg.Stores, cfg.Products), func(t *testing.T) {
			db, st, err := generate(context.Background(), filepath.Join(t.TempDir(), "region.db"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if st.Unexpected != 0 {
				t.Errorf("%d unexpected results; first: %s", st.Unexpected, st.FirstUnexpected)
			}
			if want := int64(cfg.withDefaults().Stores + 1); st.Rows("stores") != want {
				t.Errorf("%d stores, want %d", st.Rows("stores"), want)
			}
			if st.Rows("customers") != int64(cfg.Customers) {
				t.Errorf("%d customers, want %d", st.Rows("customers"), cfg.Customers)
			}
		})
	}
}
