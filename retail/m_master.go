package retail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	// Validate checks time zones; with the database embedded, every node
	// gives the same answer whatever tzdata its host has, so replicas
	// cannot disagree about which store is valid.
	_ "time/tzdata"
)

func init() {
	register(func() Body { return &UpsertStore{} })
	register(func() Body { return &UpsertClerk{} })
	register(func() Body { return &UpsertCustomer{} })
	register(func() Body { return &UpsertProduct{} })
	register(func() Body { return &UpsertPromotion{} })
	register(func() Body { return &AdjustStock{} })
	register(func() Body { return &SetSetting{} })
}

// Settings a region can change, with their allowed range. Their defaults
// are written by the first migration.
var settingRanges = map[string][2]int64{
	"return_window_days":    {1, 365},
	"receiptless_cap_count": {0, 100},
	"receiptless_cap_days":  {1, 365},
}

// SetSetting changes a region policy (the return window, the cap on
// returns without an order). It is replicated like any change, so every
// node applies the same policy. Request: only known settings, in range.
type SetSetting struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
}

func (*SetSetting) Type() string { return "set_setting" }
func (*SetSetting) Class() Class { return Request }
func (b *SetSetting) Validate() error {
	r, ok := settingRanges[b.Key]
	if !ok {
		return fmt.Errorf("unknown setting %q", b.Key)
	}
	if b.Value < r[0] || b.Value > r[1] {
		return fmt.Errorf("%s %d is outside %d..%d", b.Key, b.Value, r[0], r[1])
	}
	return nil
}
func (b *SetSetting) apply(ctx context.Context, a *applier) error {
	return a.put(ctx, tSettings, b.Key, strconv.FormatInt(b.Value, 10))
}

// UpsertStore creates or updates a store or distribution centre. Request.
type UpsertStore struct {
	ID       string    `json:"id"`
	Kind     StoreKind `json:"kind"`
	Name     string    `json:"name"`
	Region   string    `json:"region"`
	Address  string    `json:"address,omitempty"`
	Timezone string    `json:"timezone,omitempty"`
}

func (*UpsertStore) Type() string { return "upsert_store" }
func (*UpsertStore) Class() Class { return Request }
func (b *UpsertStore) Validate() error {
	var c checks
	c.require(b.ID != "", "store id is empty")
	c.require(b.Kind.Valid(), "store kind %q is not store or dc", b.Kind)
	c.require(b.Name != "", "store name is empty")
	c.require(b.Region != "", "store region is empty")
	if b.Timezone != "" {
		_, err := time.LoadLocation(b.Timezone)
		c.require(err == nil, "timezone %q is unknown", b.Timezone)
	}
	return c.err()
}
func (b *UpsertStore) apply(ctx context.Context, a *applier) error {
	tz := b.Timezone
	if tz == "" {
		tz = "UTC"
	}
	return a.put(ctx, tStores, b.ID, b.Kind, b.Name, b.Region, b.Address, tz, a.at)
}

// UpsertClerk creates or updates a clerk. PINHash is made by HashPIN at the
// node where the PIN was typed; the PIN itself never travels. Request.
type UpsertClerk struct {
	ID      string `json:"id"`
	StoreID string `json:"store_id,omitempty"` // home store; empty for region staff
	Name    string `json:"name"`
	Role    Role   `json:"role"`
	PINHash string `json:"pin_hash"`
	Active  bool   `json:"active"`
}

func (*UpsertClerk) Type() string { return "upsert_clerk" }
func (*UpsertClerk) Class() Class { return Request }
func (b *UpsertClerk) Validate() error {
	var c checks
	c.require(b.ID != "", "clerk id is empty")
	c.require(b.Name != "", "clerk name is empty")
	c.require(b.Role.Valid(), "role %q is not associate, manager or admin", b.Role)
	c.require(validPINHash(b.PINHash), "pin_hash is not a PIN hash made by HashPIN")
	return c.err()
}
func (b *UpsertClerk) apply(ctx context.Context, a *applier) error {
	if b.StoreID != "" {
		if err := a.mustExist(ctx, "store", "stores", "id", b.StoreID); err != nil {
			return err
		}
	}
	return a.put(ctx, tClerks, b.ID, nullable(b.StoreID), b.Name, b.Role, b.PINHash, b.Active, a.at)
}

// Contact says how a customer agreed to be contacted.
type Contact struct {
	Email bool `json:"email"`
	SMS   bool `json:"sms"`
	Push  bool `json:"push"`
	Mail  bool `json:"mail"`
}

// UpsertCustomer creates or updates a customer. A loyalty card already
// held by another customer is refused. Request.
type UpsertCustomer struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Email       string      `json:"email,omitempty"`
	Phone       string      `json:"phone,omitempty"` // E.164 digits
	LoyaltyCard string      `json:"loyalty_card,omitempty"`
	Since       time.Time   `json:"since"`
	AcquiredVia Acquisition `json:"acquired_via"`
	// AcquiredBy: the referring customer's id, the campaign's promotion id,
	// or the clerk who signed her up at the store.
	AcquiredBy    string  `json:"acquired_by,omitempty"`
	AcquiredStore string  `json:"acquired_store,omitempty"`
	HomeStore     string  `json:"home_store,omitempty"`
	Contact       Contact `json:"contact"`
	Language      string  `json:"language,omitempty"` // BCP 47; default "en"
}

func (*UpsertCustomer) Type() string { return "upsert_customer" }
func (*UpsertCustomer) Class() Class { return Request }
func (b *UpsertCustomer) Validate() error {
	var c checks
	c.require(b.ID != "", "customer id is empty")
	c.require(b.Name != "", "customer name is empty")
	c.require(!b.Since.IsZero(), "customer since is not set")
	c.require(b.AcquiredVia.Valid(), "acquired_via %q is not walk_in, referral, campaign, web or phone", b.AcquiredVia)
	c.require(b.AcquiredVia != AcquiredReferral || b.AcquiredBy != "", "a referral needs acquired_by (the referring customer)")
	c.require(b.AcquiredVia != AcquiredCampaign || b.AcquiredBy != "", "a campaign acquisition needs acquired_by (the promotion)")
	for _, r := range b.Phone {
		if (r < '0' || r > '9') && r != '+' {
			c.require(false, "phone %q has characters other than digits and '+'", b.Phone)
			break
		}
	}
	return c.err()
}
func (b *UpsertCustomer) apply(ctx context.Context, a *applier) error {
	for _, s := range []string{b.AcquiredStore, b.HomeStore} {
		if s != "" {
			if err := a.mustExist(ctx, "store", "stores", "id", s); err != nil {
				return err
			}
		}
	}
	if b.LoyaltyCard != "" {
		var holder string
		err := a.tx.queryRow(ctx, "SELECT id FROM customers WHERE loyalty_card = ?", b.LoyaltyCard).Scan(&holder)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look up loyalty card: %w", err)
		}
		if err == nil && holder != b.ID {
			return reject(CodeConflict, "Loyalty card %s already belongs to another customer.", b.LoyaltyCard)
		}
	}
	lang := b.Language
	if lang == "" {
		lang = "en"
	}
	return a.put(ctx, tCustomers, b.ID, b.Name, b.Email, b.Phone, nullable(b.LoyaltyCard), b.Since.UnixMilli(),
		b.AcquiredVia, b.AcquiredBy, nullable(b.AcquiredStore), nullable(b.HomeStore),
		b.Contact.Email, b.Contact.SMS, b.Contact.Push, b.Contact.Mail, a.at, lang)
}

// UpsertProduct creates or updates a product with its barcodes and
// complementary products, replacing the previous lists. Request.
type UpsertProduct struct {
	SKU         string   `json:"sku"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Category    string   `json:"category"`
	PriceCents  Cents    `json:"price_cents"`
	Active      bool     `json:"active"`
	Barcodes    []string `json:"barcodes,omitempty"`
	Complements []string `json:"complements,omitempty"` // SKUs
}

func (*UpsertProduct) Type() string { return "upsert_product" }
func (*UpsertProduct) Class() Class { return Request }
func (b *UpsertProduct) Validate() error {
	var c checks
	c.require(b.SKU != "", "sku is empty")
	c.require(b.Name != "", "product name is empty")
	c.require(b.Category != "", "product category is empty")
	c.require(b.PriceCents >= 0, "price %d is negative", b.PriceCents)
	seen := map[string]bool{}
	for _, bc := range b.Barcodes {
		c.require(bc != "" && !seen[bc], "barcode %q is empty or repeated", bc)
		seen[bc] = true
	}
	for _, s := range b.Complements {
		c.require(s != b.SKU, "product %s cannot complement itself", b.SKU)
	}
	return c.err()
}
func (b *UpsertProduct) apply(ctx context.Context, a *applier) error {
	for _, bc := range b.Barcodes {
		var owner string
		err := a.tx.queryRow(ctx, "SELECT sku FROM product_barcodes WHERE barcode = ?", bc).Scan(&owner)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look up barcode: %w", err)
		}
		if err == nil && owner != b.SKU {
			return reject(CodeConflict, "Barcode %s already belongs to %s.", bc, owner)
		}
	}
	for _, s := range b.Complements {
		if err := a.mustExist(ctx, "complementary product", "products", "sku", s); err != nil {
			return err
		}
	}
	if err := a.put(ctx, tProducts, b.SKU, b.Name, b.Description, b.Category, b.PriceCents, b.Active, a.at); err != nil {
		return err
	}
	if err := a.replaceChildren(ctx, tProductBarcodes, "SELECT barcode FROM product_barcodes WHERE sku = ? ORDER BY barcode", b.SKU, b.Barcodes,
		func(bc string) []any { return []any{bc, b.SKU} }, func(bc string) []any { return []any{bc} }); err != nil {
		return err
	}
	return a.replaceChildren(ctx, tProductComplements, "SELECT complement_sku FROM product_complements WHERE sku = ? ORDER BY complement_sku", b.SKU, b.Complements,
		func(s string) []any { return []any{b.SKU, s} }, func(s string) []any { return []any{b.SKU, s} })
}

// replaceChildren makes the child rows listed by query(parent) equal to
// want: deleting the ones not wanted, putting the wanted ones.
func (a *applier) replaceChildren(ctx context.Context, t *tableDef, query, parent string, want []string,
	row func(string) []any, key func(string) []any) error {
	rows, err := a.tx.query(ctx, query, parent)
	if err != nil {
		return fmt.Errorf("list %s: %w", t.name, err)
	}
	var have []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return fmt.Errorf("list %s: %w", t.name, err)
		}
		have = append(have, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list %s: %w", t.name, err)
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	for _, h := range have {
		if !wanted[h] {
			if err := a.del(ctx, t, key(h)...); err != nil {
				return err
			}
		}
	}
	for _, w := range want {
		if err := a.put(ctx, t, row(w)...); err != nil {
			return err
		}
	}
	return nil
}

// UpsertPromotion creates or updates a promotion (a campaign). Request.
type UpsertPromotion struct {
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	PromoType     PromotionType `json:"promo_type"`
	Value         int64         `json:"value"` // cents, or basis points for percent types
	SKU           string        `json:"sku,omitempty"`
	Category      string        `json:"category,omitempty"`
	Audience      Audience      `json:"audience"`
	MinOrderCents Cents         `json:"min_order_cents,omitempty"`
	StartsAt      time.Time     `json:"starts_at"`
	EndsAt        time.Time     `json:"ends_at"`
	Active        bool          `json:"active"`
}

func (*UpsertPromotion) Type() string { return "upsert_promotion" }
func (*UpsertPromotion) Class() Class { return Request }
func (b *UpsertPromotion) Validate() error {
	var c checks
	c.require(b.ID != "", "promotion id is empty")
	c.require(b.Name != "", "promotion name is empty")
	c.require(b.PromoType.Valid(), "promotion type %q is unknown", b.PromoType)
	c.require(b.Audience.Valid(), "audience %q is unknown", b.Audience)
	c.require(b.Value >= 0, "promotion value %d is negative", b.Value)
	if b.PromoType == PromoPercentOff || b.PromoType == PromoFuturePercentOff {
		c.require(b.Value > 0 && b.Value <= 10000, "percent %d basis points is not in 1..10000", b.Value)
	}
	c.require(b.PromoType != PromoSalePrice || b.SKU != "", "a sale price names its sku")
	c.require(b.MinOrderCents >= 0, "min_order_cents is negative")
	c.require(!b.StartsAt.IsZero() && b.EndsAt.After(b.StartsAt), "promotion must end after it starts")
	return c.err()
}
func (b *UpsertPromotion) apply(ctx context.Context, a *applier) error {
	if b.SKU != "" {
		if err := a.mustExist(ctx, "product", "products", "sku", b.SKU); err != nil {
			return err
		}
	}
	return a.put(ctx, tPromotions, b.ID, b.Name, b.PromoType, b.Value, nullable(b.SKU), b.Category, b.Audience,
		b.MinOrderCents, b.StartsAt.UnixMilli(), b.EndsAt.UnixMilli(), b.Active, a.at)
}

// AdjustStock changes the on-hand count at a location: goods received, a
// cycle count, shrink, a transfer. Fact: a count below zero is applied and
// flagged as a stock discrepancy.
type AdjustStock struct {
	Location string `json:"location"`
	SKU      string `json:"sku"`
	Delta    int64  `json:"delta"`
	Reason   string `json:"reason"` // received, count, shrink, transfer, damaged
}

func (*AdjustStock) Type() string { return "adjust_stock" }
func (*AdjustStock) Class() Class { return Fact }
func (b *AdjustStock) Validate() error {
	var c checks
	c.require(b.Location != "", "location is empty")
	c.require(b.SKU != "", "sku is empty")
	c.require(b.Delta != 0, "delta is zero")
	c.require(oneOf(b.Reason, "received", "count", "shrink", "transfer", "damaged"),
		"reason %q is not received, count, shrink, transfer or damaged", b.Reason)
	return c.err()
}
func (b *AdjustStock) apply(ctx context.Context, a *applier) error {
	if err := a.mustExist(ctx, "location", "stores", "id", b.Location); err != nil {
		return err
	}
	if err := a.mustExist(ctx, "product", "products", "sku", b.SKU); err != nil {
		return err
	}
	return a.moveStock(ctx, b.Location, b.SKU, b.Delta, 0, true)
}

// moveStock adds onHand and reserved (either may be negative) to the
// inventory row, creating it at zero if missing. For facts (flag) a count
// below zero is flagged; for requests the caller checks beforehand.
func (a *applier) moveStock(ctx context.Context, loc, sku string, onHand, reserved int64, flag bool) error {
	return a.moveStocks(ctx, loc, []string{sku}, []int64{onHand}, reserved, flag)
}

// moveStocks is moveStock for several products at one location, each
// with its own onHand and all with the same reserved, in one statement
// for up to maxRowsPerInsert products. skus must be distinct and sorted:
// the rows are recorded, and counts below zero flagged, in that order.
func (a *applier) moveStocks(ctx context.Context, loc string, skus []string, onHand []int64, reserved int64, flag bool) error {
	for len(skus) > 0 {
		n := min(len(skus), maxRowsPerInsert)
		// One statement: create each row at its delta, or add the delta to it.
		args := make([]any, 0, 5*n+1)
		for i, sku := range skus[:n] {
			args = append(args, loc, sku, onHand[i], reserved, a.at)
		}
		args = append(args, reserved)
		rows, err := a.returning(ctx, tInventory, moveStockSQL(n), args...)
		if err != nil {
			return err
		}
		// RETURNING gives the rows in no promised order: put them in skus'.
		sku := func(row []any) string { s, _ := row[1].(string); return s }
		slices.SortFunc(rows, func(x, y []any) int { return strings.Compare(sku(x), sku(y)) })
		if len(rows) != n {
			return fmt.Errorf("update inventory: %d rows for %d products", len(rows), n)
		}
		for i, row := range rows {
			if row[0] != loc || row[1] != skus[i] {
				return fmt.Errorf("update inventory: row %v for %s/%s", row[:2], loc, skus[i])
			}
			a.changes = append(a.changes, RowChange{Table: tInventory.name, Op: OpPut, Cols: tInventory.cols, Vals: row})
			if flag && onHand[i] < 0 {
				if now := row[2].(int64); now < 0 {
					a.flag(ExStockDiscrepancy, "inventory:"+loc+"/"+skus[i], 0,
						"Stock of %s at %s is now %d after %d taken: the count is wrong somewhere.", skus[i], loc, now, -onHand[i])
				}
			}
		}
		skus, onHand = skus[n:], onHand[n:]
	}
	return nil
}

// moveStockSQL is moveStocks' statement for n products: the parameters
// are location, sku, on-hand delta, reserved delta and time for each,
// then the reserved delta again.
func moveStockSQL(n int) string {
	if n < len(moveStockSQLs) {
		return moveStockSQLs[n]
	}
	return buildMoveStockSQL(n)
}

var moveStockSQLs = func() []string {
	out := make([]string, maxRowsPerInsert+1)
	for n := 1; n < len(out); n++ {
		out[n] = buildMoveStockSQL(n)
	}
	return out
}()

func buildMoveStockSQL(n int) string {
	return "INSERT INTO inventory (location_id, sku, on_hand, reserved, updated_at) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?, max(?, 0), ?), ", n), ", ") +
		` ON CONFLICT (location_id, sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand,
		reserved = max(reserved + ?, 0), updated_at = excluded.updated_at` + tInventory.returning
}

// available is on hand minus reserved at a location (0 if never stocked).
func (a *applier) available(ctx context.Context, loc, sku string) (int64, error) {
	var n int64
	err := a.tx.queryRow(ctx, "SELECT on_hand - reserved FROM inventory WHERE location_id = ? AND sku = ?", loc, sku).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("inventory %s/%s: %w", loc, sku, err)
	}
	return n, nil
}
