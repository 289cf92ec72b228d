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

// insert writes the order, its lines and tenders, rejecting it if it
// names anything that does not exist (or an order that does).
//
// It writes first and looks later: the order's primary key and its
// foreign keys (customer, stores, products; foreign keys are on in every
// DB) refuse what the look-ups would, and a statement that fails writes
// nothing. Only then do the look-ups run, in the order they always
// have, to say what was wrong in words a clerk reads; Apply's savepoint
// takes off whatever the order had written before.
func (o *Order) insert(ctx context.Context, a *applier, status OrderStatus) error {
	wrote, err := o.write(ctx, a, status)
	if err == nil {
		return nil
	}
	if rej := o.explain(ctx, a, !wrote); rej != nil {
		return rej
	}
	return err
}

// write inserts the order, then its lines and tenders; wrote says whether
// the order's own row went in (so its id was new).
func (o *Order) write(ctx context.Context, a *applier, status OrderStatus) (wrote bool, err error) {
	var expected any
	if o.ExpectedAt != nil {
		expected = o.ExpectedAt.UnixMilli()
	}
	sub, disc, total := o.Totals()
	if err := a.insert(ctx, tOrders, []any{o.ID, nullable(o.CustomerID), string(o.Channel), nullable(o.StoreID), nullable(o.ClerkID),
		string(status), string(o.Fulfilment), nullable(o.FulfilFrom), nullable(o.PickupStore), o.ShipAddress, expected,
		sub, disc, total, a.at, a.at, a.id}); err != nil {
		return false, err
	}
	rows := make([]any, 0, len(tOrderLines.cols)*len(o.Lines))
	for i, l := range o.Lines {
		rows = append(rows, o.ID, int64(i+1), l.SKU, l.Qty, l.UnitPriceCents, l.DiscountCents)
	}
	if err := a.insert(ctx, tOrderLines, rows); err != nil {
		return true, err
	}
	rows = make([]any, 0, len(tOrderTenders.cols)*len(o.Tenders))
	for i, t := range o.Tenders {
		rows = append(rows, o.ID, int64(i+1), string(t.Kind), t.AmountCents, t.CardToken)
	}
	return true, a.insert(ctx, tOrderTenders, rows)
}

// explain runs the checks the order's insert stands for and returns the
// first rejection, or nil if it finds nothing wrong. checkID: the order's
// id may be taken (write did not get the order's row in); otherwise the
// row with the id is the one write just made.
func (o *Order) explain(ctx context.Context, a *applier, checkID bool) error {
	if checkID {
		if ok, err := a.exists(ctx, "SELECT 1 FROM orders WHERE id = ?", o.ID); err != nil {
			return fmt.Errorf("look up order: %w", err)
		} else if ok {
			return reject(CodeDuplicateID, "Order %s already exists.", o.ID)
		}
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
	return a.productsExist(ctx, skus)
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
	if err := a.checkStoreCredit(ctx, &b.Order, Request); err != nil {
		return err
	}
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
	if err := a.checkStoreCredit(ctx, &b.Order, Fact); err != nil {
		return err
	}
	o := b.Order
	o.FulfilFrom = b.StoreID
	if err := o.insert(ctx, a, OrderCompleted); err != nil {
		return err
	}
	skus, qty := b.qtyBySKU()
	taken := make([]int64, len(skus))
	for i, sku := range skus {
		taken[i] = -qty[sku]
	}
	if err := a.moveStocks(ctx, b.StoreID, skus, taken, 0, true); err != nil {
		return err
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
