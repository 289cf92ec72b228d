package retail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

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
// original or more to a tender than was paid with it, comes after the return window, or (without an order) goes over
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
	// Refund is the refund when it goes to one tender. A refund split
	// over several tenders (an item paid half by card, half in cash) lists
	// them in Refunds instead and leaves Refund empty.
	Refund     Tender   `json:"refund"`
	Refunds    []Tender `json:"refunds,omitempty"`
	ApprovedBy string   `json:"approved_by,omitempty"` // a manager's clerk id
	Restock    bool     `json:"restock"`
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
	c.require(len(b.Refunds) == 0 || b.Refund == Tender{}, "a return gives either one refund or a list of refunds, not both")
	var refunded Cents
	tenders := b.RefundTenders()
	for i, t := range tenders {
		c.require(t.Kind.Valid(), "refund tender %d %q is unknown", i+1, t.Kind)
		c.require(t.AmountCents >= 0, "refund tender %d is negative", i+1)
		c.require(t.Kind != TenderCard || t.CardToken != "", "refund tender %d is a card without its card token", i+1)
		for _, u := range tenders[:i] {
			c.require(u.Kind != t.Kind || u.CardToken != t.CardToken, "refund tender %d repeats %s", i+1, tenderName(t))
		}
		refunded += t.AmountCents
	}
	c.require(refunded == sum, "refund %d is not the sum of the lines' refunds %d", refunded, sum)
	return c.err()
}

// RefundTenders is where the refund goes: Refunds, or else Refund alone.
func (b *ReturnItems) RefundTenders() []Tender {
	if len(b.Refunds) > 0 {
		return b.Refunds
	}
	return []Tender{b.Refund}
}

// RefundTotal is the whole refund, over every tender.
func (b *ReturnItems) RefundTotal() Cents {
	var sum Cents
	for _, t := range b.RefundTenders() {
		sum += t.AmountCents
	}
	return sum
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
	tenders := b.RefundTenders()
	if err := a.put(ctx, tReturns, b.ID, nullable(b.OrderID), nullable(b.CustomerID), b.StoreID, b.ClerkID, b.Reason,
		b.WithReceipt, tenders[0].Kind, b.RefundTotal(), tenders[0].CardToken, nullable(b.ApprovedBy), b.Restock,
		a.at, a.m.ID.String()); err != nil {
		return err
	}
	for i, t := range tenders {
		if err := a.put(ctx, tReturnTenders, b.ID, i+1, t.Kind, t.AmountCents, t.CardToken); err != nil {
			return err
		}
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
	amt := b.RefundTotal()
	if refunded+amt > total {
		a.flag(ExOverRefund, entity, refunded+amt-total, "Order %s: %s refunded now and %s before, but only %s was paid.",
			b.OrderID, cents(amt), cents(refunded), cents(total))
	} else {
		for _, t := range b.RefundTenders() {
			if err := b.checkTender(ctx, a, t, entity, approved); err != nil {
				return err
			}
		}
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

// checkTender flags a refund to a tender the order was not paid with
// (unless a manager approved it), or more to a tender than was paid with it.
func (b *ReturnItems) checkTender(ctx context.Context, a *applier, t Tender, entity string, approved bool) error {
	var paidWith, refundedTo Cents
	if err := a.tx.queryRow(ctx, "SELECT coalesce(sum(amount_cents), 0) FROM order_tenders WHERE order_id = ? AND kind = ? AND card_token = ?",
		b.OrderID, t.Kind, t.CardToken).Scan(&paidWith); err != nil {
		return fmt.Errorf("paid with tender: %w", err)
	}
	if err := a.tx.queryRow(ctx, `SELECT coalesce(sum(rt.amount_cents), 0) FROM return_tenders rt JOIN returns r ON r.id = rt.return_id
		WHERE r.order_id = ? AND rt.kind = ? AND rt.card_token = ?`, b.OrderID, t.Kind, t.CardToken).Scan(&refundedTo); err != nil {
		return fmt.Errorf("refunded to tender: %w", err)
	}
	switch {
	case paidWith == 0 && !approved:
		a.flag(ExTenderMismatch, entity, t.AmountCents, "Order %s was not paid with %s; %s refunded to it without a manager's approval.",
			b.OrderID, tenderName(t), cents(t.AmountCents))
	case paidWith > 0 && refundedTo+t.AmountCents > paidWith:
		a.flag(ExOverRefund, entity, refundedTo+t.AmountCents-paidWith, "Order %s: %s refunded to %s now and %s before, but only %s was paid with it.",
			b.OrderID, cents(t.AmountCents), tenderName(t), cents(refundedTo), cents(paidWith))
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
	for _, t := range b.RefundTenders() {
		if t.Kind != TenderStoreCredit {
			a.flag(ExTenderMismatch, "return:"+b.ID, t.AmountCents,
				"Return %s is tied to no order, so it is refunded as store credit; %s went to %s without a manager's approval.",
				b.ID, cents(t.AmountCents), tenderName(t))
		}
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
		a.flag(ExReceiptlessCap, "customer:"+b.CustomerID, b.RefundTotal(),
			"Customer %s has made %d returns without an order in %d days, over the cap of %d, without a manager's approval.",
			b.CustomerID, n+1, days, limit)
	}
	return nil
}
