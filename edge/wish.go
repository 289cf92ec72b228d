package edge

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/endcap/endcap/retail"
)

// WishItem (customer.go) is also what the wish list lists.

// WishList lists a shopper's wish list, newest first, with stock at this
// store, for the kiosk and the clerk.
func (s *Store) WishList(ctx context.Context, customerID string) ([]WishItem, error) {
	if err := s.mustCustomer(ctx, customerID); err != nil {
		return nil, err
	}
	out := []WishItem{}
	err := s.query(func(db *retail.DB) error {
		rows, err := db.QueryContext(ctx, `SELECT w.sku, p.name, p.price_cents, w.added_at, w.source, w.note,
		    coalesce((SELECT on_hand - reserved FROM inventory WHERE location_id = ? AND sku = w.sku), 0)
		  FROM wish_items w JOIN products p ON p.sku = w.sku WHERE w.customer_id = ? ORDER BY w.added_at DESC, w.sku`, s.id, customerID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var it WishItem
			var added int64
			if err := rows.Scan(&it.SKU, &it.Name, &it.PriceCents, &added, &it.Source, &it.Note, &it.StockHere); err != nil {
				return err
			}
			it.AddedAt = time.UnixMilli(added).UTC()
			out = append(out, it)
		}
		return rows.Err()
	})
	return out, err
}

// AddWish puts a product on a shopper's wish list.
func (s *Store) AddWish(ctx context.Context, actor retail.Actor, customerID, sku string, source retail.WishSource, note string) error {
	if err := s.mustCustomer(ctx, customerID); err != nil {
		return err
	}
	if err := s.mustProduct(ctx, sku); err != nil {
		return err
	}
	_, err := s.write(ctx, actor, &retail.AddWishItem{CustomerID: customerID, SKU: sku, Source: source, Note: note})
	return err
}

// RemoveWish takes a product off a shopper's wish list.
func (s *Store) RemoveWish(ctx context.Context, actor retail.Actor, customerID, sku string) error {
	if err := s.mustCustomer(ctx, customerID); err != nil {
		return err
	}
	_, err := s.write(ctx, actor, &retail.RemoveWishItem{CustomerID: customerID, SKU: sku})
	return err
}

// BasketLine is a product in the basket being rung up.
type BasketLine struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// MoveToBasket takes a product off the wish list and returns it as a
// basket line (one unit), for the sale or endless-aisle order it joins.
// It refuses a product with no stock here: order it instead (endless aisle).
func (s *Store) MoveToBasket(ctx context.Context, actor retail.Actor, customerID, sku string) (BasketLine, error) {
	items, err := s.WishList(ctx, customerID)
	if err != nil {
		return BasketLine{}, err
	}
	for _, it := range items {
		if it.SKU != sku {
			continue
		}
		if it.StockHere < 1 {
			return BasketLine{}, refuse(ErrOutOfStock, "%s is not in stock at this store; order it for her instead (endless aisle).", it.Name)
		}
		if err := s.RemoveWish(ctx, actor, customerID, sku); err != nil {
			return BasketLine{}, err
		}
		return BasketLine{SKU: sku, Qty: 1}, nil
	}
	return BasketLine{}, refuse(ErrUnknownProduct, "%s is not on this shopper's wish list.", sku)
}

// NewContact is a service contact to record.
type NewContact struct {
	CustomerID string                `json:"customer_id"`
	Channel    retail.ContactChannel `json:"channel"`
	Reason     string                `json:"reason"`
	Resolved   bool                  `json:"resolved"`
	Satisfied  *bool                 `json:"satisfied,omitempty"`
	ClerkID    string                `json:"clerk_id,omitempty"`
	Notes      string                `json:"notes,omitempty"`
}

// RecordContact records a service contact at this store and its outcome.
// It returns the contact's id.
func (s *Store) RecordContact(ctx context.Context, actor retail.Actor, c NewContact) (string, error) {
	if err := s.mustCustomer(ctx, c.CustomerID); err != nil {
		return "", err
	}
	id := newID()
	_, err := s.write(ctx, actor, &retail.RecordServiceContact{ID: id, CustomerID: c.CustomerID, Channel: c.Channel, Reason: c.Reason,
		Resolved: c.Resolved, Satisfied: c.Satisfied, ClerkID: c.ClerkID, StoreID: s.id, Notes: c.Notes})
	if err != nil {
		return "", err
	}
	return id, nil
}

func (s *Store) mustCustomer(ctx context.Context, id string) error {
	var one int
	err := s.query(func(db *retail.DB) error {
		return db.QueryRowContext(ctx, "SELECT 1 FROM customers WHERE id = ?", id).Scan(&one)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return refuse(ErrUnknownCustomer, "No customer %q in this region; look her up by card or phone, or sign her up.", id)
	}
	return err
}

func (s *Store) mustProduct(ctx context.Context, sku string) error {
	var one int
	err := s.query(func(db *retail.DB) error {
		return db.QueryRowContext(ctx, "SELECT 1 FROM products WHERE sku = ?", sku).Scan(&one)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return refuse(ErrUnknownProduct, "No product %q in the catalog.", sku)
	}
	return err
}
