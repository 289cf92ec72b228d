package edge

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Cross-sell: what a clerk or a kiosk suggests for the basket being rung
// up, from the shopper's wish list, the products that go with what is in
// the basket (product_complements) and what other shoppers bought with it
// (co-purchases).

// A basket is []BasketLine (wish.go): a SKU and a quantity.

// Suggestion is a product to suggest, and why.
type Suggestion struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	StockHere  int64  `json:"stock_here"` // available at this store
	// Source: "wish_list", "complement" or "co_purchase".
	Source string `json:"source"`
	// Why, in words for the clerk: "on her wish list", "goes with Trail
	// shoe", "bought with Trail shoe by 34% of buyers".
	Why string `json:"why"`
	// For is the basket product (or, for an empty basket, the product she
	// bought) a complement or co-purchase goes with.
	For string `json:"for,omitempty"`
}

// CrossSellResult is what CrossSell suggests.
type CrossSellResult struct {
	CustomerID  string       `json:"customer_id,omitempty"`
	Suggestions []Suggestion `json:"suggestions"` // never null
	// Suppressed: no suggestions on purpose; Reason says why (a serial
	// returner).
	Suppressed bool   `json:"suppressed"`
	Reason     string `json:"reason,omitempty"`
	// BasketCents is the basket at today's prices; AverageOrderCents her
	// average order (OrderStats.AverageCents). BelowAverage: the basket is
	// below her average, so there are up to crossSellMore suggestions
	// instead of crossSellUsual.
	BasketCents       int64    `json:"basket_cents"`
	AverageOrderCents int64    `json:"average_order_cents"`
	BelowAverage      bool     `json:"below_average"`
	Notes             []string `json:"notes,omitempty"`
}

// How many suggestions CrossSell makes: usually, and when the basket is
// below her average order.
const (
	crossSellUsual = 3
	crossSellMore  = 6
)

// Suggestion sources, in the order they rank at equal stock.
const (
	srcWish       = "wish_list"
	srcComplement = "complement"
	srcCoPurchase = "co_purchase"
)

var sourceRank = map[string]int{srcWish: 0, srcComplement: 1, srcCoPurchase: 2}

// CrossSell suggests products for customerID's basket:
//
//   - her wish list, then the complements of the basket's products, then
//     what other shoppers bought with them (co-purchases, sampled as in
//     Customer360, for the coPurchaseSKUs lines of the most value);
//     whatever this store has in stock comes first, and nothing already
//     in the basket is suggested;
//   - at most crossSellUsual suggestions, or crossSellMore when the
//     basket (at today's prices) is below her average order
//     (BelowAverage);
//   - none for a high-maintenance returner (ReturnStats.HighMaintenance):
//     Suppressed, with the reason.
//
// An empty basket is not an error for a known customer: the suggestions
// come from her history instead (her wish list, and the complements and
// co-purchases of what she bought most that she has not bought). An empty
// customerID is a shopper who has not signed in: suggestions from the
// basket alone; then an empty basket is ErrEmptyBasket. An unknown
// customer is ErrUnknownCustomer, an unknown product ErrUnknownProduct, a
// quantity below 1 ErrInvalid. It only reads.
func (s *Store) CrossSell(ctx context.Context, customerID string, basket []BasketLine) (CrossSellResult, error) {
	qty := map[string]int64{}
	var skus []string
	for i, l := range basket {
		if l.SKU == "" || l.Qty < 1 {
			return CrossSellResult{}, refuse(ErrInvalid, "Basket line %d needs a SKU and a quantity of at least 1.", i+1)
		}
		if qty[l.SKU] == 0 {
			skus = append(skus, l.SKU)
		}
		qty[l.SKU] += l.Qty
	}
	if customerID == "" && len(skus) == 0 {
		return CrossSellResult{}, refuse(ErrEmptyBasket, "The basket is empty: scan something, or sign the shopper in for suggestions from her history.")
	}
	if err := ctx.Err(); err != nil {
		return CrossSellResult{}, err
	}
	now := s.now()
	out := CrossSellResult{CustomerID: customerID, Suggestions: []Suggestion{}}
	err := s.snapshot(ctx, func(q querier) error {
		inBasket, err := products(ctx, q, skus, s.id)
		if err != nil {
			return err
		}
		for _, sku := range skus {
			p, ok := inBasket[sku]
			if !ok {
				return refuse(ErrUnknownProduct, "No product %s in this region; scan it again or key the SKU.", sku)
			}
			out.BasketCents += qty[sku] * p.price
		}
		var h history
		var wish []WishItem
		if customerID != "" {
			if err := loadProfile(ctx, q, customerID, &h); err != nil {
				return err
			}
			if err := loadOrders(ctx, q, customerID, &h); err != nil {
				return err
			}
			rs, err := returnStats(ctx, q, &h, now)
			if err != nil {
				return err
			}
			out.AverageOrderCents = h.orderStats().AverageCents
			out.BelowAverage = out.AverageOrderCents > 0 && out.BasketCents < out.AverageOrderCents
			if rs.HighMaintenance {
				out.Suppressed = true
				out.Reason = "No suggestions for a serial returner: she " + rs.Why + "."
				return nil
			}
			if wish, err = wishList(ctx, q, customerID, s.id); err != nil {
				return err
			}
		}

		// What the suggestions go with: the basket, or her best-bought
		// products when the basket is empty.
		with, fromHistory := skus, false
		names := map[string]string{}
		for sku, p := range inBasket {
			names[sku] = p.name
		}
		if len(skus) == 0 {
			fromHistory = true
			for _, t := range h.topSKUs(coPurchaseSKUs) {
				with = append(with, t.sku)
				names[t.sku] = t.name
			}
		}
		skip := func(sku string) bool {
			return qty[sku] > 0 || (fromHistory && h.bought[sku] != nil)
		}

		type cand struct {
			Suggestion
			rank int // within its source
		}
		var cands []cand
		for i, w := range wish {
			if skip(w.SKU) {
				continue
			}
			cands = append(cands, cand{Suggestion{SKU: w.SKU, Name: w.Name, PriceCents: w.PriceCents, StockHere: w.StockHere,
				Source: srcWish, Why: "on her wish list"}, i})
		}
		comps, err := complementsOf(ctx, q, with, s.id)
		if err != nil {
			return err
		}
		for i, c := range comps {
			if skip(c.sku) {
				continue
			}
			why := "goes with " + names[c.of]
			if fromHistory {
				why = "goes with her " + names[c.of]
			}
			rank := i
			if h.bought[c.sku] == nil {
				rank -= len(comps) // what she does not have yet first
			}
			cands = append(cands, cand{Suggestion{SKU: c.sku, Name: c.name, PriceCents: c.price, StockHere: c.stock,
				Source: srcComplement, Why: why, For: c.of}, rank})
		}
		exclude := map[string]bool{}
		for _, sku := range skus {
			exclude[sku] = true
		}
		if fromHistory {
			for sku := range h.bought {
				exclude[sku] = true
			}
		}
		var mine *history
		if customerID != "" {
			mine = &h
		}
		// The sample is per product: for a big basket, its coPurchaseSKUs
		// lines of the most value.
		coWith := with
		if !fromHistory && len(with) > coPurchaseSKUs {
			coWith = append([]string(nil), with...)
			sort.SliceStable(coWith, func(i, j int) bool {
				return qty[coWith[i]]*inBasket[coWith[i]].price > qty[coWith[j]]*inBasket[coWith[j]].price
			})
			coWith = coWith[:coPurchaseSKUs]
		}
		co, note, err := coPurchases(ctx, q, mine, coWith, exclude, s.id, crossSellMore)
		if err != nil {
			return err
		}
		if note != "" {
			out.Notes = append(out.Notes, note)
		}
		for i, c := range co {
			cands = append(cands, cand{Suggestion{SKU: c.SKU, Name: c.Name, PriceCents: c.PriceCents, StockHere: c.StockHere,
				Source: srcCoPurchase, Why: c.Why, For: c.With}, i})
		}

		sort.SliceStable(cands, func(i, j int) bool {
			a, b := cands[i], cands[j]
			if (a.StockHere > 0) != (b.StockHere > 0) {
				return a.StockHere > 0
			}
			if sourceRank[a.Source] != sourceRank[b.Source] {
				return sourceRank[a.Source] < sourceRank[b.Source]
			}
			return a.rank < b.rank
		})
		limit := crossSellUsual
		if out.BelowAverage {
			limit = crossSellMore
		}
		seen := map[string]bool{}
		for _, c := range cands {
			if len(out.Suggestions) == limit {
				break
			}
			if seen[c.SKU] {
				continue
			}
			seen[c.SKU] = true
			out.Suggestions = append(out.Suggestions, c.Suggestion)
		}
		return nil
	})
	if err != nil {
		return CrossSellResult{}, err
	}
	return out, nil
}

// products reads skus (active or not) with this store's stock.
func products(ctx context.Context, q querier, skus []string, store string) (map[string]product, error) {
	out := map[string]product{}
	if len(skus) == 0 {
		return out, nil
	}
	err := each(ctx, q, sqlProducts, []any{store, jsonList(skus)}, func(r *sql.Rows) error {
		var p product
		if err := r.Scan(&p.sku, &p.name, &p.category, &p.price, &p.active, &p.stock); err != nil {
			return err
		}
		p.stock = max(p.stock, 0)
		out[p.sku] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	return out, nil
}

// The co-purchase sample: for each of up to coPurchaseSKUs products, the
// coPurchaseOrders latest orders containing it (highest order id: UUIDv7
// ids are in time order) other than hers, found through the index on
// order_lines(sku, order_id) and read backwards, with their lines by
// primary key. No other table is read: each sampled order counts as one
// buyer, cancelled or not. A product bought with it in fewer than
// coPurchaseMinBuyers of those orders is not shown.
const (
	coPurchaseSKUs      = 3
	coPurchaseOrders    = 50
	coPurchaseMinBuyers = 2
)

// coPurchaseIndex is the index the co-purchase sample needs. Without it
// (a replica not yet migrated) there are no co-purchases, with a note:
// without the index every look-up would read every order line.
const coPurchaseIndex = "CREATE INDEX order_lines_sku ON order_lines(sku, order_id)"

// hasCoPurchaseIndex reports whether order_lines has an index on (sku,
// order_id), whatever its name. It reads the schema, which SQLite keeps in
// memory.
func hasCoPurchaseIndex(ctx context.Context, q querier) (bool, error) {
	found := false
	err := each(ctx, q, sqlCoPurchaseIndex, nil, func(r *sql.Rows) error {
		var def string
		if err := r.Scan(&def); err != nil {
			return err
		}
		def = strings.ToLower(strings.Join(strings.Fields(def), ""))
		found = found || strings.HasSuffix(def, "onorder_lines(sku,order_id)") || strings.HasSuffix(def, `on"order_lines"(sku,order_id)`)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("co-purchase index: %w", err)
	}
	return found, nil
}

// coPurchases is what other buyers of with bought in the same order, from
// the sample described at coPurchaseOrders, best first (share of the
// sample, then number of orders), at most limit, leaving out exclude and
// inactive products. h (may be nil: an anonymous shopper) is whose
// orders are left out of the sample. note says why there are none when
// the index is missing.
//
// Two reads: the latest order ids of each product in with, from the
// index alone (as many more as she bought units of it, to drop hers), then
// the lines of all the sampled orders at once, by primary key.
func coPurchases(ctx context.Context, q querier, h *history, with []string, exclude map[string]bool, store string, limit int) ([]CoPurchase, string, error) {
	out := []CoPurchase{}
	if len(with) == 0 {
		return out, "", nil
	}
	ok, err := hasCoPurchaseIndex(ctx, q)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return out, "No co-purchases: this replica lacks the index they need (" + coPurchaseIndex + ").", nil
	}
	sampledFor := map[string][]string{} // order id: the products in with it was sampled for
	var ids []string
	sampled := map[string]int{} // product in with: orders sampled
	for _, x := range with {
		n := coPurchaseOrders
		if h != nil && h.bought[x] != nil {
			n += int(h.bought[x].units) // at least as many as her orders of it
		}
		err := each(ctx, q, sqlCoPurchaseSample, []any{x, n}, func(r *sql.Rows) error {
			var id string
			if err := r.Scan(&id); err != nil {
				return err
			}
			if (h != nil && h.mine[id]) || sampled[x] == coPurchaseOrders {
				return nil
			}
			sampled[x]++
			if sampledFor[id] == nil {
				ids = append(ids, id)
			}
			sampledFor[id] = append(sampledFor[id], x)
			return nil
		})
		if err != nil {
			return nil, "", fmt.Errorf("co-purchase sample of %s: %w", x, err)
		}
	}
	// withY[x][y]: the sampled orders of x that have y too.
	withY := map[string]map[string]map[string]bool{}
	err = each(ctx, q, sqlCoPurchaseLines, []any{jsonList(ids)}, func(r *sql.Rows) error {
		var id, y string
		if err := r.Scan(&id, &y); err != nil {
			return err
		}
		if exclude[y] {
			return nil
		}
		for _, x := range sampledFor[id] {
			if y == x {
				continue
			}
			if withY[x] == nil {
				withY[x] = map[string]map[string]bool{}
			}
			if withY[x][y] == nil {
				withY[x][y] = map[string]bool{}
			}
			withY[x][y][id] = true
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("co-purchase lines: %w", err)
	}
	type found struct {
		with, sku       string
		buyers, sampled int
	}
	var all []found
	for x, ys := range withY {
		for y, orders := range ys {
			if len(orders) >= coPurchaseMinBuyers {
				all = append(all, found{with: x, sku: y, buyers: len(orders), sampled: sampled[x]})
			}
		}
	}
	share := func(f found) float64 { return float64(f.buyers) / float64(f.sampled) }
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if share(a) != share(b) {
			return share(a) > share(b)
		}
		if a.buyers != b.buyers {
			return a.buyers > b.buyers
		}
		if a.sku != b.sku {
			return a.sku < b.sku
		}
		return a.with < b.with
	})
	// The best of them, with a few spare for products no longer sold.
	var keep []found
	seen := map[string]bool{}
	skus := append([]string(nil), with...)
	for _, f := range all {
		if !seen[f.sku] && len(keep) < limit+5 {
			seen[f.sku] = true
			keep = append(keep, f)
			skus = append(skus, f.sku)
		}
	}
	ps, err := products(ctx, q, skus, store)
	if err != nil {
		return nil, "", err
	}
	for _, f := range keep {
		if len(out) == limit {
			break
		}
		p := ps[f.sku]
		if !p.active {
			continue
		}
		pct := int(math.Round(100 * share(f)))
		out = append(out, CoPurchase{SKU: f.sku, Name: p.name, PriceCents: p.price, StockHere: p.stock,
			With: f.with, WithName: ps[f.with].name, Buyers: f.buyers, Sampled: f.sampled, Percent: pct,
			Why: fmt.Sprintf("bought with %s by %d%% of buyers", ps[f.with].name, pct)})
	}
	return out, "", nil
}

// The co-purchase reads (see the customer reads in customer.go).
const (
	sqlProducts = `SELECT p.sku, p.name, p.category, p.price_cents, p.active, coalesce(i.on_hand - i.reserved, 0)
		FROM products p LEFT JOIN inventory i ON i.location_id = ? AND i.sku = p.sku
		WHERE p.sku IN (SELECT value FROM json_each(?))`
	sqlCoPurchaseIndex  = `SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'order_lines' AND sql IS NOT NULL`
	sqlCoPurchaseSample = `SELECT order_id FROM order_lines WHERE sku = ? ORDER BY order_id DESC LIMIT ?`
	sqlCoPurchaseLines  = `SELECT order_id, sku FROM order_lines WHERE order_id IN (SELECT value FROM json_each(?))`
)
