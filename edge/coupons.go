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
//	CPN-<18 base32 characters: nonce (3 bytes) | expiry day (2) | promotion (2) | signature (4)>
//
// nonce: 24 random bits; expiry day: days since 2020-01-01; promotion:
// the first 16 bits of SHA-256 of the promotion id (the checker tries the
// region's promotions that match); signature: the first 32 bits of
// HMAC-SHA256(region coupon key, "CPN" | nonce | day | promotion id |
// customer). The customer is signed but not written: the coupon only
// validates for the shopper it was issued to, and a guess at a signature
// has to be scanned at a till, one in four billion. 22 characters in all,
// so the code fits a Code128 barcode on 80 mm paper (devices) and is
// "CPN-" and upper-case base32 (devices.Classify knows it as a coupon).
// Single use across stores is the hub's to decide (redemption is a
// mutation); the local check refuses a code the replica knows as redeemed.
type couponSigner struct{ key []byte }

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

const couponLen = 11 // bytes behind "CPN-"

var couponEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func promoHash(id string) [2]byte {
	h := sha256.Sum256([]byte(id))
	return [2]byte{h[0], h[1]}
}

func (c couponSigner) sign(head []byte, promotion, customer string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("CPN"))
	m.Write(head[:5])
	m.Write([]byte(promotion))
	m.Write([]byte{0})
	m.Write([]byte(customer))
	return m.Sum(nil)[:4]
}

// issue makes a new code for customer's coupon of promotion.
func (c couponSigner) issue(promotion, customer string, expires time.Time) string {
	day := int(expires.Sub(couponEpoch).Hours() / 24)
	day = max(0, min(day, 65535))
	raw := make([]byte, 3, couponLen)
	rand.Read(raw)
	ph := promoHash(promotion)
	raw = append(raw, byte(day>>8), byte(day), ph[0], ph[1])
	raw = append(raw, c.sign(raw, promotion, customer)...)
	return "CPN-" + b32.EncodeToString(raw)
}

// parsedCoupon is what a code says about itself.
type parsedCoupon struct {
	promotion string
	expires   time.Time // end of the expiry day, UTC
}

// check verifies code's signature for customer against the region's
// promotions (their ids).
func (c couponSigner) check(code, customer string, promotions []string) (parsedCoupon, error) {
	text, ok := strings.CutPrefix(code, "CPN-")
	raw, err := b32.DecodeString(text)
	// Encoded again it must be the same text: a code whose unused
	// trailing bits are set is not one we made.
	if !ok || err != nil || len(raw) != couponLen || b32.EncodeToString(raw) != text {
		return parsedCoupon{}, refuse(ErrForgedCoupon, "%q is not an Endcap coupon code.", code)
	}
	day := int(raw[3])<<8 | int(raw[4])
	for _, p := range promotions {
		if ph := promoHash(p); ph[0] != raw[5] || ph[1] != raw[6] {
			continue
		}
		if hmac.Equal(raw[7:], c.sign(raw, p, customer)) {
			return parsedCoupon{promotion: p, expires: couponEpoch.AddDate(0, 0, day+1)}, nil
		}
	}
	return parsedCoupon{}, refuse(ErrForgedCoupon, "Coupon %s is not valid for this shopper (the code does not check out). Do not accept it.", code)
}

// promotionIDs lists the region's promotions, for checking coupon codes.
func (s *Store) promotionIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.query(func(db *retail.DB) error {
		rows, err := db.QueryContext(ctx, "SELECT id FROM promotions")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	return ids, err
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
	promos, err := s.promotionIDs(ctx)
	if err != nil {
		return Coupon{}, err
	}
	p, err := s.coupons.check(code, customerID, promos)
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
