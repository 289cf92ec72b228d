package retail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

func init() {
	register(func() Body { return &PlaceOrder{} })
	register(func() Body { return &RecordSale{} })
	register(func() Body { return &FulfilOrder{} })
	register(func() Body { return &ReturnItems{} })
}

// Line is one order line. The price is the one the shopper was charged.
type Line struct {
	SKU            string `json:"sku"`
	Qty            int64  `json:"qty"`
	UnitPriceCents Cents  `json:"unit_price_cents"`
	DiscountCents  Cents  `json:"discount_cents,omitempty"` // line discount (sale price, percent off)
}

// Tender is one payment. CardToken is the payment processor's token for
// the card (never the card number), so a card can find its orders.
type Tender struct {
	Kind        TenderKind `json:"kind"`
	AmountCents Cents      `json:"amount_cents"`
	CardToken   string     `json:"card_token,omitempty"`
}

// CouponUse is a coupon presented with an order and the discount it gave.
type CouponUse struct {
	Code          string `json:"code"`
	DiscountCents Cents  `json:"discount_cents"`
}

// Order is what PlaceOrder and RecordSale carry. Totals are derived from
// the lines and coupons; the tenders must pay exactly the total.
type Order struct {
	ID          string      `json:"id"`
	CustomerID  string      `json:"customer_id,omitempty"`
	Channel     Channel     `json:"channel"`
	StoreID     string      `json:"store_id,omitempty"` // where it was placed; empty for web and phone
	ClerkID     string      `json:"clerk_id,omitempty"`
	Fulfilment  Fulfilment  `json:"fulfilment"`
	FulfilFrom  string      `json:"fulfil_from,omitempty"`  // location that ships or hands over
	PickupStore string      `json:"pickup_store,omitempty"` // for store_pickup
	ShipAddress string      `json:"ship_address,omitempty"` // for ship_to_home
	ExpectedAt  *time.Time  `json:"expected_at,omitempty"`
	Lines       []Line      `json:"lines"`
	Tenders     []Tender    `json:"tenders"`
	Coupons     []CouponUse `json:"coupons,omitempty"`
}

// Totals returns the subtotal, the discount (lines and coupons) and the total.
func (o *Order) Totals() (subtotal, discount, total Cents) {
	for _, l := range o.Lines {
		subtotal += l.Qty * l.UnitPriceCents
		discount += l.DiscountCents
	}
	for _, c := range o.Coupons {
		discount += c.DiscountCents
	}
	return subtotal, discount, subtotal - discount
}

func (o *Order) check(c *checks) {
	c.require(o.ID != "", "order id is empty")
	c.require(o.Channel.Valid(), "channel %q is not web, phone, store or kiosk", o.Channel)
	c.require(o.Fulfilment.Valid(), "fulfilment %q is not carry_out, ship_to_home or store_pickup", o.Fulfilment)
	c.require(len(o.Lines) > 0, "the basket is empty")
	for i, l := range o.Lines {
		c.require(l.SKU != "", "line %d has no sku", i+1)
		c.require(l.Qty > 0, "line %d quantity %d is not positive", i+1, l.Qty)
		c.require(l.UnitPriceCents >= 0, "line %d price is negative", i+1)
		c.require(l.DiscountCents >= 0 && l.DiscountCents <= l.Qty*l.UnitPriceCents, "line %d discount is negative or above its price", i+1)
	}
	codes := map[string]bool{}
	for _, cu := range o.Coupons {
		c.require(cu.Code != "" && !codes[cu.Code], "coupon %q is empty or given twice", cu.Code)
		c.require(cu.DiscountCents >= 0, "coupon %s discount is negative", cu.Code)
		codes[cu.Code] = true
	}
	_, _, total := o.Totals()
	c.require(total >= 0, "discounts exceed the subtotal")
	var paid Cents
	for i, t := range o.Tenders {
		c.require(t.Kind.Valid(), "tender %d kind %q is unknown", i+1, t.Kind)
		c.require(t.AmountCents >= 0, "tender %d amount is negative", i+1)
		c.require(t.Kind != TenderCard || t.CardToken != "", "tender %d: a card payment needs its card token", i+1)
		paid += t.AmountCents
	}
	c.require(paid == total, "tenders pay %d, the total is %d", paid, total)
	switch o.Fulfilment {
	case ShipToHome:
		c.require(o.ShipAddress != "", "ship to home needs an address")
	case StorePickup:
		c.require(o.PickupStore != "", "store pickup needs a pickup store")
	}
}

// insert writes the order, its lines and tenders, after checking that
// everything it names exists.
func (o *Order) insert(ctx context.Context, a *applier, status OrderStatus) error {
	if ok, err := a.exists(ctx, "SELECT 1 FROM orders WHERE id = ?", o.ID); err != nil {
		return fmt.Errorf("look up order: %w", err)
	} else if ok {
		return reject(CodeDuplicateID, "Order %s already exists.", o.ID)
	}
	if o.CustomerID != "" {
		if err := a.mustExist(ctx, "customer", "customers", "id", o.CustomerID); err != nil {
			return err
		}
	}
	checked := map[string]bool{}
	for _, s := range []string{o.StoreID, o.FulfilFrom, o.PickupStore} {
		if s != "" && !checked[s] {
			checked[s] = true
			if err := a.mustExist(ctx, "store", "stores", "id", s); err != nil {
				return err
			}
		}
	}
	skus, _ := o.qtyBySKU()
	if err := a.productsExist(ctx, skus); err != nil {
		return err
	}
	var expected any
	if o.ExpectedAt != nil {
		expected = o.ExpectedAt.UnixMilli()
	}
	sub, disc, total := o.Totals()
	if err := a.put(ctx, tOrders, o.ID, nullable(o.CustomerID), o.Channel, nullable(o.StoreID), nullable(o.ClerkID), status,
		o.Fulfilment, nullable(o.FulfilFrom), nullable(o.PickupStore), o.ShipAddress, expected,
		sub, disc, total, a.at, a.at, a.m.ID.String()); err != nil {
		return err
	}
	for i, l := range o.Lines {
		if err := a.put(ctx, tOrderLines, o.ID, i+1, l.SKU, l.Qty, l.UnitPriceCents, l.DiscountCents); err != nil {
			return err
		}
	}
	for i, t := range o.Tenders {
		if err := a.put(ctx, tOrderTenders, o.ID, i+1, t.Kind, t.AmountCents, t.CardToken); err != nil {
			return err
		}
	}
	return nil
}

// productsExist rejects with CodeNotFound naming the first SKU (in the
// order given) that the region does not have. One query for all of them.
func (a *applier) productsExist(ctx context.Context, skus []string) error {
	args := make([]any, len(skus))
	for i, s := range skus {
		args[i] = s
	}
	q := "SELECT count(*) FROM products WHERE sku IN (?" + strings.Repeat(", ?", len(skus)-1) + ")"
	var n int
	if err := a.tx.queryRow(ctx, q, args...).Scan(&n); err != nil {
		return fmt.Errorf("look up products: %w", err)
	}
	if n == len(skus) {
		return nil
	}
	for _, s := range skus {
		if err := a.mustExist(ctx, "product", "products", "sku", s); err != nil {
			return err
		}
	}
	return nil
}

// qtyBySKU sums line quantities per SKU, in SKU order (for determinism).
func (o *Order) qtyBySKU() ([]string, map[string]int64) {
	qty := map[string]int64{}
	var skus []string
	for _, l := range o.Lines {
		if qty[l.SKU] == 0 {
			skus = append(skus, l.SKU)
		}
		qty[l.SKU] += l.Qty
	}
	sort.Strings(skus)
	return skus, qty
}

// couponState is a coupon as the database knows it.
type couponState struct {
	offerID, customerID, redeemedStore, redeemedOrder string
	expiresAt, redeemedAt                             int64
	redeemed                                          bool
}

func (a *applier) coupon(ctx context.Context, code string) (*couponState, error) {
	var c couponState
	var rStore, rOrder sql.NullString
	var rAt sql.NullInt64
	err := a.tx.queryRow(ctx, "SELECT offer_id, customer_id, expires_at, redeemed_store, redeemed_at, redeemed_order_id FROM coupons WHERE code = ?", code).
		Scan(&c.offerID, &c.customerID, &c.expiresAt, &rStore, &rAt, &rOrder)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up coupon %s: %w", code, err)
	}
	c.redeemed = rAt.Valid
	c.redeemedStore, c.redeemedAt, c.redeemedOrder = rStore.String, rAt.Int64, rOrder.String
	return &c, nil
}

// redeem marks the coupon redeemed with the order and the offer as worked.
func (a *applier) redeem(ctx context.Context, code string, c *couponState, store, order string) error {
	if _, err := a.update(ctx, tCoupons, "UPDATE coupons SET redeemed_store = ?, redeemed_at = ?, redeemed_order_id = ? WHERE code = ?",
		nullable(store), a.at, nullable(order), code); err != nil {
		return err
	}
	_, err := a.update(ctx, tOffers, "UPDATE offers SET outcome = 'redeemed', outcome_order_id = ?, outcome_at = ? WHERE id = ?",
		nullable(order), a.at, c.offerID)
	return err
}

// refuseCoupon says why a request may not use a coupon, or nil if it may.
func refuseCoupon(code string, c *couponState, customer string, at int64) error {
	switch {
	case c == nil:
		return reject(CodeNotFound, "Coupon %s is not known.", code)
	case c.redeemed:
		return reject(CodeCouponUsed, "Coupon %s was already redeemed at store %s on %s.", code, c.redeemedStore, fmtDay(c.redeemedAt))
	case c.expiresAt <= at:
		return reject(CodeCouponExpired, "Coupon %s expired on %s.", code, fmtDay(c.expiresAt))
	case customer != "" && c.customerID != customer:
		return reject(CodeCouponNotHers, "Coupon %s was issued to another customer.", code)
	}
	return nil
}

func fmtDay(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02") }

// PlaceOrder is an order taken for later fulfilment: endless aisle at a
// kiosk or counter, or a web or phone order. Request: it reserves stock at
// the location it ships from and is refused if that would take available
// stock below zero, or if a coupon it uses is unknown, used or expired.
type PlaceOrder struct {
	Order
}

func (*PlaceOrder) Type() string { return "place_order" }
func (*PlaceOrder) Class() Class { return Request }
func (b *PlaceOrder) Validate() error {
	var c checks
	b.check(&c)
	c.require(b.CustomerID != "", "an order for later fulfilment needs a customer")
	c.require(b.Fulfilment != CarryOut, "an order handed over at the till is a sale (record_sale)")
	c.require(b.FulfilFrom != "", "an order needs the location it ships from")
	return c.err()
}
func (b *PlaceOrder) apply(ctx context.Context, a *applier) error {
	skus, qty := b.qtyBySKU()
	for _, sku := range skus {
		avail, err := a.available(ctx, b.FulfilFrom, sku)
		if err != nil {
			return err
		}
		if avail < qty[sku] {
			return reject(CodeInsufficientStock, "Only %d of %s available at %s; %d ordered. The order was not placed.",
				max(avail, 0), sku, b.FulfilFrom, qty[sku])
		}
	}
	coupons := make([]*couponState, len(b.Coupons))
	for i, cu := range b.Coupons {
		c, err := a.coupon(ctx, cu.Code)
		if err != nil {
			return err
		}
		if err := refuseCoupon(cu.Code, c, b.CustomerID, a.at); err != nil {
			return err
		}
		coupons[i] = c
	}
	if err := b.insert(ctx, a, OrderReserved); err != nil {
		return err
	}
	for _, sku := range skus {
		if err := a.moveStock(ctx, b.FulfilFrom, sku, 0, qty[sku], false); err != nil {
			return err
		}
	}
	for i, cu := range b.Coupons {
		if err := a.put(ctx, tOrderCoupons, b.ID, cu.Code, cu.DiscountCents, "redeemed"); err != nil {
			return err
		}
		if err := a.redeem(ctx, cu.Code, coupons[i], b.StoreID, b.ID); err != nil {
			return err
		}
	}
	return nil
}

// RecordSale is goods handed over at a till. Fact: a stock count driven
// below zero is flagged; a coupon already redeemed elsewhere (two stores
// offline at once), expired, unknown or issued to someone else is recorded
// against the sale and flagged, and only its first redemption counts.
type RecordSale struct {
	Order
}

func (*RecordSale) Type() string { return "record_sale" }
func (*RecordSale) Class() Class { return Fact }
func (b *RecordSale) Validate() error {
	var c checks
	b.check(&c)
	c.require(b.Channel == ChannelStore || b.Channel == ChannelKiosk, "a till sale is in channel store or kiosk")
	c.require(b.Fulfilment == CarryOut, "a till sale is carry_out")
	c.require(b.StoreID != "", "a till sale names its store")
	c.require(b.FulfilFrom == "" || b.FulfilFrom == b.StoreID, "a till sale takes stock from its own store")
	return c.err()
}
func (b *RecordSale) apply(ctx context.Context, a *applier) error {
	o := b.Order
	o.FulfilFrom = b.StoreID
	if err := o.insert(ctx, a, OrderCompleted); err != nil {
		return err
	}
	skus, qty := b.qtyBySKU()
	for _, sku := range skus {
		if err := a.moveStock(ctx, b.StoreID, sku, -qty[sku], 0, true); err != nil {
			return err
		}
	}
	for _, cu := range b.Coupons {
		c, err := a.coupon(ctx, cu.Code)
		if err != nil {
			return err
		}
		entity := "coupon:" + cu.Code
		status := "redeemed"
		switch {
		case c == nil:
			status = "unknown"
			a.flag(ExUnknownCoupon, entity, cu.DiscountCents, "Sale %s took %s off with coupon %s, which the region does not know.",
				b.ID, cents(cu.DiscountCents), cu.Code)
		case c.redeemed:
			status = "duplicate"
			a.flag(ExDuplicateRedemption, entity, cu.DiscountCents,
				"Coupon %s was already redeemed at store %s on %s (order %s); sale %s at store %s took %s off with it again.",
				cu.Code, c.redeemedStore, fmtDay(c.redeemedAt), c.redeemedOrder, b.ID, b.StoreID, cents(cu.DiscountCents))
		case c.expiresAt <= a.at:
			status = "expired"
			a.flag(ExExpiredCoupon, entity, cu.DiscountCents, "Coupon %s expired on %s; sale %s took %s off with it.",
				cu.Code, fmtDay(c.expiresAt), b.ID, cents(cu.DiscountCents))
		case b.CustomerID != "" && c.customerID != b.CustomerID:
			// Used by someone it was not issued to: it counts, but people should know.
			a.flag(ExCouponNotHers, entity, cu.DiscountCents, "Coupon %s, issued to customer %s, was used by customer %s in sale %s.",
				cu.Code, c.customerID, b.CustomerID, b.ID)
		}
		if err := a.put(ctx, tOrderCoupons, b.ID, cu.Code, cu.DiscountCents, status); err != nil {
			return err
		}
		if status == "redeemed" {
			if err := a.redeem(ctx, cu.Code, c, b.StoreID, b.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func cents(c Cents) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// FulfilOrder records that a reserved order was shipped or picked up
// (stock leaves the location it was reserved at), or cancelled (the
// reservation is released). Fact: the parcel left, or the shopper changed
// her mind; a count below zero is flagged. An order that is not reserved
// is refused: there is nothing to fulfil.
type FulfilOrder struct {
	OrderID string      `json:"order_id"`
	Status  OrderStatus `json:"status"` // fulfilled or cancelled
}

func (*FulfilOrder) Type() string { return "fulfil_order" }
func (*FulfilOrder) Class() Class { return Fact }
func (b *FulfilOrder) Validate() error {
	var c checks
	c.require(b.OrderID != "", "order id is empty")
	c.require(b.Status == OrderFulfilled || b.Status == OrderCancelled, "status %q is not fulfilled or cancelled", b.Status)
	return c.err()
}
func (b *FulfilOrder) apply(ctx context.Context, a *applier) error {
	var status OrderStatus
	var from sql.NullString
	err := a.tx.queryRow(ctx, "SELECT status, fulfil_from FROM orders WHERE id = ?", b.OrderID).Scan(&status, &from)
	if errors.Is(err, sql.ErrNoRows) {
		return reject(CodeNotFound, "Unknown order %s.", b.OrderID)
	}
	if err != nil {
		return fmt.Errorf("look up order: %w", err)
	}
	if status != OrderReserved {
		return reject(CodeBadTransition, "Order %s is %s, not reserved; it cannot become %s.", b.OrderID, status, b.Status)
	}
	rows, err := a.tx.query(ctx, "SELECT sku, sum(qty) FROM order_lines WHERE order_id = ? GROUP BY sku ORDER BY sku", b.OrderID)
	if err != nil {
		return fmt.Errorf("order lines: %w", err)
	}
	type skuQty struct {
		sku string
		qty int64
	}
	var lines []skuQty
	for rows.Next() {
		var l skuQty
		if err := rows.Scan(&l.sku, &l.qty); err != nil {
			rows.Close()
			return fmt.Errorf("order lines: %w", err)
		}
		lines = append(lines, l)
	}
	rows.Close()
	for _, l := range lines {
		onHand := int64(0)
		if b.Status == OrderFulfilled {
			onHand = -l.qty
		}
		if err := a.moveStock(ctx, from.String, l.sku, onHand, -l.qty, true); err != nil {
			return err
		}
	}
	_, err = a.update(ctx, tOrders, "UPDATE orders SET status = ?, updated_at = ? WHERE id = ?", b.Status, a.at, b.OrderID)
	return err
}

// ReturnLine is one returned line. OrderLineNo ties it to the order's
// line (1-based); 0 for a return without an order.
type ReturnLine struct {
	OrderLineNo int64  `json:"order_line_no,omitempty"`
	SKU         string `json:"sku"`
	Qty         int64  `json:"qty"`
	RefundCents Cents  `json:"refund_cents"`
}

// ReturnItems is goods taken back and money refunded. Fact: it is applied
// whatever it breaks, and flagged when it refunds more than was paid (in
// all or with the refund's tender), returns more units than were bought
// minus those already returned, refunds to another tender than the
// original, comes after the return window, or (without an order) goes over
// the customer's cap of receipt-less returns. A manager's approval
// (ApprovedBy) clears the tender, window and cap rules; it cannot make an
// over-refund right.
type ReturnItems struct {
	ID          string       `json:"id"`
	OrderID     string       `json:"order_id,omitempty"` // empty: not tied to an order
	CustomerID  string       `json:"customer_id,omitempty"`
	StoreID     string       `json:"store_id"`
	ClerkID     string       `json:"clerk_id"`
	Reason      string       `json:"reason"`
	WithReceipt bool         `json:"with_receipt"`
	Lines       []ReturnLine `json:"lines"`
	Refund      Tender       `json:"refund"`
	ApprovedBy  string       `json:"approved_by,omitempty"` // a manager's clerk id
	Restock     bool         `json:"restock"`
}

func (*ReturnItems) Type() string { return "return_items" }
func (*ReturnItems) Class() Class { return Fact }
func (b *ReturnItems) Validate() error {
	var c checks
	c.require(b.ID != "", "return id is empty")
	c.require(b.StoreID != "", "return store is empty")
	c.require(b.ClerkID != "", "return clerk is empty")
	c.require(b.Reason != "", "return reason is empty")
	c.require(len(b.Lines) > 0, "nothing is returned")
	c.require(!b.WithReceipt || b.OrderID != "", "a return with a receipt names its order")
	var sum Cents
	for i, l := range b.Lines {
		c.require(l.SKU != "", "line %d has no sku", i+1)
		c.require(l.Qty > 0, "line %d quantity %d is not positive", i+1, l.Qty)
		c.require(l.RefundCents >= 0, "line %d refund is negative", i+1)
		if b.OrderID != "" {
			c.require(l.OrderLineNo > 0, "line %d does not say which order line it returns", i+1)
		} else {
			c.require(l.OrderLineNo == 0, "line %d names an order line but the return names no order", i+1)
		}
		sum += l.RefundCents
	}
	c.require(b.Refund.Kind.Valid(), "refund tender %q is unknown", b.Refund.Kind)
	c.require(b.Refund.AmountCents == sum, "refund %d is not the sum of the lines' refunds %d", b.Refund.AmountCents, sum)
	c.require(b.Refund.Kind != TenderCard || b.Refund.CardToken != "", "a refund to a card needs its card token")
	return c.err()
}

func (b *ReturnItems) apply(ctx context.Context, a *applier) error {
	if ok, err := a.exists(ctx, "SELECT 1 FROM returns WHERE id = ?", b.ID); err != nil {
		return fmt.Errorf("look up return: %w", err)
	} else if ok {
		return reject(CodeDuplicateID, "Return %s already exists.", b.ID)
	}
	if err := a.mustExist(ctx, "store", "stores", "id", b.StoreID); err != nil {
		return err
	}
	if b.CustomerID != "" {
		if err := a.mustExist(ctx, "customer", "customers", "id", b.CustomerID); err != nil {
			return err
		}
	}
	for _, l := range b.Lines {
		if err := a.mustExist(ctx, "product", "products", "sku", l.SKU); err != nil {
			return err
		}
	}
	approved, err := a.approval(ctx, b.ApprovedBy, "return "+b.ID)
	if err != nil {
		return err
	}
	if b.OrderID != "" {
		err = b.checkAgainstOrder(ctx, a, approved)
	} else {
		err = b.checkWithoutOrder(ctx, a, approved)
	}
	if err != nil {
		return err
	}
	if err := a.put(ctx, tReturns, b.ID, nullable(b.OrderID), nullable(b.CustomerID), b.StoreID, b.ClerkID, b.Reason,
		b.WithReceipt, b.Refund.Kind, b.Refund.AmountCents, b.Refund.CardToken, nullable(b.ApprovedBy), b.Restock,
		a.at, a.m.ID.String()); err != nil {
		return err
	}
	for i, l := range b.Lines {
		var orderLine any
		if l.OrderLineNo > 0 {
			orderLine = l.OrderLineNo
		}
		if err := a.put(ctx, tReturnLines, b.ID, i+1, orderLine, l.SKU, l.Qty, l.RefundCents); err != nil {
			return err
		}
		if b.Restock {
			if err := a.moveStock(ctx, b.StoreID, l.SKU, l.Qty, 0, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// approval reports whether approver is a clerk allowed to approve
// exceptions. An approval by anyone else is flagged and does not count.
func (a *applier) approval(ctx context.Context, approver, what string) (bool, error) {
	if approver == "" {
		return false, nil
	}
	var role Role
	var active bool
	err := a.tx.queryRow(ctx, "SELECT role, active FROM clerks WHERE id = ?", approver).Scan(&role, &active)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("look up approver: %w", err)
	}
	if err == nil && active && role.CanApprove() {
		return true, nil
	}
	a.flag(ExUnapprovedApprover, "clerk:"+approver, 0, "Clerk %s approved %s but is not an active manager; the approval does not count.", approver, what)
	return false, nil
}

func (b *ReturnItems) checkAgainstOrder(ctx context.Context, a *applier, approved bool) error {
	var total Cents
	var placedAt int64
	err := a.tx.queryRow(ctx, "SELECT total_cents, placed_at FROM orders WHERE id = ?", b.OrderID).Scan(&total, &placedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return reject(CodeNotFound, "Unknown order %s.", b.OrderID)
	}
	if err != nil {
		return fmt.Errorf("look up order: %w", err)
	}
	entity := "order:" + b.OrderID
	for _, l := range b.Lines {
		var sku string
		var bought int64
		err := a.tx.queryRow(ctx, "SELECT sku, qty FROM order_lines WHERE order_id = ? AND line_no = ?", b.OrderID, l.OrderLineNo).Scan(&sku, &bought)
		if errors.Is(err, sql.ErrNoRows) {
			return reject(CodeNotFound, "Order %s has no line %d.", b.OrderID, l.OrderLineNo)
		}
		if err != nil {
			return fmt.Errorf("look up order line: %w", err)
		}
		if sku != l.SKU {
			return invalid("Order %s line %d is %s, not %s.", b.OrderID, l.OrderLineNo, sku, l.SKU)
		}
		var already int64
		if err := a.tx.queryRow(ctx, `SELECT coalesce(sum(rl.qty), 0) FROM return_lines rl JOIN returns r ON r.id = rl.return_id
			WHERE r.order_id = ? AND rl.order_line_no = ?`, b.OrderID, l.OrderLineNo).Scan(&already); err != nil {
			return fmt.Errorf("returned units: %w", err)
		}
		if already+l.Qty > bought {
			a.flag(ExOverReturnUnits, entity, 0, "Order %s line %d: %d of %s returned now, %d before, but only %d bought.",
				b.OrderID, l.OrderLineNo, l.Qty, l.SKU, already, bought)
		}
	}
	var refunded Cents
	if err := a.tx.queryRow(ctx, "SELECT coalesce(sum(refund_cents), 0) FROM returns WHERE order_id = ?", b.OrderID).Scan(&refunded); err != nil {
		return fmt.Errorf("refunded so far: %w", err)
	}
	var paidWith, refundedTo Cents
	if err := a.tx.queryRow(ctx, "SELECT coalesce(sum(amount_cents), 0) FROM order_tenders WHERE order_id = ? AND kind = ? AND card_token = ?",
		b.OrderID, b.Refund.Kind, b.Refund.CardToken).Scan(&paidWith); err != nil {
		return fmt.Errorf("paid with tender: %w", err)
	}
	if err := a.tx.queryRow(ctx, "SELECT coalesce(sum(refund_cents), 0) FROM returns WHERE order_id = ? AND refund_kind = ? AND refund_card_token = ?",
		b.OrderID, b.Refund.Kind, b.Refund.CardToken).Scan(&refundedTo); err != nil {
		return fmt.Errorf("refunded to tender: %w", err)
	}
	amt := b.Refund.AmountCents
	switch {
	case refunded+amt > total:
		a.flag(ExOverRefund, entity, refunded+amt-total, "Order %s: %s refunded now and %s before, but only %s was paid.",
			b.OrderID, cents(amt), cents(refunded), cents(total))
	case paidWith == 0 && !approved:
		a.flag(ExTenderMismatch, entity, amt, "Order %s was not paid with %s; %s refunded to it without a manager's approval.",
			b.OrderID, tenderName(b.Refund), cents(amt))
	case paidWith > 0 && refundedTo+amt > paidWith:
		a.flag(ExOverRefund, entity, refundedTo+amt-paidWith, "Order %s: %s refunded to %s now and %s before, but only %s was paid with it.",
			b.OrderID, cents(amt), tenderName(b.Refund), cents(refundedTo), cents(paidWith))
	}
	window, err := a.setting(ctx, "return_window_days")
	if err != nil {
		return err
	}
	if a.at > placedAt+window*dayMillis && !approved {
		a.flag(ExPastReturnWindow, entity, amt, "Order %s was placed on %s, more than %d days ago; returned without a manager's approval.",
			b.OrderID, fmtDay(placedAt), window)
	}
	return nil
}

const dayMillis = 24 * 60 * 60 * 1000

func tenderName(t Tender) string {
	if t.CardToken != "" {
		return string(t.Kind) + " " + t.CardToken
	}
	return string(t.Kind)
}

func (b *ReturnItems) checkWithoutOrder(ctx context.Context, a *applier, approved bool) error {
	if approved {
		return nil
	}
	if b.Refund.Kind != TenderStoreCredit {
		a.flag(ExTenderMismatch, "return:"+b.ID, b.Refund.AmountCents,
			"Return %s is tied to no order, so it is refunded as store credit; %s went to %s without a manager's approval.",
			b.ID, cents(b.Refund.AmountCents), tenderName(b.Refund))
	}
	if b.CustomerID == "" {
		return nil
	}
	limit, err := a.setting(ctx, "receiptless_cap_count")
	if err != nil {
		return err
	}
	days, err := a.setting(ctx, "receiptless_cap_days")
	if err != nil {
		return err
	}
	var n int64
	if err := a.tx.queryRow(ctx, "SELECT count(*) FROM returns WHERE customer_id = ? AND order_id IS NULL AND returned_at > ?",
		b.CustomerID, a.at-days*dayMillis).Scan(&n); err != nil {
		return fmt.Errorf("receipt-less returns: %w", err)
	}
	if n+1 > limit {
		a.flag(ExReceiptlessCap, "customer:"+b.CustomerID, b.Refund.AmountCents,
			"Customer %s has made %d returns without an order in %d days, over the cap of %d, without a manager's approval.",
			b.CustomerID, n+1, days, limit)
	}
	return nil
}
