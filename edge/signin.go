package edge

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/endcap/endcap/retail"
)

// Offer selection at sign-in (docs/api.md, "Sign-in and coupons"):
//
//   - candidates are the region's promotions running now whose audience
//     fits her: all; new (a customer for under 90 days); lapsed (no order
//     in 180 days); loyal (5 or more orders in the last year); high_value
//     (average order of $150 or more); wish_list (the promotion's product
//     or category is on her wish list); returner promotions are never
//     pushed at sign-in;
//   - nothing she was offered in the last 30 days is offered again;
//   - promotion types that made her buy before come first (most
//     redemptions first), then the rest by id;
//   - at most MaxCoupons coupons, each valid for 14 days or until the
//     promotion ends, whichever is sooner.
const (
	MaxCoupons     = 2
	offerCooldown  = 30 * 24 * time.Hour
	couponValidity = 14 * 24 * time.Hour
)

// SignInResult is what a shopper's sign-in at the store did.
type SignInResult struct {
	CustomerID string         `json:"customer_id"`
	Name       string         `json:"name"`
	VisitID    string         `json:"visit_id"`
	Coupons    []IssuedCoupon `json:"coupons"`
	// Published: the coupons reached her wallet topic. When the store is
	// offline they did not (PublishError says why); they are still valid
	// and can be printed or shown at the till.
	Published    bool   `json:"published"`
	PublishError string `json:"publish_error,omitempty"`
}

// IssuedCoupon is a coupon given to the shopper.
type IssuedCoupon struct {
	Code          string               `json:"code"`
	OfferID       string               `json:"offer_id"`
	PromotionID   string               `json:"promotion_id"`
	PromotionName string               `json:"promotion_name"`
	Type          retail.PromotionType `json:"type"`
	Value         int64                `json:"value"`
	MinOrderCents int64                `json:"min_order_cents"`
	ExpiresAt     time.Time            `json:"expires_at"`
	Why           string               `json:"why"`
}

// WalletMessage is what a shopper's wallet topic carries (retained: her
// phone gets the latest when it connects).
type WalletMessage struct {
	V          int            `json:"v"`
	Kind       string         `json:"kind"` // "coupons"
	CustomerID string         `json:"customer_id"`
	StoreID    string         `json:"store_id"`
	Coupons    []IssuedCoupon `json:"coupons"`
	At         time.Time      `json:"at"`
}

// SignIn records a shopper's visit to this store (signed in by card,
// phone or app QR), picks offers for her, issues their coupons — all in
// one local transaction — and pushes the coupons to her wallet topic.
func (s *Store) SignIn(ctx context.Context, customerID string, method retail.SignInMethod) (SignInResult, error) {
	if !method.Valid() {
		return SignInResult{}, refuse(ErrInvalid, "Sign-in method %q is not card, phone or app_qr.", method)
	}
	res := SignInResult{CustomerID: customerID, VisitID: newID(), Coupons: []IssuedCoupon{}}
	err := s.query(func(db *retail.DB) error {
		return db.QueryRowContext(ctx, "SELECT name FROM customers WHERE id = ?", customerID).Scan(&res.Name)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return SignInResult{}, refuse(ErrUnknownCustomer, "No customer %q in this region; sign her up first.", customerID)
	}
	if err != nil {
		return SignInResult{}, err
	}
	picks, err := s.pickOffers(ctx, customerID)
	if err != nil {
		return SignInResult{}, err
	}
	now := s.now()
	bodies := []retail.Body{&retail.RecordVisit{ID: res.VisitID, CustomerID: customerID, StoreID: s.id, Method: method}}
	for _, p := range picks {
		expires := now.Add(couponValidity)
		if p.ends.Before(expires) {
			expires = p.ends
		}
		c := IssuedCoupon{OfferID: newID(), PromotionID: p.id, PromotionName: p.name, Type: p.typ, Value: p.value,
			MinOrderCents: p.minOrder, ExpiresAt: expires.UTC(), Why: p.why}
		c.Code = s.coupons.issue(p.id, customerID, expires)
		// The code's expiry is a whole day: say the day the code says.
		if pc, err := s.coupons.check(c.Code, customerID, []string{p.id}); err == nil {
			c.ExpiresAt = pc.expires
		}
		// IssueCoupon makes the offer too (offers row, outcome pending).
		bodies = append(bodies,
			&retail.IssueCoupon{Code: c.Code, OfferID: c.OfferID, PromotionID: p.id, CustomerID: customerID,
				Channel: retail.OfferStoreSignIn, StoreID: s.id, ExpiresAt: c.ExpiresAt})
		res.Coupons = append(res.Coupons, c)
	}
	results, err := s.replica.WriteBatch(ctx, retail.Actor{Kind: "customer", ID: customerID}, bodies...)
	if err != nil {
		return SignInResult{}, err
	}
	if results[0].Status == retail.StatusRejected {
		return SignInResult{}, refuse(ErrRejected, "%s", results[0].Reason)
	}
	kept := res.Coupons[:0]
	for i, c := range res.Coupons {
		if r := results[1+i]; r.Status == retail.StatusRejected {
			s.log.Warn("coupon not issued", "promotion", c.PromotionID, "reason", r.Reason)
			continue
		}
		kept = append(kept, c)
	}
	res.Coupons = kept
	if s.wallet != nil && len(res.Coupons) > 0 {
		b, _ := json.Marshal(WalletMessage{V: 1, Kind: "coupons", CustomerID: customerID, StoreID: s.id, Coupons: res.Coupons, At: now.UTC()})
		if err := s.wallet.PublishWallet(ctx, customerID, b); err != nil {
			res.PublishError = err.Error()
		} else {
			res.Published = true
		}
	}
	return res, nil
}

type offerPick struct {
	id, name string
	typ      retail.PromotionType
	value    int64
	minOrder int64
	ends     time.Time
	why      string
	rank     int
}

// pickOffers chooses the promotions to offer customerID now.
func (s *Store) pickOffers(ctx context.Context, customerID string) ([]offerPick, error) {
	now := s.now()
	ms := now.UnixMilli()
	var picks []offerPick
	err := s.query(func(db *retail.DB) error {
		var since int64
		var orders, ordersYear int
		var avg sql.NullFloat64
		var lastOrder sql.NullInt64
		if err := db.QueryRowContext(ctx, `SELECT c.since,
		    (SELECT count(*) FROM orders WHERE customer_id = c.id),
		    (SELECT count(*) FROM orders WHERE customer_id = c.id AND placed_at >= ?),
		    (SELECT avg(total_cents) FROM orders WHERE customer_id = c.id),
		    (SELECT max(placed_at) FROM orders WHERE customer_id = c.id)
		  FROM customers c WHERE c.id = ?`, ms-365*86400000, customerID).Scan(&since, &orders, &ordersYear, &avg, &lastOrder); err != nil {
			return err
		}
		fits := map[retail.Audience]string{
			retail.AudienceAll: "for every shopper",
		}
		if ms-since < 90*86400000 {
			fits[retail.AudienceNew] = "welcome: a new customer"
		}
		if orders > 0 && (!lastOrder.Valid || ms-lastOrder.Int64 > 180*86400000) {
			fits[retail.AudienceLapsed] = "we missed her: no order in 6 months"
		}
		if ordersYear >= 5 {
			fits[retail.AudienceLoyal] = fmt.Sprintf("loyal: %d orders this year", ordersYear)
		}
		if avg.Valid && avg.Float64 >= 15000 {
			fits[retail.AudienceHighValue] = fmt.Sprintf("high value: average order $%.0f", avg.Float64/100)
		}
		// Which promotion types made her buy, most first.
		worked := map[retail.PromotionType]int{}
		rows, err := db.QueryContext(ctx, `SELECT p.type, count(*) FROM offers o JOIN promotions p ON p.id = o.promotion_id
		  WHERE o.customer_id = ? AND o.outcome = 'redeemed' GROUP BY p.type`, customerID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var t retail.PromotionType
			var n int
			if err := rows.Scan(&t, &n); err != nil {
				rows.Close()
				return err
			}
			worked[t] = n
		}
		rows.Close()
		rows, err = db.QueryContext(ctx, `SELECT p.id, p.name, p.type, p.value, p.min_order_cents, p.ends_at, p.audience,
		    EXISTS (SELECT 1 FROM wish_items w JOIN products pr ON pr.sku = w.sku
		            WHERE w.customer_id = ? AND (w.sku = p.sku OR (p.category != '' AND pr.category = p.category))),
		    EXISTS (SELECT 1 FROM offers o WHERE o.customer_id = ? AND o.promotion_id = p.id AND o.made_at >= ?)
		  FROM promotions p WHERE p.active = 1 AND p.starts_at <= ? AND p.ends_at > ? ORDER BY p.id`,
			customerID, customerID, ms-offerCooldown.Milliseconds(), ms, ms)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p offerPick
			var ends int64
			var audience retail.Audience
			var onWishList, recent bool
			if err := rows.Scan(&p.id, &p.name, &p.typ, &p.value, &p.minOrder, &ends, &audience, &onWishList, &recent); err != nil {
				return err
			}
			if recent {
				continue // she just received it
			}
			why, ok := fits[audience]
			if audience == retail.AudienceWishList && onWishList {
				why, ok = "on her wish list", true
			}
			if !ok {
				continue
			}
			p.ends = time.UnixMilli(ends).UTC()
			p.why = why
			if n := worked[p.typ]; n > 0 {
				p.rank = n
				p.why = fmt.Sprintf("%s; %s offers made her buy %d time(s)", why, p.typ, n)
			}
			picks = append(picks, p)
		}
		return rows.Err()
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, refuse(ErrUnknownCustomer, "No customer %q in this region.", customerID)
	}
	if err != nil {
		return nil, err
	}
	sort.SliceStable(picks, func(i, j int) bool { return picks[i].rank > picks[j].rank })
	if len(picks) > MaxCoupons {
		picks = picks[:MaxCoupons]
	}
	return picks, nil
}
