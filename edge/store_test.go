package edge

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

var clerkS1 = scenario.Clerk("S1")

func pending(t testing.TB, s *Store) int {
	t.Helper()
	st, err := s.replica.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

func TestClerkSignIn(t *testing.T) {
	ctx := context.Background()
	s, _, _ := testStore(t, &retail.UpsertClerk{ID: "gone", StoreID: "S1", Name: "Gone", Role: retail.RoleAssociate, PINHash: mustHash(t, "1111"), Active: false})
	for _, tc := range []struct {
		name, clerk, pin string
		want             error
		role             retail.Role
	}{
		{"associate", "clerk-S1", scenario.PIN, nil, retail.RoleAssociate},
		{"manager", "mgr-S1", scenario.PIN, nil, retail.RoleManager},
		{"wrong PIN", "clerk-S1", "0000", ErrWrongPIN, ""},
		{"unknown clerk", "nobody", scenario.PIN, ErrUnknownClerk, ""},
		{"inactive clerk", "gone", "1111", ErrUnknownClerk, ""},
		{"another store's clerk", "clerk-S2", scenario.PIN, ErrNotPermitted, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.SignInClerk(ctx, tc.clerk, tc.pin)
			if !errors.Is(err, tc.want) {
				t.Fatalf("SignInClerk: %v, want %v", err, tc.want)
			}
			if err == nil && c.Role != tc.role {
				t.Fatalf("role %s, want %s", c.Role, tc.role)
			}
			if err != nil && err.Error() == "" {
				t.Fatal("an error without a message")
			}
		})
	}
}

// A lockout outlives the edge: a clerk locked before a restart (or a
// crash) is still locked after it, until the lockout ends.
func TestClerkLockoutSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	s, r, _ := testStore(t)
	now := scenario.T0
	s.now = func() time.Time { return now }
	for i := 1; i <= 5; i++ {
		s.SignInClerk(ctx, "clerk-S1", "0000")
	}
	db0, done0 := r.DB()
	path := db0.Path()
	done0()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := replication.OpenReplica(ctx, replication.ReplicaConfig{Path: path, Region: "test", Edge: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	s2, err := NewStore(StoreConfig{StoreID: "S1", Replica: r2, CouponKey: testKey, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.SignInClerk(ctx, "clerk-S1", scenario.PIN); !errors.Is(err, ErrLocked) {
		t.Fatalf("right PIN after a restart while locked: %v, want locked", err)
	}
	now = now.Add(16 * time.Minute)
	if _, err := s2.SignInClerk(ctx, "clerk-S1", scenario.PIN); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	// Failures before a restart count after it; a right PIN clears them.
	for i := 1; i <= 3; i++ {
		s2.SignInClerk(ctx, "clerk-S1", "0000")
	}
	var failures int
	db, done := r2.DB()
	err = db.QueryRowContext(ctx, "SELECT failures FROM edge_clerk_pins WHERE clerk_id = 'clerk-S1'").Scan(&failures)
	done()
	if err != nil || failures != 3 {
		t.Fatalf("failures %d (%v), want 3", failures, err)
	}
	if _, err := s2.SignInClerk(ctx, "clerk-S1", scenario.PIN); err != nil {
		t.Fatal(err)
	}
	db, done = r2.DB()
	err = db.QueryRowContext(ctx, "SELECT failures FROM edge_clerk_pins WHERE clerk_id = 'clerk-S1'").Scan(&failures)
	done()
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("after a right PIN: %d failures (%v), want none", failures, err)
	}
}

func TestClerkLockedAfterWrongPINs(t *testing.T) {
	ctx := context.Background()
	s, _, _ := testStore(t)
	now := scenario.T0
	s.now = func() time.Time { return now }
	for i := 1; i < 5; i++ {
		if _, err := s.SignInClerk(ctx, "clerk-S1", "0000"); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if _, err := s.SignInClerk(ctx, "clerk-S1", "0000"); !errors.Is(err, ErrLocked) {
		t.Fatalf("5th wrong PIN: %v, want locked", err)
	}
	if _, err := s.SignInClerk(ctx, "clerk-S1", scenario.PIN); !errors.Is(err, ErrLocked) {
		t.Fatalf("right PIN while locked: %v, want locked", err)
	}
	if _, err := s.SignInClerk(ctx, "mgr-S1", scenario.PIN); err != nil {
		t.Fatalf("another clerk is not locked: %v", err)
	}
	now = now.Add(16 * time.Minute)
	if _, err := s.SignInClerk(ctx, "clerk-S1", scenario.PIN); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	if _, err := s.Approve(ctx, "clerk-S1", scenario.PIN); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("an associate approves: %v", err)
	}
	if m, err := s.Approve(ctx, "mgr-S1", scenario.PIN); err != nil || m.ID != "mgr-S1" {
		t.Fatalf("a manager approves: %+v %v", m, err)
	}
}

func mustHash(t testing.TB, pin string) string {
	t.Helper()
	h, err := retail.HashPIN(pin)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCouponCodes(t *testing.T) {
	ctx := context.Background()
	s, _, _ := testStore(t,
		&retail.UpsertPromotion{ID: "OLD", Name: "Gone", PromoType: retail.PromoPercentOff, Value: 10, Audience: retail.AudienceAll,
			StartsAt: scenario.T0.AddDate(-1, 0, 0), EndsAt: scenario.T0.AddDate(1, 0, 0), Active: false})
	valid := s.coupons.issue("P10", "cust-2", scenario.T0.AddDate(0, 0, 10))
	// One character changed in the middle, where every bit is data.
	forged := valid[:10] + map[bool]string{true: "A", false: "B"}[valid[10] != 'A'] + valid[11:]
	expired := s.coupons.issue("P10", "cust-2", scenario.T0.AddDate(0, 0, -2))
	withdrawn := s.coupons.issue("OLD", "cust-2", scenario.T0.AddDate(0, 0, 10))
	otherKey := couponSigner{key: []byte("another region's key, 32 bytes!")}.issue("P10", "cust-2", scenario.T0.AddDate(0, 0, 10))
	for _, tc := range []struct {
		name, code, customer string
		want                 error
	}{
		{"valid", valid, "cust-2", nil},
		{"one character changed", forged, "cust-2", ErrForgedCoupon},
		{"another shopper's", valid, "cust-3", ErrForgedCoupon},
		{"signed with another key", otherKey, "cust-2", ErrForgedCoupon},
		{"not a coupon", "HELLO", "cust-2", ErrForgedCoupon},
		{"expired", expired, "cust-2", ErrCouponExpired},
		{"promotion withdrawn", withdrawn, "cust-2", ErrCouponExpired},
		{"no shopper", valid, "", ErrInvalid},
		{"seeded coupon issued to cust-1, shown by cust-2", "CPN-ONE", "cust-2", ErrCouponNotHers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.CheckCoupon(ctx, tc.code, tc.customer)
			if !errors.Is(err, tc.want) {
				t.Fatalf("CheckCoupon: %v, want %v", err, tc.want)
			}
			if err == nil && (c.PromotionID != "P10" || c.Value != 1000 || c.Type != retail.PromoAmountOff) {
				t.Fatalf("coupon %+v", c)
			}
		})
	}
}

func TestSignInIssuesCouponsAndPublishes(t *testing.T) {
	ctx := context.Background()
	s, _, w := testStore(t,
		// Free shipping made cust-2 buy before; the wish-list promotion
		// fits her wish list; the loyal one does not fit her.
		&retail.UpsertPromotion{ID: "SHIP", Name: "Free shipping", PromoType: retail.PromoFreeShipping, Audience: retail.AudienceAll,
			StartsAt: scenario.T0.AddDate(-1, 0, 0), EndsAt: scenario.T0.AddDate(1, 0, 0), Active: true},
		&retail.UpsertPromotion{ID: "WISH", Name: "15% off socks", PromoType: retail.PromoPercentOff, Value: 15, Category: "socks",
			Audience: retail.AudienceWishList, StartsAt: scenario.T0.AddDate(-1, 0, 0), EndsAt: scenario.T0.AddDate(1, 0, 0), Active: true},
		&retail.UpsertPromotion{ID: "LOYAL", Name: "Loyalty $20", PromoType: retail.PromoAmountOff, Value: 2000, Audience: retail.AudienceLoyal,
			StartsAt: scenario.T0.AddDate(-1, 0, 0), EndsAt: scenario.T0.AddDate(1, 0, 0), Active: true},
		&retail.AddWishItem{CustomerID: "cust-2", SKU: "SKU-2", Source: retail.WishKiosk},
		&retail.MakeOffer{ID: "OF-OLD", PromotionID: "SHIP", CustomerID: "cust-2", Channel: retail.OfferEmail},
		scenario.Sale("ORD-SHIP", "S2", "cust-2", 1, ""),
		&retail.RecordOfferOutcome{OfferID: "OF-OLD", Outcome: retail.OutcomeRedeemed, OrderID: "ORD-SHIP"},
	)
	// OF-OLD was made at T0 (the seed's clock): within 30 days, so SHIP
	// is not offered again; move the clock past the cooldown for a second
	// sign-in.
	res, err := s.SignIn(ctx, "cust-2", retail.SignInCard)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range res.Coupons {
		got = append(got, c.PromotionID)
		if _, err := s.CheckCoupon(ctx, c.Code, "cust-2"); err != nil {
			t.Errorf("issued coupon %s does not check: %v", c.Code, err)
		}
	}
	if strings.Join(got, ",") != "P10,WISH" {
		t.Fatalf("first sign-in offered %v, want P10,WISH (SHIP was just offered; LOYAL does not fit)", got)
	}
	if pending(t, s) != 3 {
		t.Errorf("outbox holds %d mutations, want 3 (the visit and 2 coupons with their offers)", pending(t, s))
	}
	if !res.Published || len(w.sent["cust-2"]) != 1 {
		t.Fatalf("not published to the wallet: %+v %v", res, w.sent)
	}
	var msg WalletMessage
	if err := json.Unmarshal(w.sent["cust-2"][0], &msg); err != nil || len(msg.Coupons) != 2 || msg.Coupons[0].Code != res.Coupons[0].Code {
		t.Fatalf("wallet message %s: %v", w.sent["cust-2"][0], err)
	}

	// A second sign-in right away offers nothing new: she just got them.
	again, err := s.SignIn(ctx, "cust-2", retail.SignInPhone)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Coupons) != 0 {
		t.Fatalf("second sign-in offered %+v", again.Coupons)
	}

	// After the cooldown, the type that worked (free shipping) comes first.
	s.now = func() time.Time { return scenario.T0.Add(31 * 24 * time.Hour) }
	later, err := s.SignIn(ctx, "cust-2", retail.SignInAppQR)
	if err != nil {
		t.Fatal(err)
	}
	if len(later.Coupons) == 0 || later.Coupons[0].PromotionID != "SHIP" || !strings.Contains(later.Coupons[0].Why, "made her buy 1 time") {
		t.Fatalf("after the cooldown: %+v", later.Coupons)
	}
}

func TestSignInRefusals(t *testing.T) {
	ctx := context.Background()
	s, _, _ := testStore(t)
	if _, err := s.SignIn(ctx, "nobody", retail.SignInCard); !errors.Is(err, ErrUnknownCustomer) {
		t.Fatalf("unknown customer: %v", err)
	}
	if _, err := s.SignIn(ctx, "cust-1", "telepathy"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad method: %v", err)
	}
	if n := pending(t, s); n != 0 {
		t.Fatalf("a refused sign-in wrote %d mutations", n)
	}
}

func TestWishListAndContacts(t *testing.T) {
	ctx := context.Background()
	s, _, _ := testStore(t)
	if err := s.AddWish(ctx, clerkS1, "cust-1", "SKU-2", retail.WishClerk, "blue"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddWish(ctx, clerkS1, "cust-1", "SKU-LAST", retail.WishKiosk, ""); err != nil {
		t.Fatal(err)
	}
	items, err := s.WishList(ctx, "cust-1")
	if err != nil || len(items) != 2 {
		t.Fatalf("wish list %+v %v", items, err)
	}
	stock := map[string]int64{}
	for _, it := range items {
		stock[it.SKU] = it.StockHere
	}
	if stock["SKU-2"] != 1000000 || stock["SKU-LAST"] != 0 {
		t.Fatalf("stock here %v", stock)
	}
	if _, err := s.MoveToBasket(ctx, clerkS1, "cust-1", "SKU-LAST"); !errors.Is(err, ErrOutOfStock) {
		t.Fatalf("moving an item not in stock here: %v", err)
	}
	line, err := s.MoveToBasket(ctx, clerkS1, "cust-1", "SKU-2")
	if err != nil || line != (BasketLine{SKU: "SKU-2", Qty: 1}) {
		t.Fatalf("move to basket: %+v %v", line, err)
	}
	if items, _ := s.WishList(ctx, "cust-1"); len(items) != 1 || items[0].SKU != "SKU-LAST" {
		t.Fatalf("after the move: %+v", items)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"unknown customer", s.AddWish(ctx, clerkS1, "nobody", "SKU-2", retail.WishClerk, ""), ErrUnknownCustomer},
		{"unknown product", s.AddWish(ctx, clerkS1, "cust-1", "NOPE", retail.WishClerk, ""), ErrUnknownProduct},
		{"bad source", s.AddWish(ctx, clerkS1, "cust-1", "SKU-1", "pigeon", ""), ErrInvalid},
		{"remove what is not there", s.RemoveWish(ctx, clerkS1, "cust-1", "SKU-1"), nil},
	} {
		if tc.want == nil {
			if tc.err == nil {
				continue
			}
			var e *Error
			if !errors.As(tc.err, &e) {
				t.Errorf("%s: %v is not an *Error", tc.name, tc.err)
			}
			continue
		}
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	yes := true
	id, err := s.RecordContact(ctx, clerkS1, NewContact{CustomerID: "cust-1", Channel: retail.ContactStore, Reason: "late delivery", Resolved: true, Satisfied: &yes, ClerkID: "clerk-S1"})
	if err != nil || id == "" {
		t.Fatalf("contact: %q %v", id, err)
	}
	if _, err := s.RecordContact(ctx, clerkS1, NewContact{CustomerID: "nobody", Channel: retail.ContactStore, Reason: "x"}); !errors.Is(err, ErrUnknownCustomer) {
		t.Fatalf("contact for nobody: %v", err)
	}
}
