package edge

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"errors"
	"strings"
	"time"

	"github.com/endcap/endcap/retail"
)

// Coupon codes are made offline at any store and checked offline at any
// other, without the hub:
//
//	CPN-<base32 of: nonce (5 bytes) | expiry day (3) | promotion length (1) | promotion | signature (7)>
//
// nonce: 40 random bits making the code unique; expiry day: days since
// 1970-01-01; promotion: the promotion id; signature: the first 56 bits of
// HMAC-SHA256(region coupon key, "CPN" | everything before it | customer).
// The customer is signed but not written in the code: the coupon only
// validates for the shopper it was issued to. The code is "CPN-" and
// upper-case base32 (devices.Classify knows it as a coupon; Code128 prints
// it). Single use across stores is the hub's to decide (redemption is a
// mutation); the local check refuses a code the replica knows as redeemed.
type couponSigner struct{ key []byte }

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

const couponSigLen = 7

func (c couponSigner) sign(body []byte, customer string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("CPN"))
	m.Write(body)
	m.Write([]byte(customer))
	return m.Sum(nil)[:couponSigLen]
}

// issue makes a new code for customer's coupon of promotion.
func (c couponSigner) issue(promotion, customer string, expires time.Time) string {
	day := expires.Unix() / 86400
	body := make([]byte, 5, 9+len(promotion)+couponSigLen)
	rand.Read(body)
	body = append(body, byte(day>>16), byte(day>>8), byte(day), byte(len(promotion)))
	body = append(body, promotion...)
	return "CPN-" + b32.EncodeToString(append(body, c.sign(body, customer)...))
}

// parsedCoupon is what a code says about itself.
type parsedCoupon struct {
	promotion string
	expires   time.Time // end of the expiry day, UTC
}

// check verifies code's signature for customer.
func (c couponSigner) check(code, customer string) (parsedCoupon, error) {
	text, ok := strings.CutPrefix(code, "CPN-")
	raw, err := b32.DecodeString(text)
	if !ok || err != nil || len(raw) < 9+couponSigLen || len(raw) != 9+int(raw[8])+couponSigLen {
		return parsedCoupon{}, refuse(ErrForgedCoupon, "%q is not an Endcap coupon code.", code)
	}
	body, sig := raw[:len(raw)-couponSigLen], raw[len(raw)-couponSigLen:]
	if !hmac.Equal(sig, c.sign(body, customer)) {
		return parsedCoupon{}, refuse(ErrForgedCoupon, "Coupon %s is not valid for this shopper (the code does not check out). Do not accept it.", code)
	}
	day := int64(body[5])<<16 | int64(body[6])<<8 | int64(body[7])
	return parsedCoupon{promotion: string(body[9:]), expires: time.Unix((day+1)*86400, 0).UTC()}, nil
}

// Coupon is a coupon as the till sees it.
type Coupon struct {
	Code          string               `json:"code"`
	PromotionID   string               `json:"promotion_id"`
	PromotionName string               `json:"promotion_name"`
	Type          retail.PromotionType `json:"type"`
	Value         int64                `json:"value"` // cents, percent or a price, by type
	MinOrderCents int64                `json:"min_order_cents"`
	ExpiresAt     time.Time            `json:"expires_at"`
	OfferID       string               `json:"offer_id,omitempty"`
}

// CheckCoupon validates a coupon for a customer at this store, offline:
// the signature, the expiry, the promotion, and what the replica knows of
// it (used already, or issued to someone else). It writes nothing.
func (s *Store) CheckCoupon(ctx context.Context, code, customerID string) (Coupon, error) {
	if customerID == "" {
		return Coupon{}, refuse(ErrInvalid, "Sign the shopper in before taking her coupon: a coupon belongs to one shopper.")
	}
	p, err := s.coupons.check(code, customerID)
	if err != nil {
		// Signed for someone else? Say so if the replica knows the coupon.
		var owner string
		if s.query(func(db *retail.DB) error {
			return db.QueryRowContext(ctx, "SELECT customer_id FROM coupons WHERE code = ?", code).Scan(&owner)
		}) == nil && owner != customerID {
			return Coupon{}, refuse(ErrCouponNotHers, "Coupon %s was issued to another shopper.", code)
		}
		return Coupon{}, err
	}
	now := s.now()
	if !now.Before(p.expires) {
		return Coupon{}, refuse(ErrCouponExpired, "Coupon %s expired on %s.", code, p.expires.Add(-time.Second).Format("2 Jan 2006"))
	}
	c := Coupon{Code: code, PromotionID: p.promotion, ExpiresAt: p.expires}
	var active bool
	var ends int64
	err = s.query(func(db *retail.DB) error {
		return db.QueryRowContext(ctx, "SELECT name, type, value, min_order_cents, active, ends_at FROM promotions WHERE id = ?", p.promotion).
			Scan(&c.PromotionName, &c.Type, &c.Value, &c.MinOrderCents, &active, &ends)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return Coupon{}, refuse(ErrForgedCoupon, "Coupon %s is for promotion %s, which this region does not have.", code, p.promotion)
	}
	if err != nil {
		return Coupon{}, err
	}
	if !active {
		return Coupon{}, refuse(ErrCouponExpired, "Coupon %s is for %q, which has been withdrawn.", code, c.PromotionName)
	}
	var redeemedStore sql.NullString
	var redeemedAt sql.NullInt64
	err = s.query(func(db *retail.DB) error {
		return db.QueryRowContext(ctx, "SELECT offer_id, redeemed_store, redeemed_at FROM coupons WHERE code = ?", code).
			Scan(&c.OfferID, &redeemedStore, &redeemedAt)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Issued at a store whose upload has not reached us yet: the
		// signature is the proof; the hub keeps it single-use.
	case err != nil:
		return Coupon{}, err
	case redeemedAt.Valid:
		return Coupon{}, refuse(ErrCouponUsed, "Coupon %s was already used at store %s on %s.", code, redeemedStore.String,
			time.UnixMilli(redeemedAt.Int64).UTC().Format("2 Jan 2006"))
	}
	return c, nil
}
