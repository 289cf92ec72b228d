package retail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tableDef names a table's columns in schema order and its primary key. It
// is the only place Go code lists them: put writes whole rows from it, the
// change feed carries them, and ApplyChanges accepts only tables and
// columns it knows. TestTableDefsMatchSchema keeps it true to the schema.
type tableDef struct {
	name      string
	cols      []string
	pk        []string
	upsertSQL string
	deleteSQL string
	returning string
}

var tableDefs = map[string]*tableDef{}

func table(name string, pk []string, cols ...string) *tableDef {
	var set, where []string
	for _, c := range cols {
		if !slices.Contains(pk, c) {
			set = append(set, c+" = excluded."+c)
		}
	}
	for _, c := range pk {
		where = append(where, c+" = ?")
	}
	conflict := "DO NOTHING"
	if len(set) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	t := &tableDef{
		name: name, cols: cols, pk: pk,
		upsertSQL: fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) %s",
			name, quoteIdents(cols), strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", "),
			quoteIdents(pk), conflict),
		deleteSQL: fmt.Sprintf("DELETE FROM %s WHERE %s", name, strings.Join(where, " AND ")),
		returning: " RETURNING " + quoteIdents(cols),
	}
	tableDefs[name] = t
	return t
}

func pk(cols ...string) []string { return cols }

var (
	tSettings  = table("settings", pk("key"), "key", "value")
	tStores    = table("stores", pk("id"), "id", "kind", "name", "region", "address", "timezone", "updated_at")
	tClerks    = table("clerks", pk("id"), "id", "store_id", "name", "role", "pin_hash", "active", "updated_at")
	tCustomers = table("customers", pk("id"), "id", "name", "email", "phone", "loyalty_card", "since",
		"acquired_via", "acquired_by", "acquired_store", "home_store",
		"contact_email", "contact_sms", "contact_push", "contact_mail", "updated_at", "language")
	tProducts           = table("products", pk("sku"), "sku", "name", "description", "category", "price_cents", "active", "updated_at")
	tProductBarcodes    = table("product_barcodes", pk("barcode"), "barcode", "sku")
	tProductComplements = table("product_complements", pk("sku", "complement_sku"), "sku", "complement_sku")
	tInventory          = table("inventory", pk("location_id", "sku"), "location_id", "sku", "on_hand", "reserved", "updated_at")
	tOrders             = table("orders", pk("id"), "id", "customer_id", "channel", "store_id", "clerk_id", "status",
		"fulfilment", "fulfil_from", "pickup_store", "ship_address", "expected_at",
		"subtotal_cents", "discount_cents", "total_cents", "placed_at", "updated_at", "mutation_id")
	tOrderLines   = table("order_lines", pk("order_id", "line_no"), "order_id", "line_no", "sku", "qty", "unit_price_cents", "discount_cents")
	tOrderTenders = table("order_tenders", pk("order_id", "tender_no"), "order_id", "tender_no", "kind", "amount_cents", "card_token")
	tOrderCoupons = table("order_coupons", pk("order_id", "code"), "order_id", "code", "discount_cents", "status")
	tReturns      = table("returns", pk("id"), "id", "order_id", "customer_id", "store_id", "clerk_id", "reason",
		"with_receipt", "refund_kind", "refund_cents", "refund_card_token", "approved_by", "restocked", "returned_at", "mutation_id")
	tReturnLines   = table("return_lines", pk("return_id", "line_no"), "return_id", "line_no", "order_line_no", "sku", "qty", "refund_cents")
	tReturnTenders = table("return_tenders", pk("return_id", "tender_no"), "return_id", "tender_no", "kind", "amount_cents", "card_token")
	tWishItems     = table("wish_items", pk("customer_id", "sku"), "customer_id", "sku", "added_at", "source", "note")
	tPromotions    = table("promotions", pk("id"), "id", "name", "type", "value", "sku", "category", "audience",
		"min_order_cents", "starts_at", "ends_at", "active", "updated_at")
	tOffers = table("offers", pk("id"), "id", "promotion_id", "customer_id", "channel", "store_id", "made_at",
		"outcome", "outcome_order_id", "outcome_at")
	tCoupons = table("coupons", pk("code"), "code", "offer_id", "customer_id", "promotion_id", "issued_store",
		"issued_at", "expires_at", "redeemed_store", "redeemed_at", "redeemed_order_id")
	tServiceContacts = table("service_contacts", pk("id"), "id", "customer_id", "channel", "reason", "opened_at",
		"resolved", "satisfied", "clerk_id", "store_id", "notes", "updated_at")
	tVisits     = table("visits", pk("id"), "id", "customer_id", "store_id", "method", "at")
	tCarts      = table("carts", pk("id"), "id", "customer_id", "channel", "status", "last_step", "order_id", "updated_at")
	tCartEvents = table("cart_events", pk("id"), "id", "cart_id", "customer_id", "channel", "kind", "sku", "qty", "step", "at")
	tExceptions = table("exceptions", pk("id"), "id", "mutation_id", "kind", "entity", "detail", "amount_cents",
		"status", "raised_at", "resolved_by", "resolved_at", "resolution")
	tAppliedMutations = table("applied_mutations", pk("id"), "id", "type", "hlc", "actor", "status", "code", "reason")
)

// ChangeOp is what a RowChange does.
type ChangeOp string

const (
	OpPut ChangeOp = "put" // insert the row, or replace every column of the row with its key
	OpDel ChangeOp = "del" // delete the row with this key
)

// RowChange is one row written by Apply, as the change feed carries it: for
// a put, every column of the row; for a delete, its primary key.
// Values are int64, string, []byte or nil.
type RowChange struct {
	Table string   `json:"t"`
	Op    ChangeOp `json:"op"`
	Cols  []string `json:"c"`
	Vals  []any    `json:"v"`
}

// UnmarshalJSON decodes numbers as int64 (the schema has no REAL columns),
// so a change that crossed the wire writes the same bytes as the original.
func (c *RowChange) UnmarshalJSON(b []byte) error {
	if fast, ok := parseRowChange(b); ok {
		*c = fast
		return nil
	}
	return c.unmarshalSlow(b)
}

// unmarshalSlow is UnmarshalJSON for any shape encoding/json accepts.
func (c *RowChange) unmarshalSlow(b []byte) error {
	var raw struct {
		Table string            `json:"t"`
		Op    ChangeOp          `json:"op"`
		Cols  []string          `json:"c"`
		Vals  []json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	vals := make([]any, len(raw.Vals))
	for i, rv := range raw.Vals {
		v, err := decodeValue(rv)
		if err != nil {
			return fmt.Errorf("row change %s value %d: %w", raw.Table, i, err)
		}
		vals[i] = v
	}
	*c = RowChange{Table: raw.Table, Op: raw.Op, Cols: raw.Cols, Vals: vals}
	return nil
}

// parseRowChange reads a row change in the exact form json.Marshal writes
// it ({"t":…,"op":…,"c":[…],"v":[…]}, no spaces, strings without
// escapes), which is what the hub's change log holds: a catching-up edge
// decodes millions of them. Anything else reports !ok and goes the slow
// way, which gives the same result (FuzzRowChangeFast checks).
func parseRowChange(b []byte) (RowChange, bool) {
	p := JSONScanner{B: b}
	var c RowChange
	var op string
	ok := p.Lit(`{"t":`) && p.Str(&c.Table) && p.Lit(`,"op":`) && p.Str(&op) && p.Lit(`,"c":[`)
	if !ok {
		return RowChange{}, false
	}
	c.Op = ChangeOp(op)
	for first := true; !p.Peek(']'); first = false {
		var col string
		if (!first && !p.Lit(",")) || !p.Str(&col) {
			return RowChange{}, false
		}
		c.Cols = append(c.Cols, col)
	}
	if !p.Lit(`],"v":[`) {
		return RowChange{}, false
	}
	c.Vals = make([]any, 0, len(c.Cols))
	for first := true; !p.Peek(']'); first = false {
		if !first && !p.Lit(",") {
			return RowChange{}, false
		}
		v, ok := p.Value()
		if !ok {
			return RowChange{}, false
		}
		c.Vals = append(c.Vals, v)
	}
	if !p.Lit("]}") || !p.Done() || c.Cols == nil {
		return RowChange{}, false
	}
	return c, true
}

// decodeValue reads one column value: null, an integer, or a string. It
// is on the path of every row an edge catches up on, so the common forms
// are parsed directly rather than through a json.Decoder each.
func decodeValue(rv json.RawMessage) (any, error) {
	rv = bytes.TrimSpace(rv)
	if len(rv) == 0 {
		return nil, fmt.Errorf("empty value")
	}
	switch c := rv[0]; {
	case c == 'n' && string(rv) == "null":
		return nil, nil
	case c == '"':
		if len(rv) >= 2 && rv[len(rv)-1] == '"' && bytes.IndexByte(rv[1:len(rv)-1], '\\') < 0 && !hasControl(rv) && utf8.Valid(rv) {
			return string(rv[1 : len(rv)-1]), nil
		}
		var s string
		if err := json.Unmarshal(rv, &s); err != nil {
			return nil, err
		}
		return s, nil
	case c == '-' || (c >= '0' && c <= '9'):
		n, err := strconv.ParseInt(string(rv), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not an integer", rv)
		}
		return n, nil
	}
	return nil, fmt.Errorf("unsupported JSON %s", rv)
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// ApplyChanges writes row changes made by Apply on another node (the hub's
// change feed) into tx, in order. It accepts only the tables and whole-row
// column lists of this schema version, so nothing from the wire becomes SQL.
func ApplyChanges(ctx context.Context, tx *Tx, changes []RowChange) error {
	for i, c := range changes {
		t := tableDefs[c.Table]
		if t == nil {
			return fmt.Errorf("change %d: unknown table %q", i, c.Table)
		}
		var query string
		switch c.Op {
		case OpPut:
			if !slices.Equal(c.Cols, t.cols) {
				return fmt.Errorf("change %d: %s columns %v, want %v", i, c.Table, c.Cols, t.cols)
			}
			query = t.upsertSQL
		case OpDel:
			if !slices.Equal(c.Cols, t.pk) {
				return fmt.Errorf("change %d: %s key %v, want %v", i, c.Table, c.Cols, t.pk)
			}
			query = t.deleteSQL
		default:
			return fmt.Errorf("change %d: unknown op %q", i, c.Op)
		}
		if len(c.Vals) != len(c.Cols) {
			return fmt.Errorf("change %d: %s has %d values for %d columns", i, c.Table, len(c.Vals), len(c.Cols))
		}
		if _, err := tx.exec(ctx, query, c.Vals...); err != nil {
			return fmt.Errorf("change %d: %s %s: %w", i, c.Op, c.Table, err)
		}
	}
	return nil
}

// TableInfo describes one domain table: its columns in schema order and
// its primary key. Row changes carry exactly these columns.
type TableInfo struct {
	Name string
	Cols []string
	PK   []string
}

// Tables lists the domain tables Apply writes, by name.
func Tables() []TableInfo {
	out := make([]TableInfo, 0, len(tableDefs))
	for _, t := range tableDefs {
		out = append(out, TableInfo{Name: t.name, Cols: slices.Clone(t.cols), PK: slices.Clone(t.pk)})
	}
	slices.SortFunc(out, func(a, b TableInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
