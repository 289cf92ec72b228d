package devices

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Receipt templates. Each takes a plain struct the edge fills from its
// own records (devices imports nothing of Endcap's) and lays it out for a
// Layout as an ESC/POS stream: ESCPOS returns the bytes, Job wraps them in
// a print Job with an id that makes the receipt print once.

// Money is an amount in minor units (cents). It prints with two decimals.
type Money int64

func (m Money) String() string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s%d.%02d", sign, m/100, m%100)
}

// Store is the header of every receipt.
type Store struct {
	// Name prints large at the top ("Endcap Springfield").
	Name string
	// Lines follow it: address, phone, VAT number.
	Lines []string
	// Register is the till or kiosk the receipt came from ("Till 2").
	Register string
}

// Item is one line of a sale or an order.
type Item struct {
	SKU         string
	Description string
	Qty         int   // zero means 1
	UnitPrice   Money // price of one
	// Discount (positive) taken off this line, with its label
	// ("Promo 10%"); zero for none.
	Discount      Money
	DiscountLabel string
}

// Amount is Qty × UnitPrice − Discount.
func (it Item) Amount() Money { return Money(it.qty())*it.UnitPrice - it.Discount }

func (it Item) qty() int {
	if it.Qty == 0 {
		return 1
	}
	return it.Qty
}

// Adjustment is an order-level line: a coupon (negative), a fee.
type Adjustment struct {
	Label  string
	Amount Money
}

// Payment is one tender: what was paid (or refunded) how.
type Payment struct {
	// Method as printed: "Card", "Cash", "Gift card", "Store credit".
	Method string
	// Detail: "VISA ****1234", an authorisation code; may be empty.
	Detail string
	Amount Money
}

// Tax is the tax line: Label ("VAT 20%"), Amount, and whether it is
// included in the prices (a European receipt) or added to them.
type Tax struct {
	Label    string
	Amount   Money
	Included bool
}

// SaleReceipt is the receipt of a sale at a till.
type SaleReceipt struct {
	Store    Store
	OrderID  string // printed, and as a Code128 barcode for returns
	Time     time.Time
	Clerk    string
	Customer string // name and masked card, "Jane D. (LC*****7897)"; empty for none
	Items    []Item
	// Adjustments after the items: coupons, fees.
	Adjustments []Adjustment
	Tax         Tax
	Total       Money
	Currency    string // "EUR"
	Payments    []Payment
	Change      Money    // cash handed back; zero prints nothing
	Footer      []string // thanks, return window, survey link
}

// ReturnReceipt is the receipt of a return (with or without the original
// receipt: the order is in the replica).
type ReturnReceipt struct {
	Store           Store
	ReturnID        string // printed, and as a Code128 barcode
	OriginalOrderID string
	OriginalTime    time.Time // of the original order; zero prints nothing
	Time            time.Time
	Clerk           string
	Customer        string
	Lines           []ReturnLine
	// Refunds are the refund tenders (back to the card, cash, store credit).
	Refunds     []Payment
	RefundTotal Money
	Currency    string
	// Policy is the return policy text, wrapped to the paper.
	Policy string
}

// ReturnLine is one line returned.
type ReturnLine struct {
	SKU         string
	Description string
	Qty         int   // zero means 1
	Amount      Money // refunded for this line (positive)
	Reason      string
}

// Fulfilment is how an endless-aisle order reaches the shopper.
type Fulfilment int

// Fulfilments.
const (
	ShipToHome Fulfilment = iota + 1
	StorePickup
)

// OrderReceipt is the slip of an endless-aisle order: an item this store
// did not have, shipped to the shopper's home or to a store for pickup.
type OrderReceipt struct {
	Store      Store
	OrderID    string // printed, and as a QR code and a Code128 barcode
	Time       time.Time
	Clerk      string
	Customer   string
	Items      []Item
	Fulfilment Fulfilment
	// ShipTo is the delivery address (ShipToHome), one line each.
	ShipTo []string
	// PickupStore is the pickup store's name and address (StorePickup).
	PickupStore []string
	// Expected is the expected delivery date, or when the order is ready
	// for pickup.
	Expected time.Time
	Shipping Money
	Tax      Tax
	Total    Money
	Currency string
	Payments []Payment
	Footer   []string
}

// CouponSlip is one coupon, printed with its code as a barcode so the
// till can scan it.
type CouponSlip struct {
	Store       Store
	Code        string // "CPN-..." (see CouponPrefix): printed and as Code128
	Title       string // "10% off kitchenware"
	Description string
	Customer    string
	ValidUntil  time.Time // zero prints nothing
	Terms       string
}

const (
	dateFormat     = "2006-01-02"
	dateTimeFormat = "2006-01-02 15:04"
)

// receipt is the builder with the layout's width and helpers for the
// parts every receipt shares.
type receipt struct {
	*Builder
	cols int
}

func newReceipt(l Layout) *receipt {
	l = l.withDefaults()
	b := NewBuilder().Init(l.codePage())
	return &receipt{Builder: b, cols: l.Columns}
}

func (r *receipt) header(s Store) {
	r.Align(AlignCenter)
	if s.Name != "" {
		r.Bold(true).Size(2, 2)
		for _, l := range wrap(s.Name, r.cols/2) {
			r.Line(l)
		}
		r.Size(1, 1).Bold(false)
	}
	for _, l := range s.Lines {
		for _, w := range wrap(l, r.cols) {
			r.Line(w)
		}
	}
	r.Align(AlignLeft)
}

// title prints a word large and centred: SALE, RETURN, ORDER.
func (r *receipt) title(s string) {
	r.Align(AlignCenter).Bold(true).Size(2, 1).Line(fit(s, r.cols/2)).Size(1, 1).Bold(false).Align(AlignLeft)
}

func (r *receipt) rule(c string) { r.Line(strings.Repeat(c, r.cols)) }

// cols2 prints left and right on one line; a left too long for it wraps,
// with right on its last line.
func (r *receipt) cols2(left, right string) {
	if textWidth(left)+1+textWidth(right) <= r.cols {
		r.Line(twoColumns(left, right, r.cols))
		return
	}
	lines := wrap(left, max(1, r.cols-textWidth(right)-1))
	for _, l := range lines[:len(lines)-1] {
		r.Line(l)
	}
	r.Line(twoColumns(lines[len(lines)-1], right, r.cols))
}

func (r *receipt) wrapped(text string, a Align) {
	r.Align(a)
	for _, l := range wrap(text, r.cols) {
		r.Line(l)
	}
	r.Align(AlignLeft)
}

func (r *receipt) items(items []Item) {
	for _, it := range items {
		r.cols2(it.Description, (Money(it.qty()) * it.UnitPrice).String())
		var detail []string
		if it.SKU != "" {
			detail = append(detail, it.SKU)
		}
		if it.qty() != 1 {
			detail = append(detail, fmt.Sprintf("%d x %s", it.qty(), it.UnitPrice))
		}
		if len(detail) > 0 {
			r.Line(fit("  "+strings.Join(detail, "  "), r.cols))
		}
		if it.Discount != 0 {
			label := it.DiscountLabel
			if label == "" {
				label = "Discount"
			}
			r.cols2("  "+label, (-it.Discount).String())
		}
	}
}

func (r *receipt) payments(ps []Payment) {
	for _, p := range ps {
		label := p.Method
		if p.Detail != "" {
			label += " " + p.Detail
		}
		r.cols2(label, p.Amount.String())
	}
}

func (r *receipt) tax(t Tax) {
	if t.Label == "" && t.Amount == 0 {
		return
	}
	label := t.Label
	if label == "" {
		label = "Tax"
	}
	if t.Included {
		label += " (included)"
	}
	r.cols2(label, t.Amount.String())
}

func (r *receipt) total(label, currency string, m Money) {
	if currency != "" {
		label += " " + currency
	}
	r.Bold(true).Size(1, 2)
	r.cols2(label, m.String())
	r.Size(1, 1).Bold(false)
}

// barcode prints data as a Code128 barcode when it fits the paper at the
// narrowest module ESC/POS allows (2 dots: a Code128 character is 11
// modules, with start, check and the 13-module stop on top; Font A is 12
// dots a column), and as a QR code when it does not: a UUID order id as
// Code128 would run off an 80 mm roll.
func (r *receipt) barcode(data string) {
	if ((len(data)+2)*11+13)*2 > r.cols*12 {
		r.Feed(1).Align(AlignCenter).QR(data, 4, QRLevelM).Line(data).Align(AlignLeft)
		return
	}
	r.Feed(1).Align(AlignCenter).Code128(data, BarcodeOptions{Height: 60, Width: 2, HRI: HRIBelow}).Align(AlignLeft)
}

func (r *receipt) end() ([]byte, error) {
	r.Feed(2).Cut(CutPartial, 0)
	return r.Bytes()
}

func (r *receipt) who(clerk, customer string) {
	if clerk != "" {
		r.Line(fit("Clerk: "+clerk, r.cols))
	}
	if customer != "" {
		r.Line(fit("Customer: "+customer, r.cols))
	}
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(dateTimeFormat)
}

// ESCPOS lays the sale receipt out.
func (s SaleReceipt) ESCPOS(l Layout) ([]byte, error) {
	if s.OrderID == "" {
		return nil, errors.New("sale receipt: no order id")
	}
	r := newReceipt(l)
	r.header(s.Store)
	r.rule("-")
	r.cols2("Receipt "+s.OrderID, when(s.Time))
	if s.Store.Register != "" {
		r.Line(fit(s.Store.Register, r.cols))
	}
	r.who(s.Clerk, s.Customer)
	r.rule("-")
	r.items(s.Items)
	r.rule("-")
	var sub Money
	for _, it := range s.Items {
		sub += it.Amount()
	}
	r.cols2("Subtotal", sub.String())
	for _, a := range s.Adjustments {
		r.cols2(a.Label, a.Amount.String())
	}
	r.tax(s.Tax)
	r.total("TOTAL", s.Currency, s.Total)
	r.rule("-")
	r.payments(s.Payments)
	if s.Change != 0 {
		r.cols2("Change", s.Change.String())
	}
	if len(s.Footer) > 0 {
		r.rule("-")
		for _, f := range s.Footer {
			r.wrapped(f, AlignCenter)
		}
	}
	r.barcode(s.OrderID)
	return r.end()
}

// Job returns the sale receipt as a print job, id "sale-<OrderID>".
func (s SaleReceipt) Job(l Layout) (Job, error) {
	data, err := s.ESCPOS(l)
	return Job{ID: jobID("sale", s.OrderID), Title: "Sale " + s.OrderID, Data: data}, err
}

// ESCPOS lays the return receipt out.
func (rt ReturnReceipt) ESCPOS(l Layout) ([]byte, error) {
	if rt.ReturnID == "" {
		return nil, errors.New("return receipt: no return id")
	}
	r := newReceipt(l)
	r.header(rt.Store)
	r.title("RETURN")
	r.rule("-")
	r.cols2("Return "+rt.ReturnID, when(rt.Time))
	if rt.OriginalOrderID != "" {
		r.cols2("Original order "+rt.OriginalOrderID, when(rt.OriginalTime))
	}
	if rt.Store.Register != "" {
		r.Line(fit(rt.Store.Register, r.cols))
	}
	r.who(rt.Clerk, rt.Customer)
	r.rule("-")
	r.Line("Returned:")
	for _, ln := range rt.Lines {
		q := ln.Qty
		if q == 0 {
			q = 1
		}
		r.cols2(fmt.Sprintf("%d x %s", q, ln.Description), (-ln.Amount).String())
		if ln.SKU != "" {
			r.Line(fit("  "+ln.SKU, r.cols))
		}
		if ln.Reason != "" {
			r.Line(fit("  Reason: "+ln.Reason, r.cols))
		}
	}
	r.rule("-")
	r.total("REFUND", rt.Currency, rt.RefundTotal)
	r.Line("Refunded to:")
	r.payments(rt.Refunds)
	if rt.Policy != "" {
		r.rule("-")
		r.Bold(true).Line("Return policy").Bold(false)
		r.wrapped(rt.Policy, AlignLeft)
	}
	r.barcode(rt.ReturnID)
	return r.end()
}

// Job returns the return receipt as a print job, id "return-<ReturnID>".
func (rt ReturnReceipt) Job(l Layout) (Job, error) {
	data, err := rt.ESCPOS(l)
	return Job{ID: jobID("return", rt.ReturnID), Title: "Return " + rt.ReturnID, Data: data}, err
}

// ESCPOS lays the order slip out.
func (o OrderReceipt) ESCPOS(l Layout) ([]byte, error) {
	if o.OrderID == "" {
		return nil, errors.New("order receipt: no order id")
	}
	if o.Fulfilment != ShipToHome && o.Fulfilment != StorePickup {
		return nil, fmt.Errorf("order receipt %s: unknown fulfilment %d", o.OrderID, o.Fulfilment)
	}
	r := newReceipt(l)
	r.header(o.Store)
	r.title("ORDER")
	r.rule("-")
	r.cols2("Order "+o.OrderID, when(o.Time))
	r.who(o.Clerk, o.Customer)
	r.rule("-")
	r.items(o.Items)
	r.rule("-")
	var sub Money
	for _, it := range o.Items {
		sub += it.Amount()
	}
	r.cols2("Subtotal", sub.String())
	if o.Shipping != 0 || o.Fulfilment == ShipToHome {
		r.cols2("Shipping", o.Shipping.String())
	}
	r.tax(o.Tax)
	r.total("TOTAL", o.Currency, o.Total)
	r.payments(o.Payments)
	r.rule("=")
	switch o.Fulfilment {
	case ShipToHome:
		r.Bold(true).Line("SHIP TO HOME").Bold(false)
		for _, a := range o.ShipTo {
			r.Line(fit("  "+a, r.cols))
		}
		if !o.Expected.IsZero() {
			r.Line("Expected delivery: " + o.Expected.Format("Mon "+dateFormat))
		}
	case StorePickup:
		r.Bold(true).Line("PICK UP IN STORE").Bold(false)
		for _, a := range o.PickupStore {
			r.Line(fit("  "+a, r.cols))
		}
		if !o.Expected.IsZero() {
			r.Line("Ready for pickup: " + o.Expected.Format("Mon "+dateFormat))
		}
		r.Line("Bring this slip or your loyalty card.")
	}
	r.rule("=")
	for _, f := range o.Footer {
		r.wrapped(f, AlignCenter)
	}
	r.Feed(1).Align(AlignCenter).QR(o.OrderID, 6, QRLevelM).Align(AlignLeft)
	r.barcode(o.OrderID)
	return r.end()
}

// Job returns the order slip as a print job, id "order-<OrderID>".
func (o OrderReceipt) Job(l Layout) (Job, error) {
	data, err := o.ESCPOS(l)
	return Job{ID: jobID("order", o.OrderID), Title: "Order " + o.OrderID, Data: data}, err
}

// ESCPOS lays the coupon out.
func (c CouponSlip) ESCPOS(l Layout) ([]byte, error) {
	r := newReceipt(l)
	if err := c.lay(r); err != nil {
		return nil, err
	}
	return r.Bytes()
}

func (c CouponSlip) lay(r *receipt) error {
	if k, err := Classify(c.Code); k != KindCoupon || err != nil {
		return fmt.Errorf("coupon slip: code %q is not a coupon code (%v)", c.Code, err)
	}
	r.header(c.Store)
	r.Feed(1)
	r.Align(AlignCenter).Reverse(true).Bold(true).Size(2, 2).Line(" COUPON ").Size(1, 1).Bold(false).Reverse(false)
	r.Feed(1)
	if c.Title != "" {
		r.Bold(true)
		r.wrapped(c.Title, AlignCenter)
		r.Bold(false)
	}
	if c.Description != "" {
		r.wrapped(c.Description, AlignCenter)
	}
	if c.Customer != "" {
		r.wrapped("For "+c.Customer, AlignCenter)
	}
	if !c.ValidUntil.IsZero() {
		r.wrapped("Valid until "+c.ValidUntil.Format(dateFormat), AlignCenter)
	}
	r.barcode(c.Code)
	if c.Terms != "" {
		r.rule("-")
		r.wrapped(c.Terms, AlignLeft)
	}
	r.Feed(2).Cut(CutPartial, 0)
	return nil
}

// CouponsJob prints coupons one after the other, each on its own slip
// (a partial cut between them), as one job with id "coupons-<id>" (id is
// the visit or issue the coupons came from).
func CouponsJob(l Layout, id string, coupons []CouponSlip) (Job, error) {
	if len(coupons) == 0 {
		return Job{}, errors.New("coupons: none to print")
	}
	r := newReceipt(l)
	for _, c := range coupons {
		if err := c.lay(r); err != nil {
			return Job{}, err
		}
	}
	data, err := r.Bytes()
	title := fmt.Sprintf("%d coupons", len(coupons))
	if len(coupons) == 1 {
		title = "Coupon " + coupons[0].Code
	}
	return Job{ID: jobID("coupons", id), Title: title, Data: data}, err
}

// jobID makes a queue-safe id from a kind and a record id: characters the
// queue does not allow in ids become '_'.
func jobID(kind, id string) string {
	b := []byte(kind + "-" + id)
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}
