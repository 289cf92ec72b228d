package retail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

func init() {
	register(func() Body { return &AddWishItem{} })
	register(func() Body { return &RemoveWishItem{} })
	register(func() Body { return &RecordVisit{} })
	register(func() Body { return &MakeOffer{} })
	register(func() Body { return &IssueCoupon{} })
	register(func() Body { return &RedeemCoupon{} })
	register(func() Body { return &RecordOfferOutcome{} })
	register(func() Body { return &RecordServiceContact{} })
	register(func() Body { return &RecordCartEvent{} })
	register(func() Body { return &ResolveException{} })
}

// AddWishItem puts a product on a customer's wish list (again: the note
// and source are updated, the date kept). Request.
type AddWishItem struct {
	CustomerID string     `json:"customer_id"`
	SKU        string     `json:"sku"`
	Source     WishSource `json:"source"`
	Note       string     `json:"note,omitempty"`
}

func (*AddWishItem) Type() string { return "add_wish_item" }
func (*AddWishItem) Class() Class { return Request }
func (b *AddWishItem) Validate() error {
	var c checks
	c.require(b.CustomerID != "", "customer id is empty")
	c.require(b.SKU != "", "sku is empty")
	c.require(b.Source.Valid(), "source %q is not kiosk, clerk, web or app", b.Source)
	return c.err()
}
func (b *AddWishItem) apply(ctx context.Context, a *applier) error {
	if err := a.mustExist(ctx, "customer", "customers", "id", b.CustomerID); err != nil {
		return err
	}
	if err := a.mustExist(ctx, "product", "products", "sku", b.SKU); err != nil {
		return err
	}
	added := a.at
	var prev int64
	err := a.tx.queryRow(ctx, "SELECT added_at FROM wish_items WHERE customer_id = ? AND sku = ?", b.CustomerID, b.SKU).Scan(&prev)
	switch {
	case err == nil:
		added = prev
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("look up wish item: %w", err)
	}
	return a.put(ctx, tWishItems, b.CustomerID, b.SKU, added, b.Source, b.Note)
}

// RemoveWishItem takes a product off a wish list (bought, or no longer
// wanted). Removing what is not there is accepted and changes nothing. Request.
type RemoveWishItem struct {
	CustomerID string `json:"customer_id"`
	SKU        string `json:"sku"`
}

func (*RemoveWishItem) Type() string { return "remove_wish_item" }
func (*RemoveWishItem) Class() Class { return Request }
func (b *RemoveWishItem) Validate() error {
	var c checks
	c.require(b.CustomerID != "", "customer id is empty")
	c.require(b.SKU != "", "sku is empty")
	return c.err()
}
func (b *RemoveWishItem) apply(ctx context.Context, a *applier) error {
	ok, err := a.exists(ctx, "SELECT 1 FROM wish_items WHERE customer_id = ? AND sku = ?", b.CustomerID, b.SKU)
	if err != nil || !ok {
		return err
	}
	return a.del(ctx, tWishItems, b.CustomerID, b.SKU)
}

// RecordVisit records a shopper signing in at a store. Fact.
type RecordVisit struct {
	ID         string       `json:"id"`
	CustomerID string       `json:"customer_id"`
	StoreID    string       `json:"store_id"`
	Method     SignInMethod `json:"method"`
}

func (*RecordVisit) Type() string { return "record_visit" }
func (*RecordVisit) Class() Class { return Fact }
func (b *RecordVisit) Validate() error {
	var c checks
	c.require(b.ID != "", "visit id is empty")
	c.require(b.CustomerID != "", "customer id is empty")
	c.require(b.StoreID != "", "store id is empty")
	c.require(b.Method.Valid(), "sign-in method %q is not card, phone or app_qr", b.Method)
	return c.err()
}
func (b *RecordVisit) apply(ctx context.Context, a *applier) error {
	if err := a.mustExist(ctx, "customer", "customers", "id", b.CustomerID); err != nil {
		return err
	}
	if err := a.mustExist(ctx, "store", "stores", "id", b.StoreID); err != nil {
		return err
	}
	if ok, err := a.exists(ctx, "SELECT 1 FROM visits WHERE id = ?", b.ID); err != nil {
		return err
	} else if ok {
		return reject(CodeDuplicateID, "Visit %s already exists.", b.ID)
	}
	return a.put(ctx, tVisits, b.ID, b.CustomerID, b.StoreID, b.Method, a.at)
}

// MakeOffer records an offer made to a customer without a coupon (an
// email, a clerk's suggestion). Request: the promotion must be active.
type MakeOffer struct {
	ID          string       `json:"id"`
	PromotionID string       `json:"promotion_id"`
	CustomerID  string       `json:"customer_id"`
	Channel     OfferChannel `json:"channel"`
	StoreID     string       `json:"store_id,omitempty"`
}

func (*MakeOffer) Type() string { return "make_offer" }
func (*MakeOffer) Class() Class { return Request }
func (b *MakeOffer) Validate() error {
	var c checks
	c.require(b.ID != "", "offer id is empty")
	c.require(b.PromotionID != "", "promotion id is empty")
	c.require(b.CustomerID != "", "customer id is empty")
	c.require(b.Channel.Valid(), "offer channel %q is unknown", b.Channel)
	return c.err()
}
func (b *MakeOffer) apply(ctx context.Context, a *applier) error {
	return a.makeOffer(ctx, b.ID, b.PromotionID, b.CustomerID, b.Channel, b.StoreID)
}

func (a *applier) makeOffer(ctx context.Context, id, promo, customer string, ch OfferChannel, store string) error {
	if ok, err := a.exists(ctx, "SELECT 1 FROM offers WHERE id = ?", id); err != nil {
		return err
	} else if ok {
		return reject(CodeDuplicateID, "Offer %s already exists.", id)
	}
	var active bool
	var starts, ends int64
	err := a.tx.queryRow(ctx, "SELECT active, starts_at, ends_at FROM promotions WHERE id = ?", promo).Scan(&active, &starts, &ends)
	if errors.Is(err, sql.ErrNoRows) {
		return reject(CodeNotFound, "Unknown promotion %s.", promo)
	}
	if err != nil {
		return fmt.Errorf("look up promotion: %w", err)
	}
	if !active || a.at < starts || a.at >= ends {
		return reject(CodeInactive, "Promotion %s is not running now (runs %s to %s).", promo, fmtDay(starts), fmtDay(ends))
	}
	if err := a.mustExist(ctx, "customer", "customers", "id", customer); err != nil {
		return err
	}
	if store != "" {
		if err := a.mustExist(ctx, "store", "stores", "id", store); err != nil {
			return err
		}
	}
	return a.put(ctx, tOffers, id, promo, customer, ch, nullable(store), a.at, OutcomePending, nil, nil)
}

// IssueCoupon makes an offer to a customer and issues its coupon with a
// unique code (made at the edge, offline). Request: refused if the code is
// already used for another coupon or the promotion is not running.
type IssueCoupon struct {
	Code        string       `json:"code"`
	OfferID     string       `json:"offer_id"`
	PromotionID string       `json:"promotion_id"`
	CustomerID  string       `json:"customer_id"`
	Channel     OfferChannel `json:"channel"`
	StoreID     string       `json:"store_id,omitempty"`
	ExpiresAt   time.Time    `json:"expires_at"`
}

func (*IssueCoupon) Type() string { return "issue_coupon" }
func (*IssueCoupon) Class() Class { return Request }
func (b *IssueCoupon) Validate() error {
	var c checks
	c.require(b.Code != "", "coupon code is empty")
	c.require(b.OfferID != "", "offer id is empty")
	c.require(b.PromotionID != "", "promotion id is empty")
	c.require(b.CustomerID != "", "customer id is empty")
	c.require(b.Channel.Valid(), "offer channel %q is unknown", b.Channel)
	c.require(!b.ExpiresAt.IsZero(), "coupon expiry is not set")
	return c.err()
}
func (b *IssueCoupon) apply(ctx context.Context, a *applier) error {
	if ok, err := a.exists(ctx, "SELECT 1 FROM coupons WHERE code = ?", b.Code); err != nil {
		return err
	} else if ok {
		return reject(CodeDuplicateID, "Coupon code %s is already issued.", b.Code)
	}
	if b.ExpiresAt.UnixMilli() <= a.at {
		return invalid("Coupon %s would expire before it is issued.", b.Code)
	}
	if err := a.makeOffer(ctx, b.OfferID, b.PromotionID, b.CustomerID, b.Channel, b.StoreID); err != nil {
		return err
	}
	return a.put(ctx, tCoupons, b.Code, b.OfferID, b.CustomerID, b.PromotionID, nullable(b.StoreID), a.at,
		b.ExpiresAt.UnixMilli(), nil, nil, nil)
}

// RedeemCoupon redeems a coupon on its own (an online order's code, a
// clerk taking a coupon before ringing the sale). Request: refused if the
// coupon is unknown, already redeemed, expired, or issued to someone else.
// A coupon used in a till sale is redeemed by RecordSale instead.
type RedeemCoupon struct {
	Code       string `json:"code"`
	CustomerID string `json:"customer_id,omitempty"`
	StoreID    string `json:"store_id,omitempty"`
	OrderID    string `json:"order_id,omitempty"`
}

func (*RedeemCoupon) Type() string { return "redeem_coupon" }
func (*RedeemCoupon) Class() Class { return Request }
func (b *RedeemCoupon) Validate() error {
	var c checks
	c.require(b.Code != "", "coupon code is empty")
	return c.err()
}
func (b *RedeemCoupon) apply(ctx context.Context, a *applier) error {
	c, err := a.coupon(ctx, b.Code)
	if err != nil {
		return err
	}
	if err := refuseCoupon(b.Code, c, b.CustomerID, a.at); err != nil {
		return err
	}
	if b.StoreID != "" {
		if err := a.mustExist(ctx, "store", "stores", "id", b.StoreID); err != nil {
			return err
		}
	}
	if b.OrderID != "" {
		if err := a.mustExist(ctx, "order", "orders", "id", b.OrderID); err != nil {
			return err
		}
	}
	return a.redeem(ctx, b.Code, c, b.StoreID, b.OrderID)
}

// RecordOfferOutcome records what became of an offer: ignored, expired, or
// redeemed with an order. Request: an offer already redeemed keeps that
// outcome, and only a pending offer can be marked ignored or expired.
type RecordOfferOutcome struct {
	OfferID string       `json:"offer_id"`
	Outcome OfferOutcome `json:"outcome"`
	OrderID string       `json:"order_id,omitempty"` // for redeemed
}

func (*RecordOfferOutcome) Type() string { return "record_offer_outcome" }
func (*RecordOfferOutcome) Class() Class { return Request }
func (b *RecordOfferOutcome) Validate() error {
	var c checks
	c.require(b.OfferID != "", "offer id is empty")
	c.require(b.Outcome.Valid() && b.Outcome != OutcomePending, "outcome %q is not redeemed, ignored or expired", b.Outcome)
	c.require(b.Outcome != OutcomeRedeemed || b.OrderID != "", "a redeemed offer names its order")
	return c.err()
}
func (b *RecordOfferOutcome) apply(ctx context.Context, a *applier) error {
	var outcome OfferOutcome
	err := a.tx.queryRow(ctx, "SELECT outcome FROM offers WHERE id = ?", b.OfferID).Scan(&outcome)
	if errors.Is(err, sql.ErrNoRows) {
		return reject(CodeNotFound, "Unknown offer %s.", b.OfferID)
	}
	if err != nil {
		return fmt.Errorf("look up offer: %w", err)
	}
	if outcome != OutcomePending {
		return reject(CodeBadTransition, "Offer %s is already %s.", b.OfferID, outcome)
	}
	if b.OrderID != "" {
		if err := a.mustExist(ctx, "order", "orders", "id", b.OrderID); err != nil {
			return err
		}
	}
	_, err = a.update(ctx, tOffers, "UPDATE offers SET outcome = ?, outcome_order_id = ?, outcome_at = ? WHERE id = ?",
		b.Outcome, nullable(b.OrderID), a.at, b.OfferID)
	return err
}

// RecordServiceContact records a customer service contact, or updates it
// as it is resolved. The opening time is the first record's. Fact.
type RecordServiceContact struct {
	ID         string         `json:"id"`
	CustomerID string         `json:"customer_id"`
	Channel    ContactChannel `json:"channel"`
	Reason     string         `json:"reason"`
	Resolved   bool           `json:"resolved"`
	Satisfied  *bool          `json:"satisfied,omitempty"` // nil: not asked
	ClerkID    string         `json:"clerk_id,omitempty"`
	StoreID    string         `json:"store_id,omitempty"`
	Notes      string         `json:"notes,omitempty"`
}

func (*RecordServiceContact) Type() string { return "record_service_contact" }
func (*RecordServiceContact) Class() Class { return Fact }
func (b *RecordServiceContact) Validate() error {
	var c checks
	c.require(b.ID != "", "contact id is empty")
	c.require(b.CustomerID != "", "customer id is empty")
	c.require(b.Channel.Valid(), "contact channel %q is unknown", b.Channel)
	c.require(b.Reason != "", "contact reason is empty")
	return c.err()
}
func (b *RecordServiceContact) apply(ctx context.Context, a *applier) error {
	if err := a.mustExist(ctx, "customer", "customers", "id", b.CustomerID); err != nil {
		return err
	}
	if b.StoreID != "" {
		if err := a.mustExist(ctx, "store", "stores", "id", b.StoreID); err != nil {
			return err
		}
	}
	opened := a.at
	var prev int64
	err := a.tx.queryRow(ctx, "SELECT opened_at FROM service_contacts WHERE id = ?", b.ID).Scan(&prev)
	switch {
	case err == nil:
		opened = prev
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("look up contact: %w", err)
	}
	var satisfied any
	if b.Satisfied != nil {
		satisfied = *b.Satisfied
	}
	return a.put(ctx, tServiceContacts, b.ID, b.CustomerID, b.Channel, b.Reason, opened, b.Resolved, normalize(satisfied),
		nullable(b.ClerkID), nullable(b.StoreID), b.Notes, a.at)
}

// RecordCartEvent records browsing and cart activity in any channel and
// keeps the cart's status and furthest checkout step current, so abandoned
// carts and where they were abandoned are one query. Fact.
type RecordCartEvent struct {
	ID         string        `json:"id"`
	CartID     string        `json:"cart_id,omitempty"` // empty for browsing outside a cart
	CustomerID string        `json:"customer_id,omitempty"`
	Channel    Channel       `json:"channel"`
	Kind       CartEventKind `json:"kind"`
	SKU        string        `json:"sku,omitempty"`
	Qty        int64         `json:"qty,omitempty"`
	Step       CheckoutStep  `json:"step"`
	OrderID    string        `json:"order_id,omitempty"` // for purchase
}

func (*RecordCartEvent) Type() string { return "record_cart_event" }
func (*RecordCartEvent) Class() Class { return Fact }
func (b *RecordCartEvent) Validate() error {
	var c checks
	c.require(b.ID != "", "event id is empty")
	c.require(b.Channel.Valid(), "channel %q is unknown", b.Channel)
	c.require(b.Kind.Valid(), "event kind %q is unknown", b.Kind)
	c.require(b.Step.Valid(), "checkout step %q is unknown", b.Step)
	c.require(b.Kind == CartView || b.CartID != "", "a %s event names its cart", b.Kind)
	c.require(b.Kind != CartAdd && b.Kind != CartRemove || (b.SKU != "" && b.Qty > 0), "add and remove name a sku and a positive quantity")
	c.require(b.Kind != CartPurchase || b.OrderID != "", "a purchase names its order")
	return c.err()
}

var stepRank = map[CheckoutStep]int{StepBrowse: 0, StepCart: 1, StepShipping: 2, StepPayment: 3, StepReview: 4}

func (b *RecordCartEvent) apply(ctx context.Context, a *applier) error {
	if b.CustomerID != "" {
		if err := a.mustExist(ctx, "customer", "customers", "id", b.CustomerID); err != nil {
			return err
		}
	}
	if b.SKU != "" {
		if err := a.mustExist(ctx, "product", "products", "sku", b.SKU); err != nil {
			return err
		}
	}
	if b.OrderID != "" {
		if err := a.mustExist(ctx, "order", "orders", "id", b.OrderID); err != nil {
			return err
		}
	}
	if ok, err := a.exists(ctx, "SELECT 1 FROM cart_events WHERE id = ?", b.ID); err != nil {
		return err
	} else if ok {
		return reject(CodeDuplicateID, "Cart event %s already exists.", b.ID)
	}
	if b.CartID != "" {
		status, step, order := "open", b.Step, any(nil)
		var prevStatus string
		var prevStep CheckoutStep
		var prevOrder sql.NullString
		err := a.tx.queryRow(ctx, "SELECT status, last_step, order_id FROM carts WHERE id = ?", b.CartID).Scan(&prevStatus, &prevStep, &prevOrder)
		switch {
		case err == nil:
			if stepRank[prevStep] > stepRank[step] {
				step = prevStep
			}
			status = prevStatus
			if prevOrder.Valid {
				order = prevOrder.String
			}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("look up cart: %w", err)
		}
		switch b.Kind {
		case CartPurchase:
			status, order = "purchased", b.OrderID
		case CartAbandon:
			if status != "purchased" {
				status = "abandoned"
			}
		case CartAdd, CartCheckoutStep:
			if status == "abandoned" {
				status = "open" // she came back
			}
		}
		if err := a.put(ctx, tCarts, b.CartID, nullable(b.CustomerID), b.Channel, status, step, order, a.at); err != nil {
			return err
		}
	}
	return a.put(ctx, tCartEvents, b.ID, nullable(b.CartID), nullable(b.CustomerID), b.Channel, b.Kind,
		nullable(b.SKU), b.Qty, b.Step, a.at)
}

// ResolveException closes an exception with what was done about it.
// Request: only a manager or admin may, and only an open exception.
type ResolveException struct {
	ExceptionID string `json:"exception_id"`
	ClerkID     string `json:"clerk_id"`
	Resolution  string `json:"resolution"`
}

func (*ResolveException) Type() string { return "resolve_exception" }
func (*ResolveException) Class() Class { return Request }
func (b *ResolveException) Validate() error {
	var c checks
	c.require(b.ExceptionID != "", "exception id is empty")
	c.require(b.ClerkID != "", "clerk id is empty")
	c.require(b.Resolution != "", "say how it was resolved")
	return c.err()
}
func (b *ResolveException) apply(ctx context.Context, a *applier) error {
	var role Role
	err := a.tx.queryRow(ctx, "SELECT role FROM clerks WHERE id = ? AND active = 1", b.ClerkID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return reject(CodeNotFound, "Unknown or inactive clerk %s.", b.ClerkID)
	}
	if err != nil {
		return fmt.Errorf("look up clerk: %w", err)
	}
	if !role.CanApprove() {
		return reject(CodeNotPermitted, "Only a manager may resolve exceptions; %s is an %s.", b.ClerkID, role)
	}
	var status string
	err = a.tx.queryRow(ctx, "SELECT status FROM exceptions WHERE id = ?", b.ExceptionID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return reject(CodeNotFound, "Unknown exception %s.", b.ExceptionID)
	}
	if err != nil {
		return fmt.Errorf("look up exception: %w", err)
	}
	if status != "open" {
		return reject(CodeBadTransition, "Exception %s is already resolved.", b.ExceptionID)
	}
	_, err = a.update(ctx, tExceptions, "UPDATE exceptions SET status = 'resolved', resolved_by = ?, resolved_at = ?, resolution = ? WHERE id = ?",
		b.ClerkID, a.at, b.Resolution, b.ExceptionID)
	return err
}
