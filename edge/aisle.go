package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/endcap/endcap/retail"
)

// The endless aisle: a shopper (at a kiosk, or with a clerk) finds a
// product with its stock here, at the region's other stores and at the
// distribution centre, and orders what this store does not have, shipped
// home or to a store for pickup. Stock is the replica's: as of its last
// sync, and every answer says how old that is. An order is a
// retail.PlaceOrder (a request) that reserves stock where it ships from;
// it is taken offline against the last-known stock, and the hub confirms
// it or refuses it later.

// Expected dates of an endless-aisle order, counted from when it is taken.
const (
	ShipDays   = 3 // ship_to_home: delivered in 3 days
	PickupDays = 2 // store_pickup: ready at the pickup store in 2 days
)

// AisleStatusPending is the status of an order taken here: the local
// replica reserved the stock; the hub has yet to confirm it.
const AisleStatusPending = "pending_confirmation"

// SearchQuery finds products. At least one field is needed; given
// together they all apply.
type SearchQuery struct {
	Text     string `json:"q,omitempty"`        // in the name or description (any case), or the exact SKU
	Category string `json:"category,omitempty"` // exact category
	Barcode  string `json:"barcode,omitempty"`  // as scanned
	Limit    int    `json:"limit,omitempty"`    // at most this many hits; 0 means 20, at most 100
}

// ProductHit is a product with where it is in stock.
type ProductHit struct {
	SKU         string       `json:"sku"`
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Category    string       `json:"category"`
	PriceCents  retail.Cents `json:"price_cents"`
	// Here is the stock available (on hand less reserved) at this store.
	Here int64 `json:"here"`
	// Stores are the region's other stores with stock available; DCs the
	// distribution centres with stock available.
	Stores []LocationStock `json:"stores"`
	DCs    []LocationStock `json:"dcs"`
	StockAge
}

// StockAge says how fresh the replica's stock figures are.
type StockAge struct {
	// AppliedSeq is the hub change-log sequence the replica has applied.
	AppliedSeq uint64 `json:"applied_seq"`
	// AsOf is when the newest change from elsewhere that the replica has
	// applied was made (its hybrid logical clock time): stock moved by
	// other stores, the DC or the office is known up to then. Zero: the
	// replica has nothing from the hub yet.
	AsOf time.Time `json:"as_of"`
	// AgeSeconds is how long before now AsOf is (-1 when AsOf is zero).
	// In a quiet region it overstates how stale the replica is: nothing
	// newer may exist.
	AgeSeconds int64 `json:"age_seconds"`
}

// LocationStock is the stock available at one location.
type LocationStock struct {
	ID        string           `json:"id"`
	Name      string           `json:"name"`
	Kind      retail.StoreKind `json:"kind"`
	Available int64            `json:"available"`
}

// Search finds active products by text, category or barcode, by name,
// each with its stock here and elsewhere. A barcode nobody has is
// ErrUnknownProduct; otherwise no match is an empty list.
func (s *Store) Search(ctx context.Context, q SearchQuery) ([]ProductHit, error) {
	q.Text = strings.TrimSpace(q.Text)
	if q.Text == "" && q.Category == "" && q.Barcode == "" {
		return nil, refuse(ErrInvalid, "Search by text, category or barcode.")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	sqlq := "SELECT sku, name, description, category, price_cents FROM products WHERE active = 1"
	var args []any
	if q.Barcode != "" {
		sqlq += " AND sku = (SELECT sku FROM product_barcodes WHERE barcode = ?)"
		args = append(args, q.Barcode)
	}
	if q.Text != "" {
		like := "%" + likeEscaper.Replace(q.Text) + "%"
		sqlq += ` AND (name LIKE ? ESCAPE '\' OR description LIKE ? ESCAPE '\' OR sku = ?)`
		args = append(args, like, like, q.Text)
	}
	if q.Category != "" {
		sqlq += " AND category = ?"
		args = append(args, q.Category)
	}
	sqlq += " ORDER BY name, sku LIMIT ?"
	args = append(args, limit)
	hits := []ProductHit{}
	err := s.query(func(db *retail.DB) error {
		age, err := s.stockAge(ctx, db)
		if err != nil {
			return err
		}
		rows, err := db.QueryContext(ctx, sqlq, args...)
		if err != nil {
			return fmt.Errorf("search products: %w", err)
		}
		for rows.Next() {
			h := ProductHit{StockAge: age, Stores: []LocationStock{}, DCs: []LocationStock{}}
			if err := rows.Scan(&h.SKU, &h.Name, &h.Description, &h.Category, &h.PriceCents); err != nil {
				rows.Close()
				return fmt.Errorf("search products: %w", err)
			}
			hits = append(hits, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("search products: %w", err)
		}
		for i := range hits {
			locs, err := stockAt(ctx, db, hits[i].SKU)
			if err != nil {
				return err
			}
			for _, l := range locs {
				switch {
				case l.ID == s.id:
					hits[i].Here = l.Available
				case l.Available <= 0:
				case l.Kind == retail.KindDC:
					hits[i].DCs = append(hits[i].DCs, l)
				default:
					hits[i].Stores = append(hits[i].Stores, l)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(hits) == 0 && q.Barcode != "" && q.Text == "" && q.Category == "" {
		return nil, refuse(ErrUnknownProduct, "No product with barcode %s; key the SKU in or call a manager.", q.Barcode)
	}
	return hits, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// stockAt is sku's available stock at every location of the region,
// distribution centres first, then by id.
func stockAt(ctx context.Context, db *retail.DB, sku string) ([]LocationStock, error) {
	rows, err := db.QueryContext(ctx, `SELECT s.id, s.name, s.kind, coalesce(i.on_hand - i.reserved, 0)
	  FROM stores s LEFT JOIN inventory i ON i.location_id = s.id AND i.sku = ?
	  ORDER BY s.kind != 'dc', s.id`, sku)
	if err != nil {
		return nil, fmt.Errorf("stock of %s: %w", sku, err)
	}
	defer rows.Close()
	var out []LocationStock
	for rows.Next() {
		var l LocationStock
		if err := rows.Scan(&l.ID, &l.Name, &l.Kind, &l.Available); err != nil {
			return nil, fmt.Errorf("stock of %s: %w", sku, err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// stockAge reads the applied hub sequence and the newest time among the
// last 200 mutations of other origins the replica applied. Rows are
// appended to applied_mutations as they are applied (rowid order), so
// this reads the table's tail, not the whole of it; the max over a few
// covers a store that uploads late with older clocks.
func (s *Store) stockAge(ctx context.Context, db *retail.DB) (StockAge, error) {
	var a StockAge
	var seq int64
	var hlc *string
	prefix := s.replica.Edge() + "/"
	err := db.QueryRowContext(ctx, `SELECT coalesce((SELECT value FROM edge_meta WHERE key = 'applied_seq'), 0),
	  (SELECT max(hlc) FROM (SELECT hlc FROM applied_mutations WHERE substr(id, 1, ?) != ? ORDER BY rowid DESC LIMIT 200))`,
		len(prefix), prefix).Scan(&seq, &hlc)
	if err != nil {
		return a, fmt.Errorf("replica freshness: %w", err)
	}
	a.AppliedSeq, a.AgeSeconds = uint64(seq), -1
	if hlc != nil {
		h, err := retail.ParseHLC(*hlc)
		if err != nil {
			return a, fmt.Errorf("replica freshness: %w", err)
		}
		a.AsOf = h.Time()
		a.AgeSeconds = max(int64(s.now().Sub(a.AsOf)/time.Second), 0)
	}
	return a, nil
}

// AisleOrder is an order for later: goods this store does not have,
// shipped to the shopper's home or to a store for her to pick up.
type AisleOrder struct {
	ClerkID    string `json:"clerk_id,omitempty"` // empty at a kiosk
	CustomerID string `json:"customer_id"`
	// Channel is store (at the counter; the default with a clerk) or
	// kiosk (the default without one).
	Channel     retail.Channel    `json:"channel,omitempty"`
	Lines       []ItemLine        `json:"lines"`
	Fulfilment  retail.Fulfilment `json:"fulfilment"` // ship_to_home or store_pickup
	ShipAddress string            `json:"ship_address,omitempty"`
	PickupStore string            `json:"pickup_store,omitempty"` // default: this store
	// FulfilFrom is the location it ships from. Default: the first
	// distribution centre with all of it available, else the pickup
	// store, else the first other store (by id), else this store.
	FulfilFrom string          `json:"fulfil_from,omitempty"`
	Tenders    []retail.Tender `json:"tenders"` // pay the total exactly: cash, or card with its token
}

// AisleResult is an order taken.
type AisleResult struct {
	OrderID string `json:"order_id"`
	// Status is always pending_confirmation: the stock is reserved on
	// this replica; the hub confirms the order when the store is online.
	// If the hub refuses it (the stock went elsewhere meanwhile), the
	// refusal lands on this store's attention list (GET /v1/attention).
	Status        string       `json:"status"`
	FulfilFrom    string       `json:"fulfil_from"`
	ExpectedAt    time.Time    `json:"expected_at"`
	SubtotalCents retail.Cents `json:"subtotal_cents"`
	TotalCents    retail.Cents `json:"total_cents"`
	StockAge
	Receipt Receipt `json:"receipt"`
}

// OrderForLater takes an endless-aisle order and reserves its stock where
// it ships from, against the replica (it works offline, on the last-known
// stock). It refuses, writing nothing: no customer, an empty basket, an
// unknown product, clerk, customer or location, a bad fulfilment, tenders
// that do not pay the total; and ErrOutOfStock, saying where the stock is,
// when no location has all of it available (or the chosen one has not).
func (s *Store) OrderForLater(ctx context.Context, req AisleOrder) (AisleResult, error) {
	if err := ctx.Err(); err != nil {
		return AisleResult{}, err
	}
	if req.Channel == "" {
		req.Channel = retail.ChannelKiosk
		if req.ClerkID != "" {
			req.Channel = retail.ChannelStore
		}
	}
	if req.Fulfilment == retail.StorePickup && req.PickupStore == "" {
		req.PickupStore = s.id
	}
	switch {
	case req.CustomerID == "":
		return AisleResult{}, refuse(ErrInvalid, "An order for later needs the shopper signed in: it is hers to receive.")
	case len(req.Lines) == 0:
		return AisleResult{}, refuse(ErrEmptyBasket, "Nothing to order: pick a product first.")
	case req.Channel != retail.ChannelStore && req.Channel != retail.ChannelKiosk:
		return AisleResult{}, refuse(ErrInvalid, "An order taken in the store is in channel store or kiosk, not %q.", req.Channel)
	case req.Fulfilment != retail.ShipToHome && req.Fulfilment != retail.StorePickup:
		return AisleResult{}, refuse(ErrInvalid, "Ship it home (ship_to_home) or to a store for pickup (store_pickup), not %q.", req.Fulfilment)
	case req.Fulfilment == retail.ShipToHome && strings.TrimSpace(req.ShipAddress) == "":
		return AisleResult{}, refuse(ErrInvalid, "Shipping home needs the address.")
	}
	var hdr receiptHeader
	err := s.query(func(db *retail.DB) error {
		var err error
		hdr, err = s.header(ctx, db, req.ClerkID, req.CustomerID)
		if err != nil {
			return err
		}
		for _, loc := range []struct{ id, what string }{{req.PickupStore, "pickup store"}, {req.FulfilFrom, "location to ship from"}} {
			if loc.id == "" {
				continue
			}
			var kind retail.StoreKind
			err := db.QueryRowContext(ctx, "SELECT kind FROM stores WHERE id = ?", loc.id).Scan(&kind)
			if errors.Is(err, sql.ErrNoRows) {
				return refuse(ErrInvalid, "No store %q in this region to use as the %s.", loc.id, loc.what)
			}
			if err == nil && loc.what == "pickup store" && kind != retail.KindStore {
				return refuse(ErrInvalid, "%s is a distribution centre: a shopper picks up at a store.", loc.id)
			}
			if err != nil {
				return fmt.Errorf("look up %s: %w", loc.what, err)
			}
		}
		return nil
	})
	if err != nil {
		return AisleResult{}, err
	}
	lines, err := s.priceLines(ctx, req.Lines)
	if err != nil {
		return AisleResult{}, err
	}
	var age StockAge
	var stock map[string][]LocationStock
	err = s.query(func(db *retail.DB) error {
		if age, err = s.stockAge(ctx, db); err != nil {
			return err
		}
		stock = map[string][]LocationStock{}
		for _, l := range lines {
			if stock[l.sku], err = stockAt(ctx, db, l.sku); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return AisleResult{}, err
	}
	from := req.FulfilFrom
	if from == "" {
		if from = s.pickSource(lines, stock, req.PickupStore); from == "" {
			return AisleResult{}, refuse(ErrOutOfStock, "No single location has all of it available (as of %s): %s",
				fmtAsOf(age), whereStock(lines, stock))
		}
	}
	now := s.now()
	expected := now.AddDate(0, 0, ShipDays)
	if req.Fulfilment == retail.StorePickup {
		expected = now.AddDate(0, 0, PickupDays)
	}
	o := retail.Order{ID: newID(), CustomerID: req.CustomerID, Channel: req.Channel, StoreID: s.id, ClerkID: req.ClerkID,
		Fulfilment: req.Fulfilment, FulfilFrom: from, PickupStore: req.PickupStore, ShipAddress: req.ShipAddress, ExpectedAt: &expected}
	if req.Fulfilment == retail.ShipToHome {
		o.PickupStore = ""
	}
	for _, l := range lines {
		o.Lines = append(o.Lines, retail.Line{SKU: l.sku, Qty: l.qty, UnitPriceCents: l.price})
	}
	sub, _, total := o.Totals()
	if err := checkTenders(req.Tenders, total); err != nil {
		return AisleResult{}, err
	}
	o.Tenders = req.Tenders
	actor := retail.Actor{Kind: "customer", ID: req.CustomerID}
	if req.ClerkID != "" {
		actor = retail.Actor{Kind: "clerk", ID: req.ClerkID}
	}
	if _, err := s.write(ctx, actor, &retail.PlaceOrder{Order: o}); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == ErrOutOfStock.Code {
			return AisleResult{}, refuse(ErrOutOfStock, "%s Stock as of %s: %s", e.Message, fmtAsOf(age), whereStock(lines, stock))
		}
		return AisleResult{}, err
	}
	rc := hdr.receipt("order", o.ID, now)
	rc.Lines = receiptLines(lines)
	rc.SubtotalCents, rc.TotalCents = sub, total
	for _, t := range o.Tenders {
		rc.Tenders = append(rc.Tenders, receiptTender(t))
	}
	rc.Fulfilment, rc.ShipAddress, rc.PickupStore, rc.ExpectedAt = o.Fulfilment, o.ShipAddress, o.PickupStore, &expected
	rc.Policy = hdr.policy
	rc.Notes = []string{fmt.Sprintf("Ships from %s. Taken against the stock this store knew as of %s; "+
		"the region confirms it when the store is online, and the store calls you if it cannot.", from, fmtAsOf(age))}
	return AisleResult{OrderID: o.ID, Status: AisleStatusPending, FulfilFrom: from, ExpectedAt: expected,
		SubtotalCents: sub, TotalCents: total, StockAge: age, Receipt: rc}, nil
}

// pickSource is the first location with every line available: the
// distribution centres, the pickup store, the other stores, this store.
func (s *Store) pickSource(lines []pricedLine, stock map[string][]LocationStock, pickup string) string {
	avail := map[string]map[string]int64{} // location → sku → available
	var dcs, stores []string
	for _, l := range lines {
		for _, loc := range stock[l.sku] {
			if avail[loc.ID] == nil {
				avail[loc.ID] = map[string]int64{}
				if loc.Kind == retail.KindDC {
					dcs = append(dcs, loc.ID)
				} else if loc.ID != pickup && loc.ID != s.id {
					stores = append(stores, loc.ID)
				}
			}
			avail[loc.ID][l.sku] = loc.Available
		}
	}
	for _, id := range slices.Concat(dcs, []string{pickup}, stores, []string{s.id}) {
		if id == "" || avail[id] == nil {
			continue
		}
		ok := true
		for _, l := range lines {
			ok = ok && avail[id][l.sku] >= l.qty
		}
		if ok {
			return id
		}
	}
	return ""
}

// whereStock says, for each line, where its stock is available.
func whereStock(lines []pricedLine, stock map[string][]LocationStock) string {
	var parts []string
	for _, l := range lines {
		var at []string
		for _, loc := range stock[l.sku] {
			if loc.Available > 0 {
				at = append(at, fmt.Sprintf("%s %d", loc.ID, loc.Available))
			}
		}
		where := "none anywhere in the region"
		if len(at) > 0 {
			where = "available at " + strings.Join(at, ", ")
		}
		parts = append(parts, fmt.Sprintf("%s (%d wanted): %s", l.sku, l.qty, where))
	}
	return strings.Join(parts, "; ") + "."
}

func fmtAsOf(a StockAge) string {
	if a.AsOf.IsZero() {
		return "no sync yet"
	}
	return fmt.Sprintf("%s, %s ago", a.AsOf.Format("2 Jan 15:04"), (time.Duration(a.AgeSeconds) * time.Second).String())
}
