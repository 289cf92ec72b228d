package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/endcap/endcap/retail"
)

// Paperless returns: the clerk finds what a shopper bought (by her
// account, or by the card she paid with) in any channel, and takes goods
// back against the order, refunded to the tender they were paid with.
// Goods the system cannot tie to an order come back as store credit at
// their lowest recent price, within a per-shopper cap. Every return is one
// retail.ReturnItems (a fact); what the hub would flag is refused here.

// ErrReceiptlessCap refuses a return without an order that would take the
// shopper over the region's cap (receiptless_cap_count returns in
// receiptless_cap_days days, at any store) without a manager's approval.
var ErrReceiptlessCap = &Error{Code: "receiptless_cap", Status: http.StatusUnprocessableEntity}

// lowestPriceDays is how far back a return without an order looks for
// the lowest price it refunds.
const lowestPriceDays = 30

// maxReturnableOrders bounds the orders FindReturnable lists, newest first.
const maxReturnableOrders = 100

// ReturnableLine is one order line a shopper may bring back.
type ReturnableLine struct {
	OrderID    string         `json:"order_id"`
	Channel    retail.Channel `json:"channel"`
	StoreID    string         `json:"store_id,omitempty"` // where it was bought; empty for web and phone
	CustomerID string         `json:"customer_id,omitempty"`
	PlacedAt   time.Time      `json:"placed_at"`
	LineNo     int64          `json:"line_no"`
	SKU        string         `json:"sku"`
	Name       string         `json:"name"`
	QtyBought  int64          `json:"qty_bought"`
	// QtyReturned counts units already returned, at any store.
	QtyReturned int64 `json:"qty_returned"`
	// PaidPerUnitCents is what one unit cost the shopper: its price less
	// its line discount and its share of the order's coupons, rounded down.
	PaidPerUnitCents retail.Cents `json:"paid_per_unit_cents"`
	// Tenders are the order's payments and what each has had refunded.
	Tenders []ReturnableTender `json:"tenders"`
	// WithinWindow: bought no more than return_window_days ago; after
	// WindowEndsAt a return needs a manager's approval.
	WithinWindow bool      `json:"within_window"`
	WindowEndsAt time.Time `json:"window_ends_at"`
}

// ReturnableTender is one of an order's payments. At most PaidCents -
// RefundedCents can still be refunded to it.
type ReturnableTender struct {
	Kind          retail.TenderKind `json:"kind"`
	CardToken     string            `json:"card_token,omitempty"`
	PaidCents     retail.Cents      `json:"paid_cents"`
	RefundedCents retail.Cents      `json:"refunded_cents"`
}

// FindReturnable lists the lines of a customer's delivered orders (till
// sales, and web, phone and kiosk orders once fulfilled), from every
// channel and store, newest order first (at most 100 orders). Orders
// still reserved or cancelled have nothing to return. ErrUnknownCustomer
// if there is no such customer.
func (s *Store) FindReturnable(ctx context.Context, customerID string) ([]ReturnableLine, error) {
	var out []ReturnableLine
	err := s.query(func(db *retail.DB) error {
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1 FROM customers WHERE id = ?", customerID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return refuse(ErrUnknownCustomer, "No customer %q in this region.", customerID)
		}
		if err != nil {
			return fmt.Errorf("look up customer: %w", err)
		}
		ids, err := queryStrings(ctx, db, `SELECT id FROM orders WHERE customer_id = ? AND status IN ('completed', 'fulfilled')
		  ORDER BY placed_at DESC, id LIMIT ?`, customerID, maxReturnableOrders)
		if err != nil {
			return err
		}
		out, err = s.returnableLines(ctx, db, ids)
		return err
	})
	return out, err
}

// FindReturnableByCard lists the lines of delivered orders paid (in part)
// with the card whose payment token is cardToken, whoever's they are,
// newest first (at most 100 orders).
func (s *Store) FindReturnableByCard(ctx context.Context, cardToken string) ([]ReturnableLine, error) {
	if cardToken == "" {
		return nil, refuse(ErrInvalid, "Give the card token the payment terminal read.")
	}
	var out []ReturnableLine
	err := s.query(func(db *retail.DB) error {
		ids, err := queryStrings(ctx, db, `SELECT id FROM orders WHERE id IN
		  (SELECT order_id FROM order_tenders WHERE card_token = ? AND card_token != '')
		  AND status IN ('completed', 'fulfilled') ORDER BY placed_at DESC, id LIMIT ?`, cardToken, maxReturnableOrders)
		if err != nil {
			return err
		}
		out, err = s.returnableLines(ctx, db, ids)
		return err
	})
	return out, err
}

func (s *Store) returnableLines(ctx context.Context, db *retail.DB, ids []string) ([]ReturnableLine, error) {
	window, err := regionSetting(ctx, db, "return_window_days")
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []ReturnableLine{}
	for _, id := range ids {
		o, err := loadOrder(ctx, db, id)
		if err != nil {
			return nil, err
		}
		ends := o.windowEnds(window)
		for _, l := range o.lines {
			out = append(out, ReturnableLine{OrderID: o.id, Channel: o.channel, StoreID: o.storeID, CustomerID: o.customerID,
				PlacedAt: o.placedAt, LineNo: l.no, SKU: l.sku, Name: l.name, QtyBought: l.qty, QtyReturned: l.returned,
				PaidPerUnitCents: l.paid / l.qty, Tenders: o.tenders, WithinWindow: !now.After(ends), WindowEndsAt: ends})
		}
	}
	return out, nil
}

// boughtOrder is an order as a return sees it.
type boughtOrder struct {
	id, customerID, storeID string
	channel                 retail.Channel
	status                  retail.OrderStatus
	placedAt                time.Time
	total, refunded         retail.Cents
	lines                   []boughtLine
	tenders                 []ReturnableTender
}

type boughtLine struct {
	no       int64
	sku      string
	name     string
	qty      int64
	returned int64
	paid     retail.Cents // what the whole line cost the shopper
}

// windowEnds is when the return window of the order closes: the rule
// retail applies (placed_at + return_window_days).
func (o *boughtOrder) windowEnds(days int64) time.Time {
	return o.placedAt.Add(time.Duration(days) * 24 * time.Hour)
}

// refund is what qty more units of line l give back: the line's paid
// amount spread over its units so that returning every unit refunds
// exactly what the line cost.
func (l boughtLine) refund(qty int64) retail.Cents {
	return l.paid*(l.returned+qty)/l.qty - l.paid*l.returned/l.qty
}

// loadOrder reads an order, its lines (with units returned so far and
// what each line cost after discounts and coupons) and its tenders (with
// what was refunded to each). ErrUnknownOrder if there is none.
func loadOrder(ctx context.Context, db *retail.DB, id string) (*boughtOrder, error) {
	o := &boughtOrder{id: id}
	var customer, store sql.NullString
	var placed int64
	var subtotal, discount retail.Cents
	err := db.QueryRowContext(ctx, `SELECT customer_id, store_id, channel, status, placed_at, subtotal_cents, discount_cents, total_cents,
	  (SELECT coalesce(sum(refund_cents), 0) FROM returns WHERE order_id = orders.id)
	  FROM orders WHERE id = ?`, id).
		Scan(&customer, &store, &o.channel, &o.status, &placed, &subtotal, &discount, &o.total, &o.refunded)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, refuse(ErrUnknownOrder, "No order %s in this region.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("look up order %s: %w", id, err)
	}
	o.customerID, o.storeID, o.placedAt = customer.String, store.String, time.UnixMilli(placed).UTC()
	rows, err := db.QueryContext(ctx, `SELECT l.line_no, l.sku, coalesce(p.name, l.sku), l.qty, l.unit_price_cents, l.discount_cents,
	  coalesce((SELECT sum(rl.qty) FROM return_lines rl JOIN returns r ON r.id = rl.return_id
	    WHERE r.order_id = l.order_id AND rl.order_line_no = l.line_no), 0)
	  FROM order_lines l LEFT JOIN products p ON p.sku = l.sku WHERE l.order_id = ? ORDER BY l.line_no`, id)
	if err != nil {
		return nil, fmt.Errorf("order %s lines: %w", id, err)
	}
	var net []retail.Cents
	var sumNet retail.Cents
	for rows.Next() {
		var l boughtLine
		var price, disc retail.Cents
		if err := rows.Scan(&l.no, &l.sku, &l.name, &l.qty, &price, &disc, &l.returned); err != nil {
			rows.Close()
			return nil, fmt.Errorf("order %s lines: %w", id, err)
		}
		o.lines = append(o.lines, l)
		net = append(net, l.qty*price-disc)
		sumNet += l.qty*price - disc
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("order %s lines: %w", id, err)
	}
	// Order-level coupons come off the lines in proportion to their value.
	for i := range o.lines {
		if sumNet > 0 {
			o.lines[i].paid = net[i] * o.total / sumNet
		}
	}
	rows, err = db.QueryContext(ctx, `SELECT t.kind, t.card_token, sum(t.amount_cents),
	  (SELECT coalesce(sum(rt.amount_cents), 0) FROM returns r JOIN return_tenders rt ON rt.return_id = r.id
	    WHERE r.order_id = t.order_id AND rt.kind = t.kind AND rt.card_token = t.card_token)
	  FROM order_tenders t WHERE t.order_id = ? GROUP BY t.kind, t.card_token ORDER BY min(t.tender_no)`, id)
	if err != nil {
		return nil, fmt.Errorf("order %s tenders: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t ReturnableTender
		if err := rows.Scan(&t.Kind, &t.CardToken, &t.PaidCents, &t.RefundedCents); err != nil {
			return nil, fmt.Errorf("order %s tenders: %w", id, err)
		}
		o.tenders = append(o.tenders, t)
	}
	if o.tenders == nil {
		o.tenders = []ReturnableTender{}
	}
	return o, rows.Err()
}

// ReturnRequest is goods brought back to this store.
type ReturnRequest struct {
	ClerkID    string `json:"clerk_id"`
	CustomerID string `json:"customer_id,omitempty"` // required without an order
	// OrderID ties the return to an order (found with FindReturnable or
	// FindReturnableByCard, or from the receipt's barcode). Empty: the
	// system cannot tie the goods to an order; they come back as store
	// credit.
	OrderID string `json:"order_id,omitempty"`
	// WithReceipt: the shopper showed the paper receipt (needs OrderID).
	WithReceipt bool         `json:"with_receipt,omitempty"`
	Lines       []ReturnItem `json:"lines"`
	// RefundTo picks which of the order's tenders is refunded (kind and
	// card token); empty: the first card, then cash, that can take the
	// whole refund, and if none can, the refund is split over the order's
	// tenders (cards first) within what is left of each. Without an order
	// the refund is store credit.
	RefundTo *retail.Tender `json:"refund_to,omitempty"`
	Reason   string         `json:"reason"`
	Restock  bool           `json:"restock"` // back on the shelf (not damaged)
	// ApproverID and ApproverPIN are a manager's, for a return past the
	// window or over the receipt-less cap. Checked only when needed.
	ApproverID  string `json:"approver_id,omitempty"`
	ApproverPIN string `json:"approver_pin,omitempty"`
}

// ReturnItem is one line coming back: an order line (by number, or the
// order's first line of that SKU with units left to return) or, without
// an order, a product by barcode or SKU. Qty 0 means 1.
type ReturnItem struct {
	OrderLineNo int64  `json:"order_line_no,omitempty"`
	Barcode     string `json:"barcode,omitempty"`
	SKU         string `json:"sku,omitempty"`
	Qty         int64  `json:"qty,omitempty"`
}

// ReturnResult is a recorded return.
type ReturnResult struct {
	ReturnID string        `json:"return_id"`
	Status   retail.Status `json:"status"`
	// Refunds are where the money goes: one tender, or several when one
	// item was paid with two. Refund is the whole amount, with the first
	// tender's kind and card token (for callers that expect one tender).
	Refund     retail.Tender   `json:"refund"`
	Refunds    []retail.Tender `json:"refunds"`
	ApprovedBy string          `json:"approved_by,omitempty"`
	// ReceiptlessCount is the shopper's returns without an order in the
	// cap window, this one included (0 for a return against an order).
	ReceiptlessCount int64 `json:"receiptless_count,omitempty"`
	// SerialReturner: this return took the shopper over the receipt-less
	// cap (a manager approved it). Point her to customer service.
	SerialReturner bool               `json:"serial_returner,omitempty"`
	Exceptions     []retail.Exception `json:"exceptions,omitempty"`
	Receipt        Receipt            `json:"receipt"`
}

// Return records goods brought back. Against an order it refunds each
// line what was paid for it (after discounts and coupons) to one of the
// order's tenders (a card to the same card token, cash as cash). It
// refuses, writing nothing: unknown clerk, customer, order or product;
// an order not delivered; more units than bought and not yet returned
// (ErrInvalid); a refund above what is left of the tender's payment or
// of the order (ErrOverPaid, with the amounts; no approval overrides it);
// a return past the window without a manager's approval
// (ErrReturnWindow); without an order, a shopper over the receipt-less
// cap without a manager's approval (ErrReceiptlessCap). A manager's
// approval that fails is the error Approve gives (ErrWrongPIN,
// ErrNotPermitted, ErrLocked).
//
// Without an order each unit is refunded as store credit at the lowest
// shelf price the product sold at in the region in the last 30 days
// (order lines' unit prices), or its price today if that is lower or it
// did not sell.
func (s *Store) Return(ctx context.Context, req ReturnRequest) (ReturnResult, error) {
	if err := ctx.Err(); err != nil {
		return ReturnResult{}, err
	}
	switch {
	case req.ClerkID == "":
		return ReturnResult{}, refuse(ErrInvalid, "A return needs the clerk who takes it: sign in first.")
	case len(req.Lines) == 0:
		return ReturnResult{}, refuse(ErrEmptyBasket, "Nothing to return: scan the items or pick the order lines.")
	case req.Reason == "":
		return ReturnResult{}, refuse(ErrInvalid, "Say why the goods come back (the reason is kept with the return).")
	case req.WithReceipt && req.OrderID == "":
		return ReturnResult{}, refuse(ErrInvalid, "A return with a receipt names the receipt's order.")
	}
	var hdr receiptHeader
	var p returnPlan
	err := s.query(func(db *retail.DB) error {
		var err error
		if hdr, err = s.header(ctx, db, req.ClerkID, req.CustomerID); err != nil {
			return err
		}
		if req.OrderID != "" {
			p, err = s.planOrderReturn(ctx, db, req, hdr)
		} else {
			p, err = s.planReceiptless(ctx, db, req, hdr)
		}
		return err
	})
	if err != nil {
		return ReturnResult{}, err
	}
	res := ReturnResult{ReturnID: newID(), Refund: p.refund, Refunds: p.refunds, ReceiptlessCount: p.receiptless, SerialReturner: p.overCap}
	if len(p.refunds) == 0 {
		res.Refunds = []retail.Tender{p.refund}
	}
	if p.needs != nil {
		if req.ApproverID == "" {
			return ReturnResult{}, p.needs
		}
		m, err := s.Approve(ctx, req.ApproverID, req.ApproverPIN)
		if err != nil {
			return ReturnResult{}, err
		}
		res.ApprovedBy = m.ID
	}
	customer := req.CustomerID
	if customer == "" {
		customer = p.customer
	}
	body := &retail.ReturnItems{ID: res.ReturnID, OrderID: req.OrderID, CustomerID: customer, StoreID: s.id, ClerkID: req.ClerkID,
		Reason: req.Reason, WithReceipt: req.WithReceipt, Lines: p.lines, Refund: p.refund, ApprovedBy: res.ApprovedBy, Restock: req.Restock}
	if len(p.refunds) > 0 {
		body.Refund, body.Refunds = retail.Tender{}, p.refunds
	}
	r, err := s.write(ctx, retail.Actor{Kind: "clerk", ID: req.ClerkID}, body)
	if err != nil {
		return ReturnResult{}, err
	}
	res.Status, res.Exceptions = r.Status, r.Exceptions
	rc := hdr.receipt("return", res.ReturnID, s.now())
	rc.CustomerID = customer
	rc.OriginalOrderID = req.OrderID
	rc.Lines = p.printed
	rc.SubtotalCents, rc.TotalCents = p.refund.AmountCents, p.refund.AmountCents
	for _, t := range res.Refunds {
		rc.Tenders = append(rc.Tenders, receiptTender(t))
	}
	rc.Policy = hdr.policy
	if res.ApprovedBy != "" {
		rc.Notes = append(rc.Notes, "Approved by "+res.ApprovedBy+".")
	}
	res.Receipt = rc
	return res, nil
}

// returnPlan is a checked return, ready to record.
type returnPlan struct {
	lines       []retail.ReturnLine
	printed     []ReceiptLine
	refund      retail.Tender   // the whole refund; kind and token of its (first) tender
	refunds     []retail.Tender // set when the refund is split over tenders
	customer    string          // the order's customer
	needs       *Error          // refused unless a manager approves
	receiptless int64
	overCap     bool
}

func (s *Store) planOrderReturn(ctx context.Context, db *retail.DB, req ReturnRequest, hdr receiptHeader) (returnPlan, error) {
	var p returnPlan
	o, err := loadOrder(ctx, db, req.OrderID)
	if err != nil {
		return p, err
	}
	p.customer = o.customerID
	if o.status != retail.OrderCompleted && o.status != retail.OrderFulfilled {
		return p, refuse(ErrInvalid, "Order %s is %s: nothing of it has reached the shopper, so nothing can come back (cancel the order instead).",
			o.id, o.status)
	}
	want := map[int]int64{} // units asked back, by line index
	var order []int
	for i, it := range req.Lines {
		if it.Qty < 0 {
			return p, refuse(ErrInvalid, "Line %d has a negative quantity (%d).", i+1, it.Qty)
		}
		qty := max(it.Qty, 1)
		sku := it.SKU
		if it.OrderLineNo == 0 && sku == "" && it.Barcode == "" {
			return p, refuse(ErrInvalid, "Line %d names neither an order line nor a product.", i+1)
		}
		if it.Barcode != "" {
			pl, err := findProduct(ctx, db, it.Barcode, "")
			if err != nil {
				return p, err
			}
			sku = pl.sku
		}
		idx := -1
		for j, l := range o.lines {
			if (it.OrderLineNo != 0 && l.no == it.OrderLineNo) ||
				(it.OrderLineNo == 0 && l.sku == sku && l.returned+want[j] < l.qty) {
				idx = j
				break
			}
		}
		switch {
		case idx < 0 && it.OrderLineNo != 0:
			return p, refuse(ErrInvalid, "Order %s has no line %d.", o.id, it.OrderLineNo)
		case idx < 0:
			return p, refuse(ErrInvalid, "Order %s has no %s left to return.", o.id, sku)
		case sku != "" && o.lines[idx].sku != sku:
			return p, refuse(ErrInvalid, "Order %s line %d is %s, not %s.", o.id, o.lines[idx].no, o.lines[idx].sku, sku)
		}
		if _, ok := want[idx]; !ok {
			order = append(order, idx)
		}
		want[idx] += qty
	}
	for _, idx := range order {
		l, qty := o.lines[idx], want[idx]
		if l.returned+qty > l.qty {
			return p, refuse(ErrInvalid, "Order %s line %d: %d of %s bought, %d returned already; %d more can come back, not %d.",
				o.id, l.no, l.qty, l.sku, l.returned, l.qty-l.returned, qty)
		}
		amt := l.refund(qty)
		p.lines = append(p.lines, retail.ReturnLine{OrderLineNo: l.no, SKU: l.sku, Qty: qty, RefundCents: amt})
		p.printed = append(p.printed, ReceiptLine{SKU: l.sku, Name: l.name, Qty: qty, UnitPriceCents: l.paid / l.qty, AmountCents: amt})
		p.refund.AmountCents += amt
	}
	amt := p.refund.AmountCents
	if o.refunded+amt > o.total {
		return p, refuse(ErrOverPaid, "Order %s was paid %s in all and %s is refunded already; %s more cannot go back.",
			o.id, fmtMoney(o.total), fmtMoney(o.refunded), fmtMoney(amt))
	}
	ts, err := pickTenders(o, req.RefundTo, amt)
	if err != nil {
		return p, err
	}
	p.refund.Kind, p.refund.CardToken = ts[0].Kind, ts[0].CardToken
	if len(ts) > 1 {
		p.refunds = ts
	}
	if ends := o.windowEnds(hdr.window); s.now().After(ends) {
		p.needs = refuse(ErrReturnWindow, "Order %s was bought on %s; the %d-day return window ended on %s. A manager can approve the return.",
			o.id, o.placedAt.Format("2 Jan 2006"), hdr.window, ends.Format("2 Jan 2006"))
	}
	return p, nil
}

// pickTenders finds the order's tenders the refund goes to: the one asked
// for, or else the first card, then the first other tender, that can take
// amt; if none can, amt split over the tenders in that order, each taking
// what is left of its payment. ErrOverPaid if the tender asked for, or all
// of them together, have less than amt left to refund.
func pickTenders(o *boughtOrder, want *retail.Tender, amt retail.Cents) ([]retail.Tender, error) {
	left := func(t ReturnableTender) retail.Cents { return max(t.PaidCents-t.RefundedCents, 0) }
	one := func(t ReturnableTender, amt retail.Cents) retail.Tender {
		return retail.Tender{Kind: t.Kind, AmountCents: amt, CardToken: t.CardToken}
	}
	if want != nil && want.Kind != "" {
		for _, t := range o.tenders {
			if t.Kind == want.Kind && t.CardToken == want.CardToken {
				if left(t) < amt {
					return nil, refuse(ErrOverPaid, "Order %s paid %s with %s and %s of it is refunded already: at most %s can go back to it, not %s.",
						o.id, fmtMoney(t.PaidCents), tenderLabel(t.Kind, t.CardToken), fmtMoney(t.RefundedCents), fmtMoney(left(t)), fmtMoney(amt))
				}
				return []retail.Tender{one(t, amt)}, nil
			}
		}
		return nil, refuse(ErrInvalid, "Order %s was not paid with %s; a refund goes back to the tender it was paid with.",
			o.id, tenderLabel(want.Kind, want.CardToken))
	}
	// Cards first, then the rest, each in the order paid.
	var byPref []ReturnableTender
	for _, card := range []bool{true, false} {
		for _, t := range o.tenders {
			if (t.Kind == retail.TenderCard) == card {
				byPref = append(byPref, t)
			}
		}
	}
	for _, t := range byPref {
		if left(t) >= amt {
			return []retail.Tender{one(t, amt)}, nil
		}
	}
	var out []retail.Tender
	rest := amt
	for _, t := range byPref {
		if take := min(left(t), rest); take > 0 {
			out = append(out, one(t, take))
			rest -= take
		}
	}
	if rest > 0 || len(out) == 0 {
		var lefts []string
		for _, t := range o.tenders {
			lefts = append(lefts, fmt.Sprintf("%s %s left", tenderLabel(t.Kind, t.CardToken), fmtMoney(left(t))))
		}
		return nil, refuse(ErrOverPaid, "Order %s cannot take a refund of %s: %s.", o.id, fmtMoney(amt), strings.Join(lefts, "; "))
	}
	return out, nil
}

func tenderLabel(k retail.TenderKind, card string) string {
	name := strings.ReplaceAll(string(k), "_", " ")
	if card != "" {
		return name + " " + card
	}
	return name
}

func (s *Store) planReceiptless(ctx context.Context, db *retail.DB, req ReturnRequest, hdr receiptHeader) (returnPlan, error) {
	var p returnPlan
	if req.CustomerID == "" {
		return p, refuse(ErrInvalid, "A return without an order needs the shopper signed in: the store credit is hers and the receipt-less cap counts per shopper.")
	}
	if req.RefundTo != nil && req.RefundTo.Kind != "" && req.RefundTo.Kind != retail.TenderStoreCredit {
		return p, refuse(ErrInvalid, "A return the system cannot tie to an order is refunded as store credit, not %s.", req.RefundTo.Kind)
	}
	now := s.now()
	since := now.AddDate(0, 0, -lowestPriceDays).UnixMilli()
	at := map[string]int{}
	for i, it := range req.Lines {
		if it.Qty < 0 {
			return p, refuse(ErrInvalid, "Line %d has a negative quantity (%d).", i+1, it.Qty)
		}
		if it.OrderLineNo != 0 {
			return p, refuse(ErrInvalid, "Line %d names an order line, but the return names no order.", i+1)
		}
		qty := max(it.Qty, 1)
		pl, err := findProduct(ctx, db, it.Barcode, it.SKU)
		if err != nil {
			return p, err
		}
		if j, ok := at[pl.sku]; ok {
			p.lines[j].Qty += qty
			continue
		}
		price, err := lowestPrice(ctx, db, pl.sku, pl.price, since)
		if err != nil {
			return p, err
		}
		at[pl.sku] = len(p.lines)
		p.lines = append(p.lines, retail.ReturnLine{SKU: pl.sku, Qty: qty})
		p.printed = append(p.printed, ReceiptLine{SKU: pl.sku, Name: pl.name, UnitPriceCents: price})
	}
	for i := range p.lines {
		p.printed[i].Qty = p.lines[i].Qty
		p.lines[i].RefundCents = p.lines[i].Qty * p.printed[i].UnitPriceCents
		p.printed[i].AmountCents = p.lines[i].RefundCents
		p.refund.AmountCents += p.lines[i].RefundCents
	}
	p.refund.Kind = retail.TenderStoreCredit
	// The rule retail applies: returns without an order after now - days.
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM returns WHERE customer_id = ? AND order_id IS NULL AND returned_at > ?",
		req.CustomerID, now.AddDate(0, 0, -int(hdr.capDays)).UnixMilli()).Scan(&n); err != nil {
		return p, fmt.Errorf("receipt-less returns: %w", err)
	}
	p.receiptless = n + 1
	if p.receiptless > hdr.capCount {
		p.overCap = true
		p.needs = refuse(ErrReceiptlessCap, "%s has made %d returns without an order in the last %d days, at any store; the cap is %d. A manager can approve this one.",
			hdr.name, n, hdr.capDays, hdr.capCount)
	}
	return p, nil
}

// lowestPrice is the lowest shelf price (order_lines.unit_price_cents;
// line and coupon discounts are the shopper's, not the shelf's) sku sold
// at in orders placed since (unix ms), or price if that is lower. Written
// as ORDER BY … LIMIT 1 so that an index on order_lines(sku,
// unit_price_cents) answers it from the cheapest line up; without one it
// reads every order line (about a second in a region of a million
// orders: docs/api.md asks for the index).
func lowestPrice(ctx context.Context, db *retail.DB, sku string, price retail.Cents, since int64) (retail.Cents, error) {
	var low retail.Cents
	err := db.QueryRowContext(ctx, `SELECT l.unit_price_cents FROM order_lines l JOIN orders o ON o.id = l.order_id
	  WHERE l.sku = ? AND o.placed_at >= ? ORDER BY l.unit_price_cents LIMIT 1`, sku, since).Scan(&low)
	if errors.Is(err, sql.ErrNoRows) {
		return price, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lowest price of %s: %w", sku, err)
	}
	return min(low, price), nil
}

// regionSetting reads a region setting.
func regionSetting(ctx context.Context, db *retail.DB, key string) (int64, error) {
	var v int64
	if err := db.QueryRowContext(ctx, "SELECT CAST(value AS INTEGER) FROM settings WHERE key = ?", key).Scan(&v); err != nil {
		return 0, fmt.Errorf("setting %s: %w", key, err)
	}
	return v, nil
}

// queryStrings runs a query of one text column.
func queryStrings(ctx context.Context, db *retail.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
