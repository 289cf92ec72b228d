package retail

import (
	"context"
	"fmt"
)

// Store credit is money the region owes a shopper: refunds paid as store
// credit (returns without an order, or to an order paid with store credit)
// less what she has paid with it on orders that were not cancelled. It
// has no table of its own: the balance is always computed from the
// returns and orders that made it, so every node agrees on it.

// storeCreditSQL computes a customer's balance (?1 is the customer).
const storeCreditSQL = `SELECT
  (SELECT coalesce(sum(rt.amount_cents), 0) FROM returns r JOIN return_tenders rt ON rt.return_id = r.id
    WHERE r.customer_id = ?1 AND rt.kind = 'store_credit')
  - (SELECT coalesce(sum(t.amount_cents), 0) FROM orders o JOIN order_tenders t ON t.order_id = o.id
    WHERE o.customer_id = ?1 AND t.kind = 'store_credit' AND o.status != 'cancelled')`

// StoreCreditBalance is the customer's store credit as this database
// knows it. It can be negative where two stores spent the same credit
// while offline (the hub flags the second spend).
func StoreCreditBalance(ctx context.Context, q Querier, customerID string) (Cents, error) {
	rows, err := q.QueryContext(ctx, storeCreditSQL, customerID)
	if err != nil {
		return 0, fmt.Errorf("store credit of %s: %w", customerID, err)
	}
	defer rows.Close()
	var bal Cents
	if rows.Next() {
		if err := rows.Scan(&bal); err != nil {
			return 0, fmt.Errorf("store credit of %s: %w", customerID, err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store credit of %s: %w", customerID, err)
	}
	return bal, nil
}

// storeCreditSpent is what the order pays with store credit.
func (o *Order) storeCreditSpent() Cents {
	var sum Cents
	for _, t := range o.Tenders {
		if t.Kind == TenderStoreCredit {
			sum += t.AmountCents
		}
	}
	return sum
}

// checkStoreCredit holds an order paid with store credit to the
// shopper's balance before it: a request (an order that can still be
// refused) is rejected, a fact (a till sale already handed over) is
// applied and flagged store_credit_overdrawn with the amount over.
func (a *applier) checkStoreCredit(ctx context.Context, o *Order, class Class) error {
	spend := o.storeCreditSpent()
	if spend == 0 {
		return nil
	}
	if o.CustomerID == "" {
		return invalid("Order %s pays %s with store credit but names no customer.", o.ID, cents(spend))
	}
	var bal Cents
	if err := a.tx.queryRow(ctx, storeCreditSQL, o.CustomerID).Scan(&bal); err != nil {
		return fmt.Errorf("store credit: %w", err)
	}
	if spend <= bal {
		return nil
	}
	if class == Request {
		return reject(CodeInsufficientCredit, "Customer %s has %s of store credit; order %s would pay %s with it.",
			o.CustomerID, cents(max(bal, 0)), o.ID, cents(spend))
	}
	a.flag(ExCreditOverdrawn, "customer:"+o.CustomerID, spend-max(bal, 0),
		"Customer %s had %s of store credit; order %s paid %s with it.", o.CustomerID, cents(max(bal, 0)), o.ID, cents(spend))
	return nil
}
