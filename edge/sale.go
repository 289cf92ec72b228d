package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/endcap/endcap/retail"
)

// A sale at the clerk counter: scanned items, the shopper's coupons and
// the tenders, checked here against the replica and recorded as one
// retail.RecordSale (a fact: the goods leave with the shopper), which the
// hub gets through the outbox.

// ErrCouponNotApplicable refuses a genuine coupon that does not apply to
// this basket: free shipping at a till, a discount on a later purchase, a
// minimum order not reached, a product not in the basket.
var ErrCouponNotApplicable = &Error{Code: "coupon_not_applicable", Status: http.StatusUnprocessableEntity}

// SaleRequest is a basket at the till.
type SaleRequest struct {
	ClerkID    string `json:"clerk_id"`              // the signed-in clerk ringing the sale
	CustomerID string `json:"customer_id,omitempty"` // the signed-in shopper; needed for coupons
	// Lines as scanned or keyed; the same product twice is one line.
	Lines []ItemLine `json:"lines"`
	// Coupons are codes the shopper presents (CPN-…); each is checked
	// with CheckCoupon and its discount computed from its promotion.
	Coupons []string `json:"coupons,omitempty"`
	// Tenders must pay the total exactly: cash, or card with the payment
	// processor's card token.
	Tenders []retail.Tender `json:"tenders"`
}

// ItemLine is a product by barcode (as scanned) or SKU (as keyed), and a
// quantity: 0 means 1 (one scan).
type ItemLine struct {
	Barcode string `json:"barcode,omitempty"`
	SKU     string `json:"sku,omitempty"`
	Qty     int64  `json:"qty,omitempty"`
}

// SaleResult is a recorded sale.
type SaleResult struct {
	OrderID       string        `json:"order_id"`
	Status        retail.Status `json:"status"` // accepted, or flagged (see Exceptions)
	SubtotalCents retail.Cents  `json:"subtotal_cents"`
	DiscountCents retail.Cents  `json:"discount_cents"`
	TotalCents    retail.Cents  `json:"total_cents"`
	// Exceptions the local rules raised: a stock count driven below zero,
	// or a coupon signed by another store that the replica has not seen
	// yet (the hub decides; see docs/api.md).
	Exceptions []retail.Exception `json:"exceptions,omitempty"`
	Receipt    Receipt            `json:"receipt"`
}

// Receipt is what a sale, a return or an endless-aisle order prints:
// plain fields that the edge turns into a devices receipt (SaleReceipt,
// ReturnReceipt, OrderReceipt). Amounts are cents.
type Receipt struct {
	Kind         string    `json:"kind"` // sale, return, order
	ID           string    `json:"id"`   // the order or return id, printed as a barcode
	StoreID      string    `json:"store_id"`
	StoreName    string    `json:"store_name"`
	Time         time.Time `json:"time"`
	ClerkID      string    `json:"clerk_id,omitempty"`
	CustomerID   string    `json:"customer_id,omitempty"`
	CustomerName string    `json:"customer_name,omitempty"`
	// Lines sold, ordered or returned (for a return, AmountCents is the
	// refund for the line).
	Lines         []ReceiptLine   `json:"lines"`
	Coupons       []ReceiptCoupon `json:"coupons,omitempty"`
	SubtotalCents retail.Cents    `json:"subtotal_cents"`
	DiscountCents retail.Cents    `json:"discount_cents"`
	TotalCents    retail.Cents    `json:"total_cents"` // for a return: the refund
	// Tenders paid with, or for a return the refund tender.
	Tenders []ReceiptTender `json:"tenders"`
	// A return's original order (empty for one without an order).
	OriginalOrderID string `json:"original_order_id,omitempty"`
	// An endless-aisle order's fulfilment, address or pickup store, and
	// when it is expected.
	Fulfilment  retail.Fulfilment `json:"fulfilment,omitempty"`
	ShipAddress string            `json:"ship_address,omitempty"`
	PickupStore string            `json:"pickup_store,omitempty"`
	ExpectedAt  *time.Time        `json:"expected_at,omitempty"`
	// Policy is the return policy (printed on every receipt); Notes are
	// further lines to print (how an order is confirmed).
	Policy string   `json:"policy,omitempty"`
	Notes  []string `json:"notes,omitempty"`
	// Print says what became of printing it at this store's printer:
	// "queued", "no printer", or why it could not be queued.
	Print string `json:"print,omitempty"`
}

// ReceiptLine is one printed line.
type ReceiptLine struct {
	SKU            string       `json:"sku"`
	Name           string       `json:"name"`
	Qty            int64        `json:"qty"`
	UnitPriceCents retail.Cents `json:"unit_price_cents"`
	AmountCents    retail.Cents `json:"amount_cents"`
}

// ReceiptCoupon is a coupon and what it took off.
type ReceiptCoupon struct {
	Code          string       `json:"code"`
	Name          string       `json:"name"` // the promotion's name
	DiscountCents retail.Cents `json:"discount_cents"`
}

// ReceiptTender is a payment or refund. Card is "****" and the card
// token's last four characters, enough for the shopper to recognise it;
// the token itself is not printed.
type ReceiptTender struct {
	Kind        retail.TenderKind `json:"kind"`
	AmountCents retail.Cents      `json:"amount_cents"`
	Card        string            `json:"card,omitempty"`
}

func receiptTender(t retail.Tender) ReceiptTender {
	rt := ReceiptTender{Kind: t.Kind, AmountCents: t.AmountCents}
	if t.CardToken != "" {
		rt.Card = "****" + t.CardToken[max(len(t.CardToken)-4, 0):]
	}
	return rt
}

// Sale records a sale at this store's till. It refuses, writing nothing:
// an unknown clerk, customer or product (ErrUnknownClerk,
// ErrUnknownCustomer, ErrUnknownProduct), an empty basket
// (ErrEmptyBasket), a coupon CheckCoupon refuses (forged, expired, used,
// someone else's) or one that does not apply to the basket
// (ErrCouponNotApplicable), tenders that do not pay the total exactly or
// lack their token (ErrInvalid, with the amounts), and more store credit
// than the shopper has (ErrNoCredit).
//
// The discounts travel on the sale's coupons (retail.CouponUse), so a
// coupon used twice while stores were offline is flagged with its amount;
// recording the sale also marks each coupon redeemed and its offer's
// outcome redeemed with this order, in the same mutation.
func (s *Store) Sale(ctx context.Context, req SaleRequest) (SaleResult, error) {
	if err := ctx.Err(); err != nil {
		return SaleResult{}, err
	}
	if req.ClerkID == "" {
		return SaleResult{}, refuse(ErrInvalid, "A sale needs the clerk who rings it: sign in first.")
	}
	if len(req.Lines) == 0 {
		return SaleResult{}, refuse(ErrEmptyBasket, "Nothing is scanned yet: scan an item or key its SKU in.")
	}
	var hdr receiptHeader
	err := s.query(func(db *retail.DB) error {
		var err error
		hdr, err = s.header(ctx, db, req.ClerkID, req.CustomerID)
		return err
	})
	if err != nil {
		return SaleResult{}, err
	}
	lines, err := s.priceLines(ctx, req.Lines)
	if err != nil {
		return SaleResult{}, err
	}
	coupons, err := s.couponDiscounts(ctx, req.CustomerID, req.Coupons, lines)
	if err != nil {
		return SaleResult{}, err
	}
	o := retail.Order{ID: newID(), CustomerID: req.CustomerID, Channel: retail.ChannelStore, StoreID: s.id, ClerkID: req.ClerkID,
		Fulfilment: retail.CarryOut, FulfilFrom: s.id}
	for _, l := range lines {
		o.Lines = append(o.Lines, retail.Line{SKU: l.sku, Qty: l.qty, UnitPriceCents: l.price})
	}
	for _, c := range coupons {
		o.Coupons = append(o.Coupons, retail.CouponUse{Code: c.Code, DiscountCents: c.DiscountCents})
	}
	sub, disc, total := o.Totals()
	if err := checkTenders(req.Tenders, total); err != nil {
		return SaleResult{}, err
	}
	o.Tenders = req.Tenders
	if err := s.checkStoreCredit(ctx, req.CustomerID, o.Tenders); err != nil {
		return SaleResult{}, err
	}
	res, err := s.write(ctx, retail.Actor{Kind: "clerk", ID: req.ClerkID}, &retail.RecordSale{Order: o})
	if err != nil {
		return SaleResult{}, err
	}
	rc := hdr.receipt("sale", o.ID, s.now())
	rc.Lines = receiptLines(lines)
	rc.Coupons = coupons
	rc.SubtotalCents, rc.DiscountCents, rc.TotalCents = sub, disc, total
	for _, t := range o.Tenders {
		rc.Tenders = append(rc.Tenders, receiptTender(t))
	}
	rc.Policy = hdr.policy
	return SaleResult{OrderID: o.ID, Status: res.Status, SubtotalCents: sub, DiscountCents: disc, TotalCents: total,
		Exceptions: res.Exceptions, Receipt: rc}, nil
}

// checkTenders refuses tenders this till does not take (cash; card or
// gift card, each with the payment processor's token; store credit),
// negative ones, and tenders that do not add up to total.
func checkTenders(ts []retail.Tender, total retail.Cents) error {
	var paid retail.Cents
	for i, t := range ts {
		tokenised := t.Kind == retail.TenderCard || t.Kind == retail.TenderGiftCard
		switch {
		case !t.Kind.Valid():
			return refuse(ErrInvalid, "Tender %d is %q: this till takes cash, card, gift card or store credit.", i+1, t.Kind)
		case tokenised && t.CardToken == "":
			return refuse(ErrInvalid, "Tender %d is a %s without its token: run it through the terminal.", i+1, tenderLabel(t.Kind, ""))
		case !tokenised && t.CardToken != "":
			return refuse(ErrInvalid, "Tender %d is %s but carries a card token.", i+1, tenderLabel(t.Kind, ""))
		case t.AmountCents < 0:
			return refuse(ErrInvalid, "Tender %d is negative (%s).", i+1, fmtMoney(t.AmountCents))
		}
		paid += t.AmountCents
	}
	if paid != total {
		return refuse(ErrInvalid, "The tenders pay %s but the total is %s: they must pay it exactly.", fmtMoney(paid), fmtMoney(total))
	}
	return nil
}

// checkStoreCredit refuses store credit without a signed-in shopper, or
// more of it than her balance on this replica (ErrNoCredit). A gift card
// is checked by its processor, like a card, before its token gets here.
func (s *Store) checkStoreCredit(ctx context.Context, customer string, ts []retail.Tender) error {
	var spend retail.Cents
	for _, t := range ts {
		if t.Kind == retail.TenderStoreCredit {
			spend += t.AmountCents
		}
	}
	if spend == 0 {
		return nil
	}
	if customer == "" {
		return refuse(ErrInvalid, "Store credit belongs to a shopper: sign her in to pay with it.")
	}
	var bal retail.Cents
	err := s.query(func(db *retail.DB) error {
		var err error
		bal, err = retail.StoreCreditBalance(ctx, db, customer)
		return err
	})
	if err != nil {
		return err
	}
	if spend > bal {
		return refuse(ErrNoCredit, "She has %s of store credit; %s cannot be paid with it.", fmtMoney(max(bal, 0)), fmtMoney(spend))
	}
	return nil
}

// pricedLine is a basket line with its product.
type pricedLine struct {
	sku, name, category string
	qty                 int64
	price               retail.Cents
}

func (l pricedLine) amount() retail.Cents { return l.qty * l.price }

func receiptLines(ls []pricedLine) []ReceiptLine {
	out := make([]ReceiptLine, len(ls))
	for i, l := range ls {
		out[i] = ReceiptLine{SKU: l.sku, Name: l.name, Qty: l.qty, UnitPriceCents: l.price, AmountCents: l.amount()}
	}
	return out
}

// priceLines finds each line's product (by barcode or SKU) at its current
// price and merges lines of the same product, in the order first given.
func (s *Store) priceLines(ctx context.Context, in []ItemLine) ([]pricedLine, error) {
	var out []pricedLine
	at := map[string]int{}
	err := s.query(func(db *retail.DB) error {
		for i, l := range in {
			if l.Qty < 0 {
				return refuse(ErrInvalid, "Line %d has a negative quantity (%d).", i+1, l.Qty)
			}
			qty := max(l.Qty, 1)
			p, err := findProduct(ctx, db, l.Barcode, l.SKU)
			if err != nil {
				return err
			}
			if j, ok := at[p.sku]; ok {
				out[j].qty += qty
				continue
			}
			p.qty = qty
			at[p.sku] = len(out)
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// findProduct looks a product up by barcode, or by SKU without one.
func findProduct(ctx context.Context, db *retail.DB, barcode, sku string) (pricedLine, error) {
	var p pricedLine
	var err error
	switch {
	case barcode != "":
		err = db.QueryRowContext(ctx, `SELECT p.sku, p.name, p.category, p.price_cents FROM product_barcodes b
		  JOIN products p ON p.sku = b.sku WHERE b.barcode = ?`, barcode).Scan(&p.sku, &p.name, &p.category, &p.price)
		if errors.Is(err, sql.ErrNoRows) {
			return p, refuse(ErrUnknownProduct, "No product with barcode %s; key the SKU in or call a manager.", barcode)
		}
	case sku != "":
		err = db.QueryRowContext(ctx, "SELECT sku, name, category, price_cents FROM products WHERE sku = ?", sku).
			Scan(&p.sku, &p.name, &p.category, &p.price)
		if errors.Is(err, sql.ErrNoRows) {
			return p, refuse(ErrUnknownProduct, "No product with SKU %s in this region; check the label or call a manager.", sku)
		}
	default:
		return p, refuse(ErrInvalid, "A line has neither a barcode nor a SKU.")
	}
	if err != nil {
		return p, fmt.Errorf("look up product: %w", err)
	}
	return p, nil
}

// couponDiscounts checks each code for the customer and computes its
// discount on lines. The rules, by promotion type (the promotion's SKU or
// category, when it has one, limits which lines count):
//
//   - amount_off: value cents off the lines it covers, at most their sum;
//   - percent_off: value basis points of the lines it covers, rounded down;
//   - sale_price: each unit of its SKU at value cents instead of the price;
//   - free_shipping: refused, nothing ships from a till;
//   - future_percent_off: refused, it is for a later purchase.
//
// The minimum order is checked against the subtotal before any discount;
// discounts together never exceed the subtotal.
func (s *Store) couponDiscounts(ctx context.Context, customer string, codes []string, lines []pricedLine) ([]ReceiptCoupon, error) {
	var subtotal retail.Cents
	for _, l := range lines {
		subtotal += l.amount()
	}
	seen := map[string]bool{}
	var out []ReceiptCoupon
	left := subtotal
	for _, code := range codes {
		if seen[code] {
			return nil, refuse(ErrInvalid, "Coupon %s is given twice.", code)
		}
		seen[code] = true
		c, err := s.CheckCoupon(ctx, code, customer)
		if err != nil {
			return nil, err
		}
		var sku, category string
		if err := s.query(func(db *retail.DB) error {
			return db.QueryRowContext(ctx, "SELECT coalesce(sku, ''), category FROM promotions WHERE id = ?", c.PromotionID).Scan(&sku, &category)
		}); err != nil {
			return nil, fmt.Errorf("promotion %s: %w", c.PromotionID, err)
		}
		switch c.Type {
		case retail.PromoFreeShipping:
			return nil, refuse(ErrCouponNotApplicable, "Coupon %s is for free shipping; it applies to an order shipped home, not to a sale at the till.", code)
		case retail.PromoFuturePercentOff:
			return nil, refuse(ErrCouponNotApplicable, "Coupon %s gives %s off a later purchase; it cannot be redeemed now.", code, fmtPercent(c.Value))
		case retail.PromoAmountOff, retail.PromoPercentOff, retail.PromoSalePrice:
		default:
			return nil, refuse(ErrCouponNotApplicable, "Coupon %s is for a promotion of type %q, which the till does not know.", code, c.Type)
		}
		if subtotal < c.MinOrderCents {
			return nil, refuse(ErrCouponNotApplicable, "Coupon %s (%s) needs an order of at least %s; the basket is %s.",
				code, c.PromotionName, fmtMoney(c.MinOrderCents), fmtMoney(subtotal))
		}
		var base, d retail.Cents
		for _, l := range lines {
			if (sku == "" || l.sku == sku) && (category == "" || l.category == category) {
				base += l.amount()
				if c.Type == retail.PromoSalePrice {
					d += l.qty * max(l.price-c.Value, 0)
				}
			}
		}
		if base == 0 {
			scope := "the basket, which costs nothing"
			if sku != "" {
				scope = sku
			} else if category != "" {
				scope = "category " + category
			}
			return nil, refuse(ErrCouponNotApplicable, "Coupon %s (%s) is for %s, which is not in the basket.", code, c.PromotionName, scope)
		}
		switch c.Type {
		case retail.PromoAmountOff:
			d = min(c.Value, base)
		case retail.PromoPercentOff:
			d = base * c.Value / 10000
		case retail.PromoSalePrice:
			if d == 0 {
				return nil, refuse(ErrCouponNotApplicable, "Coupon %s sells %s at %s, which is not below its price today.", code, sku, fmtMoney(c.Value))
			}
		}
		d = min(d, left)
		left -= d
		out = append(out, ReceiptCoupon{Code: code, Name: c.PromotionName, DiscountCents: d})
	}
	return out, nil
}

// receiptHeader is what every receipt of this store names: the store,
// the clerk and the customer, and the region's return policy.
type receiptHeader struct {
	storeID, storeName string
	clerkID            string
	customerID, name   string
	policy             string
	window             int64 // return window, days
	capCount, capDays  int64 // receipt-less returns allowed in how many days
}

func (h receiptHeader) receipt(kind, id string, at time.Time) Receipt {
	return Receipt{Kind: kind, ID: id, StoreID: h.storeID, StoreName: h.storeName, Time: at, ClerkID: h.clerkID,
		CustomerID: h.customerID, CustomerName: h.name}
}

// header reads the store, checks the clerk (active) and the customer (if
// any), and reads the return policy.
func (s *Store) header(ctx context.Context, db *retail.DB, clerkID, customerID string) (receiptHeader, error) {
	h := receiptHeader{storeID: s.id, clerkID: clerkID, customerID: customerID}
	// One statement: this runs on every sale, and parsing is much of what
	// a read costs.
	var active sql.NullBool
	var name sql.NullString
	var window, capCount, capDays string
	err := db.QueryRowContext(ctx, `SELECT (SELECT active FROM clerks WHERE id = ?1), (SELECT name FROM customers WHERE id = ?2),
	  coalesce((SELECT name FROM stores WHERE id = ?3), ?3),
	  (SELECT value FROM settings WHERE key = 'return_window_days'),
	  (SELECT value FROM settings WHERE key = 'receiptless_cap_count'),
	  (SELECT value FROM settings WHERE key = 'receiptless_cap_days')`, clerkID, customerID, s.id).
		Scan(&active, &name, &h.storeName, &window, &capCount, &capDays)
	if err != nil {
		return h, fmt.Errorf("clerk, customer, store and settings: %w", err)
	}
	if clerkID != "" && !active.Bool {
		return h, refuse(ErrUnknownClerk, "No active clerk %q in this region; sign in again.", clerkID)
	}
	if customerID != "" && !name.Valid {
		return h, refuse(ErrUnknownCustomer, "No customer %q in this region.", customerID)
	}
	h.name = name.String
	for _, v := range []struct {
		to  *int64
		key string
		s   string
	}{{&h.window, "return_window_days", window}, {&h.capCount, "receiptless_cap_count", capCount}, {&h.capDays, "receiptless_cap_days", capDays}} {
		if *v.to, err = strconv.ParseInt(v.s, 10, 64); err != nil {
			return h, fmt.Errorf("setting %s=%q: %w", v.key, v.s, err)
		}
	}
	h.policy = fmt.Sprintf("Returns within %d days of purchase are refunded to the original payment, never more than was paid with it; "+
		"later only with a manager's approval. Without an order: store credit at the product's lowest price of the last %d days, "+
		"at most %d such returns in %d days.", h.window, lowestPriceDays, h.capCount, h.capDays)
	return h, nil
}

// fmtMoney formats cents as 12.34.
func fmtMoney(c retail.Cents) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// fmtPercent formats basis points as 15% or 12.5%.
func fmtPercent(bp int64) string {
	if bp%100 == 0 {
		return fmt.Sprintf("%d%%", bp/100)
	}
	return strconv.FormatFloat(float64(bp)/100, 'f', -1, 64) + "%"
}
