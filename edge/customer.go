package edge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/endcap/endcap/retail"
)

// Customer look-up and the customer 360: everything a clerk needs about
// the shopper in front of her, from every channel, in one call. Every
// read is local and goes through an index on customer_id (see
// docs/api.md, "Customers"), so it answers in milliseconds on a replica
// of millions of orders, with the network down.

// More refusals of the customer operations; match them with errors.Is.
var (
	// ErrAmbiguousCustomer: a phone number shared by several customers (a
	// household); look her up by loyalty card instead.
	ErrAmbiguousCustomer = &Error{Code: "ambiguous_customer", Status: http.StatusConflict}
	// ErrSignInInvalid: an app sign-in code that is malformed or does not
	// check out (forged, or signed with another region's key).
	ErrSignInInvalid = &Error{Code: "signin_invalid", Status: http.StatusUnprocessableEntity}
	// ErrSignInExpired: a genuine app sign-in code past its expiry.
	ErrSignInExpired = &Error{Code: "signin_expired", Status: http.StatusUnprocessableEntity}
)

// LookupKind is what a shopper is looked up by.
type LookupKind string

const (
	ByLoyaltyCard LookupKind = "card"       // the loyalty card number
	ByPhone       LookupKind = "phone"      // her phone number
	BySignInToken LookupKind = "token"      // the wallet app's QR sign-in code (SignInToken)
	ByCardToken   LookupKind = "card_token" // a payment card's processor token (order_tenders.card_token)
)

// CustomerRef is a shopper as a look-up finds her.
type CustomerRef struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	LoyaltyCard string     `json:"loyalty_card,omitempty"`
	Phone       string     `json:"phone,omitempty"`
	HomeStore   string     `json:"home_store,omitempty"`
	Language    string     `json:"language"`
	Since       time.Time  `json:"since"`
	By          LookupKind `json:"by,omitempty"` // how she was found
}

func scanRef(row interface{ Scan(...any) error }, c *CustomerRef) error {
	var since int64
	if err := row.Scan(&c.ID, &c.Name, &c.LoyaltyCard, &c.Phone, &c.HomeStore, &c.Language, &since); err != nil {
		return err
	}
	c.Since = time.UnixMilli(since).UTC()
	return nil
}

// FindCustomer finds the shopper a clerk or a kiosk is serving:
//
//   - ByLoyaltyCard: the card number, exactly as printed.
//   - ByPhone: spaces, dashes, dots, slashes and brackets are dropped; what
//     is left must be digits with an optional leading '+', and matches a
//     customer's phone with or without the '+'. A number shared by several
//     customers is ErrAmbiguousCustomer.
//   - BySignInToken: a code made by SignInToken: its signature is checked
//     with the region's coupon key (ErrSignInInvalid) and its expiry
//     against the store's clock (ErrSignInExpired).
//   - ByCardToken: the customer of the latest order paid with that card.
//
// Nobody found is ErrUnknownCustomer, with what the clerk can do next.
// It only reads.
func (s *Store) FindCustomer(ctx context.Context, by LookupKind, value string) (CustomerRef, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return CustomerRef{}, refuse(ErrInvalid, "Give her loyalty card, phone number, app sign-in code or payment card to look her up.")
	}
	var (
		q       string
		args    []any
		unknown *Error
	)
	switch by {
	case ByLoyaltyCard:
		q, args = sqlByCard, []any{value}
		unknown = refuse(ErrUnknownCustomer, "No customer with loyalty card %s; check the card or sign her up.", value)
	case ByPhone:
		p, err := normalizePhone(value)
		if err != nil {
			return CustomerRef{}, err
		}
		alt := "+" + p
		if strings.HasPrefix(p, "+") {
			alt = p[1:]
		}
		q, args = sqlByPhone, []any{p, alt}
		unknown = refuse(ErrUnknownCustomer, "No customer with phone number %s; check the number or sign her up.", value)
	case BySignInToken:
		id, err := s.checkSignIn(value)
		if err != nil {
			return CustomerRef{}, err
		}
		q, args = sqlByID, []any{id}
		unknown = refuse(ErrUnknownCustomer, "Her app signed her in as customer %s, whom this store does not know yet; use her loyalty card or sign her up.", id)
	case ByCardToken:
		q = sqlByCardToken
		args = []any{value}
		unknown = refuse(ErrUnknownCustomer, "No customer has paid with that card; look her up by loyalty card or phone, or sign her up.")
	default:
		return CustomerRef{}, refuse(ErrInvalid, "Look a customer up by card, phone, token or card_token, not %q.", by)
	}
	var found []CustomerRef
	err := s.query(func(db *retail.DB) error {
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c CustomerRef
			if err := scanRef(rows, &c); err != nil {
				return err
			}
			found = append(found, c)
		}
		return rows.Err()
	})
	if err != nil {
		return CustomerRef{}, fmt.Errorf("find customer by %s: %w", by, err)
	}
	switch len(found) {
	case 0:
		return CustomerRef{}, unknown
	case 1:
		found[0].By = by
		return found[0], nil
	default:
		return CustomerRef{}, refuse(ErrAmbiguousCustomer, "Phone number %s belongs to more than one customer; look her up by loyalty card.", value)
	}
}

// normalizePhone keeps the digits and a leading '+' of a typed phone
// number; punctuation people type is dropped, anything else refused.
func normalizePhone(in string) (string, error) {
	var b strings.Builder
	for i, r := range in {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case strings.ContainsRune(" -./()", r):
		default:
			return "", refuse(ErrInvalid, "Phone number %q has characters other than digits; type digits only, with + and the country code if she has one.", in)
		}
	}
	p := b.String()
	if strings.TrimPrefix(p, "+") == "" {
		return "", refuse(ErrInvalid, "Phone number %q has no digits.", in)
	}
	return p, nil
}

// App sign-in codes, shown by the wallet app as a QR code:
//
//	ECSI:<customer id>.<expiry>.<signature>
//
// expiry: unix seconds in base 36; signature: the first 100 bits (20
// base32 characters) of HMAC-SHA256(region coupon key,
// "ECSI|customer|expiry"). The "ECSI|" prefix keeps a coupon signature
// (made over "CPN|...") from ever checking out as a sign-in code. Any
// store of the region checks a code offline.
const signInPrefix = "ECSI:"

func (c couponSigner) signSignIn(customer, expiry string) string {
	m := hmac.New(sha256.New, c.key)
	fmt.Fprintf(m, "ECSI|%s|%s", customer, expiry)
	return b32.EncodeToString(m.Sum(nil))[:20]
}

// SignInToken is the code the wallet app shows to sign customerID in at
// any store of the region until expires (to the second).
func (s *Store) SignInToken(customerID string, expires time.Time) string {
	expiry := strconv.FormatInt(expires.Unix(), 36)
	return signInPrefix + customerID + "." + expiry + "." + s.coupons.signSignIn(customerID, expiry)
}

// checkSignIn returns the customer a sign-in code names, if it checks
// out and has not expired.
func (s *Store) checkSignIn(code string) (string, error) {
	rest, ok := strings.CutPrefix(code, signInPrefix)
	sig := strings.LastIndexByte(rest, '.')
	if !ok || sig < 0 {
		return "", refuse(ErrSignInInvalid, "That is not an Endcap app sign-in code; ask her to open the app again, or use her loyalty card.")
	}
	exp := strings.LastIndexByte(rest[:sig], '.')
	if exp <= 0 {
		return "", refuse(ErrSignInInvalid, "That is not an Endcap app sign-in code; ask her to open the app again, or use her loyalty card.")
	}
	customer, expiry := rest[:exp], rest[exp+1:sig]
	secs, err := strconv.ParseInt(expiry, 36, 64)
	if err != nil || !hmac.Equal([]byte(rest[sig+1:]), []byte(s.coupons.signSignIn(customer, expiry))) {
		return "", refuse(ErrSignInInvalid, "The app sign-in code does not check out; do not accept it. Ask for her loyalty card.")
	}
	if at := time.Unix(secs, 0); !s.now().Before(at) {
		return "", refuse(ErrSignInExpired, "Her app sign-in code expired at %s; ask her to refresh it in the app.", at.UTC().Format("2 Jan 15:04 MST"))
	}
	return customer, nil
}

// Customer360 is what a clerk sees about a shopper: who she is, how she
// shops in every channel (web, phone, store, kiosk), how she answers
// promotions, her visits, returns, service contacts, wish list and
// abandoned carts, and what to suggest. Definitions are in docs/api.md,
// "Customers". Lists are never null in JSON.
type Customer360 struct {
	Customer CustomerProfile `json:"customer"`
	AsOf     time.Time       `json:"as_of"` // the store's clock when it was read
	Tenure   Tenure          `json:"tenure"`
	Orders   OrderStats      `json:"orders"`
	// TopCategories: up to 5, by spend.
	TopCategories []CategoryStat `json:"top_categories"`
	Promotions    PromotionStats `json:"promotions"`
	Visits        VisitStats     `json:"visits"`
	// Complements of what she bought that she has not bought, and whether
	// she was offered a promotion on them (up to 10, offered first).
	Complements []Complement `json:"complements"`
	// AlsoBought: what other buyers of her top products bought with them
	// in the same order (up to 5; a sample, see CoPurchase).
	AlsoBought []CoPurchase  `json:"also_bought"`
	Service    ServiceStats  `json:"service"`
	Returns    ReturnStats   `json:"returns"`
	WishList   []WishItem    `json:"wish_list"`
	Carts      AbandonedCart `json:"abandoned_carts"`
	// Notes: what could not be worked out and why (e.g. co-purchases
	// without their index).
	Notes []string `json:"notes,omitempty"`
}

// CustomerProfile is her record.
type CustomerProfile struct {
	CustomerRef
	Email   string         `json:"email,omitempty"`
	Contact retail.Contact `json:"contact"` // how she agreed to be contacted
}

// Tenure is how long she has shopped here and how she came.
type Tenure struct {
	Since       time.Time          `json:"since"`
	Days        int                `json:"days"`
	AcquiredVia retail.Acquisition `json:"acquired_via"`
	// AcquiredBy is the referring customer, the campaign's promotion or
	// the clerk who signed her up; AcquiredByName is their name.
	AcquiredBy     string `json:"acquired_by,omitempty"`
	AcquiredByName string `json:"acquired_by_name,omitempty"`
	AcquiredStore  string `json:"acquired_store,omitempty"`
	Summary        string `json:"summary"` // one line for the clerk
}

// OrderStats counts her orders that were not cancelled, in every channel.
type OrderStats struct {
	Count        int                            `json:"count"`
	Cancelled    int                            `json:"cancelled"`
	SpendCents   int64                          `json:"spend_cents"`
	AverageCents int64                          `json:"average_cents"` // SpendCents / Count, rounded
	Units        int64                          `json:"units"`
	ByChannel    map[retail.Channel]ChannelStat `json:"by_channel"`
	FirstAt      *time.Time                     `json:"first_at,omitempty"`
	LastAt       *time.Time                     `json:"last_at,omitempty"`
}

// ChannelStat is her orders in one channel.
type ChannelStat struct {
	Orders     int   `json:"orders"`
	SpendCents int64 `json:"spend_cents"`
}

// CategoryStat is what she bought in one category.
type CategoryStat struct {
	Category   string `json:"category"`
	Units      int64  `json:"units"`
	SpendCents int64  `json:"spend_cents"`
}

// PromotionStats is how she answers offers. ResponseRate is redeemed /
// (redeemed + ignored + expired): pending offers are not counted.
type PromotionStats struct {
	Offers       int     `json:"offers"`
	Pending      int     `json:"pending"`
	Redeemed     int     `json:"redeemed"`
	Ignored      int     `json:"ignored"`
	Expired      int     `json:"expired"`
	ResponseRate float64 `json:"response_rate"`
	// Response: "responds" (rate ≥ 1/3), "sometimes" (below), "never" (no
	// redemption in 3 or more decided offers), "unknown" (fewer than 3
	// decided offers and none redeemed).
	Response string          `json:"response"`
	ByType   []PromoTypeStat `json:"by_type"` // every type she was offered, best rate first
	// BuysWith: the promotion types she redeemed, best rate first.
	BuysWith []retail.PromotionType `json:"buys_with"`
}

// PromoTypeStat is how she answered one type of promotion.
type PromoTypeStat struct {
	Type     retail.PromotionType `json:"type"`
	Offered  int                  `json:"offered"`
	Redeemed int                  `json:"redeemed"`
	Decided  int                  `json:"decided"` // redeemed, ignored or expired
	Rate     float64              `json:"rate"`    // Redeemed / Decided
}

// VisitStats is her store visits (sign-ins), and whether she buys on
// the visit or comes back later. A visit "bought the same day" when an
// order was placed at that store on the same local calendar day (the
// store's time zone); otherwise it "bought later" when she placed an
// order in any channel within 7 days after the visit.
type VisitStats struct {
	Count       int        `json:"count"`
	Last180Days int        `json:"last_180_days"`
	Per30Days   float64    `json:"per_30_days"` // Last180Days / 6
	LastAt      *time.Time `json:"last_at,omitempty"`
	// PerOrder is visits per order (all time; 0 without orders).
	PerOrder      float64 `json:"per_order"`
	BoughtSameDay int     `json:"bought_same_day"`
	BoughtLater   int     `json:"bought_later"`
	NoPurchase    int     `json:"no_purchase"`
	SameDayRate   float64 `json:"same_day_rate"` // BoughtSameDay / Count
	LaterRate     float64 `json:"later_rate"`    // BoughtLater / Count
	// Pattern: "buys_on_visit" (same day is the most common outcome),
	// "comes_back_later" (later is), "browses" (most visits end without
	// an order), "" without visits.
	Pattern string `json:"pattern"`
}

// Complement is a product that goes with one she bought.
type Complement struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	StockHere  int64  `json:"stock_here"` // available at this store
	For        string `json:"for"`        // the SKU she bought
	ForName    string `json:"for_name"`
	// Offered: she was made an offer of a promotion on this SKU (or its
	// category); OfferOutcome is the latest such offer's outcome.
	Offered      bool                `json:"offered"`
	OfferOutcome retail.OfferOutcome `json:"offer_outcome,omitempty"`
}

// CoPurchase is a product other shoppers bought in the same order as one
// of hers. It is a sample: Sampled is how many of the latest orders
// containing With (highest order id, hers left out; at most
// coPurchaseOrders) were looked at, and Buyers how many of them also
// contain SKU. Each sampled order counts as one buyer: among the latest
// orders of a product the same shopper rarely appears twice, and telling
// them apart would cost a look-up of every order.
type CoPurchase struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	StockHere  int64  `json:"stock_here"`
	With       string `json:"with"`
	WithName   string `json:"with_name"`
	Buyers     int    `json:"buyers"`
	Sampled    int    `json:"sampled"`
	Percent    int    `json:"percent"` // Buyers * 100 / Sampled, rounded
	Why        string `json:"why"`     // "bought with Trail shoe by 34% of buyers"
}

// ServiceStats is her service contacts. A contact ended well when it was
// resolved and she did not say she was unhappy (satisfied or not asked).
type ServiceStats struct {
	Contacts    int              `json:"contacts"`
	Resolved    int              `json:"resolved"`
	Open        int              `json:"open"`
	Satisfied   int              `json:"satisfied"`
	Unsatisfied int              `json:"unsatisfied"`
	EndedWell   int              `json:"ended_well"`
	Recent      []ServiceContact `json:"recent"` // the latest 5
}

// ServiceContact is one contact.
type ServiceContact struct {
	ID        string                `json:"id"`
	Channel   retail.ContactChannel `json:"channel"`
	Reason    string                `json:"reason"`
	OpenedAt  time.Time             `json:"opened_at"`
	Resolved  bool                  `json:"resolved"`
	Satisfied *bool                 `json:"satisfied"` // null: not asked
	EndedWell bool                  `json:"ended_well"`
}

// ReturnStats is her returns. Rate is units returned / units bought (not
// cancelled orders); returns without an order count in the numerator, so
// it can exceed 1. HighMaintenance is set when she made at least
// highMaintenanceReturns returns and Rate is above highMaintenanceRate,
// or when her returns without an order in the region's cap window reach
// the cap minus one (the next one or two will be over it).
type ReturnStats struct {
	Returns             int     `json:"returns"`
	WithoutOrder        int     `json:"without_order"`
	UnitsReturned       int64   `json:"units_returned"`
	UnitsBought         int64   `json:"units_bought"`
	RefundCents         int64   `json:"refund_cents"`
	Rate                float64 `json:"rate"`
	ReceiptlessInWindow int     `json:"receiptless_in_window"`
	ReceiptlessCap      int     `json:"receiptless_cap"`
	CapDays             int     `json:"cap_days"`
	HighMaintenance     bool    `json:"high_maintenance"`
	Why                 string  `json:"why,omitempty"` // why she is high maintenance
	// StoreCreditCents is what she has left of refunds paid as store
	// credit (retail.StoreCreditBalance).
	StoreCreditCents retail.Cents `json:"store_credit_cents"`
}

// The high-maintenance thresholds (ReturnStats).
const (
	highMaintenanceReturns = 3
	highMaintenanceRate    = 0.30
)

// WishItem is a product on her wish list, newest first.
type WishItem struct {
	SKU        string            `json:"sku"`
	Name       string            `json:"name"`
	PriceCents int64             `json:"price_cents"`
	AddedAt    time.Time         `json:"added_at"`
	Source     retail.WishSource `json:"source"`
	Note       string            `json:"note,omitempty"`
	StockHere  int64             `json:"stock_here"`
}

// AbandonedCart is her carts left before buying, by the furthest
// checkout step they reached.
type AbandonedCart struct {
	Count  int                         `json:"count"`
	ByStep map[retail.CheckoutStep]int `json:"by_step"`
	Recent []Cart                      `json:"recent"` // the latest 5
}

// Cart is one abandoned cart and what was left in it.
type Cart struct {
	ID      string              `json:"id"`
	Channel retail.Channel      `json:"channel"`
	Step    retail.CheckoutStep `json:"step"`
	At      time.Time           `json:"at"`
	Items   []BasketLine        `json:"items"`
}

// querier runs the reads of one operation. A *sql.Conn inside a read
// transaction (snapshot) is one.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// snapshot runs fn on one connection inside one read transaction, so every
// query fn makes sees the same state of the replica (a sale applied
// halfway through cannot make the counts disagree). Readers never block
// the replica's writer (WAL).
func (s *Store) snapshot(ctx context.Context, fn func(q querier) error) error {
	return s.query(func(db *retail.DB) error {
		rc, err := s.readers.take(ctx, db)
		if err != nil {
			return err
		}
		// A plain BEGIN is deferred: it takes no lock until the first
		// read, and never the write lock.
		if _, err := rc.conn.ExecContext(ctx, "BEGIN"); err != nil {
			rc.close()
			return err
		}
		err = fn(rc)
		if _, rerr := rc.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			rc.close() // never reuse a connection inside a transaction
			return err
		}
		s.readers.give(rc)
		return err
	})
}

// readConn is a connection the store keeps for its reads, with the
// statements prepared on it: a customer 360 makes 17 queries, and
// preparing them every time took two thirds of a small customer's call.
type readConn struct {
	db    *retail.DB
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

func (rc *readConn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := rc.stmts[query]; ok {
		return st, nil
	}
	st, err := rc.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	rc.stmts[query] = st
	return st, nil
}

func (rc *readConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := rc.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (rc *readConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := rc.stmt(ctx, query)
	if err != nil {
		return rc.conn.QueryRowContext(ctx, query, args...) // reports the error
	}
	return st.QueryRowContext(ctx, args...)
}

func (rc *readConn) close() {
	for _, st := range rc.stmts {
		st.Close()
	}
	rc.conn.Close()
}

// readPool keeps up to 4 idle read connections of the replica's current
// database (a bootstrap's new database starts afresh).
type readPool struct {
	mu   sync.Mutex
	idle []*readConn
}

func (p *readPool) take(ctx context.Context, db *retail.DB) (*readConn, error) {
	p.mu.Lock()
	for len(p.idle) > 0 {
		rc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if rc.db == db {
			p.mu.Unlock()
			return rc, nil
		}
		rc.close()
	}
	p.mu.Unlock()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &readConn{db: db, conn: conn, stmts: map[string]*sql.Stmt{}}, nil
}

// closeAll closes the idle connections (before the database closes).
func (p *readPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rc := range p.idle {
		rc.close()
	}
	p.idle = nil
}

func (p *readPool) give(rc *readConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) < 4 {
		p.idle = append(p.idle, rc)
		return
	}
	rc.close()
}

// each runs query and calls fn for every row.
func each(ctx context.Context, q querier, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// jsonList is a list of strings as a JSON array, for "IN (SELECT value
// FROM json_each(?))": one parameter however long the list.
func jsonList(items []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(s))
	}
	b.WriteByte(']')
	return b.String()
}

func ms(t int64) time.Time { return time.UnixMilli(t).UTC() }

// rate is n/d, 0 when d is 0.
func rate(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// history is what several operations read about a customer.
type history struct {
	profile  CustomerProfile
	via      retail.Acquisition
	by       string
	acqStore string
	orders   []orderRow // not cancelled, by placed_at
	canceled int
	mine     map[string]bool // all her orders' ids, cancelled too
	skus     []*skuStat      // what she bought, most units first
	bought   map[string]*skuStat
}

type orderRow struct {
	id, store string
	channel   retail.Channel
	total, at int64
}

type skuStat struct {
	sku, name, category string
	price               int64
	units, spend, last  int64
}

// loadProfile reads her record; ErrUnknownCustomer if there is none.
func loadProfile(ctx context.Context, q querier, id string, h *history) error {
	p := &h.profile
	var since int64
	err := q.QueryRowContext(ctx, sqlProfile, id).
		Scan(&p.ID, &p.Name, &p.LoyaltyCard, &p.Phone, &p.HomeStore, &p.Language, &since,
			&p.Email, &p.Contact.Email, &p.Contact.SMS, &p.Contact.Push, &p.Contact.Mail, &h.via, &h.by, &h.acqStore)
	if errors.Is(err, sql.ErrNoRows) {
		return refuse(ErrUnknownCustomer, "No customer %s in this region; look her up by loyalty card or phone, or sign her up.", id)
	}
	if err != nil {
		return fmt.Errorf("customer %s: %w", id, err)
	}
	p.Since = ms(since)
	return nil
}

// loadOrders reads her orders (orders_customer) and what she bought in
// them (order_lines by primary key, products).
func loadOrders(ctx context.Context, q querier, id string, h *history) error {
	h.mine = map[string]bool{}
	err := each(ctx, q, sqlOrders, []any{id}, func(r *sql.Rows) error {
		var o orderRow
		var status retail.OrderStatus
		if err := r.Scan(&o.id, &o.channel, &o.store, &status, &o.total, &o.at); err != nil {
			return err
		}
		h.mine[o.id] = true
		if status == retail.OrderCancelled {
			h.canceled++
			return nil
		}
		h.orders = append(h.orders, o)
		return nil
	})
	if err != nil {
		return fmt.Errorf("orders of %s: %w", id, err)
	}
	h.bought = map[string]*skuStat{}
	err = each(ctx, q, sqlBought, []any{id}, func(r *sql.Rows) error {
		var st skuStat
		if err := r.Scan(&st.sku, &st.name, &st.category, &st.price, &st.units, &st.spend, &st.last); err != nil {
			return err
		}
		h.skus = append(h.skus, &st)
		h.bought[st.sku] = &st
		return nil
	})
	if err != nil {
		return fmt.Errorf("products bought by %s: %w", id, err)
	}
	sort.Slice(h.skus, func(i, j int) bool {
		a, b := h.skus[i], h.skus[j]
		if a.units != b.units {
			return a.units > b.units
		}
		if a.last != b.last {
			return a.last > b.last
		}
		return a.sku < b.sku
	})
	return nil
}

// topSKUs is up to n of the SKUs she bought most of.
func (h *history) topSKUs(n int) []*skuStat { return h.skus[:min(n, len(h.skus))] }

func (h *history) orderStats() OrderStats {
	st := OrderStats{Count: len(h.orders), Cancelled: h.canceled, ByChannel: map[retail.Channel]ChannelStat{}}
	for _, o := range h.orders {
		st.SpendCents += o.total
		c := st.ByChannel[o.channel]
		c.Orders++
		c.SpendCents += o.total
		st.ByChannel[o.channel] = c
	}
	for _, s := range h.skus {
		st.Units += s.units
	}
	if n := len(h.orders); n > 0 {
		st.AverageCents = int64(math.Round(float64(st.SpendCents) / float64(n)))
		first, last := ms(h.orders[0].at), ms(h.orders[n-1].at)
		st.FirstAt, st.LastAt = &first, &last
	}
	return st
}

func (h *history) topCategories(n int) []CategoryStat {
	by := map[string]*CategoryStat{}
	var out []CategoryStat
	for _, s := range h.skus {
		c := by[s.category]
		if c == nil {
			c = &CategoryStat{Category: s.category}
			by[s.category] = c
		}
		c.Units += s.units
		c.SpendCents += s.spend
	}
	for _, c := range by {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].SpendCents != out[j].SpendCents {
			return out[i].SpendCents > out[j].SpendCents
		}
		if out[i].Units != out[j].Units {
			return out[i].Units > out[j].Units
		}
		return out[i].Category < out[j].Category
	})
	if out == nil {
		out = []CategoryStat{}
	}
	return out[:min(n, len(out))]
}

// tenure says how long she has shopped here and who brought her.
func tenure(ctx context.Context, q querier, h *history, now time.Time) (Tenure, error) {
	t := Tenure{Since: h.profile.Since, Days: int(now.Sub(h.profile.Since) / (24 * time.Hour)),
		AcquiredVia: h.via, AcquiredBy: h.by, AcquiredStore: h.acqStore}
	if h.by != "" {
		query := sqlClerkName
		switch h.via {
		case retail.AcquiredReferral:
			query = sqlCustomerName
		case retail.AcquiredCampaign:
			query = sqlPromotionName
		}
		err := q.QueryRowContext(ctx, query, h.by).Scan(&t.AcquiredByName)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return t, fmt.Errorf("who acquired %s: %w", h.profile.ID, err)
		}
	}
	who := t.AcquiredByName
	if who == "" {
		who = t.AcquiredBy
	}
	var how string
	switch t.AcquiredVia {
	case retail.AcquiredReferral:
		how = "referred by " + who
	case retail.AcquiredCampaign:
		how = "came with the campaign " + who
	case retail.AcquiredWeb:
		how = "signed up on the web"
	case retail.AcquiredPhone:
		how = "signed up by phone"
	default:
		how = "walked in"
		if t.AcquiredStore != "" {
			how += " at store " + t.AcquiredStore
		}
		if who != "" {
			how += ", signed up by " + who
		}
	}
	if t.AcquiredVia == retail.AcquiredWeb || t.AcquiredVia == retail.AcquiredPhone {
		if who != "" {
			how += " with " + who
		}
	}
	t.Summary = fmt.Sprintf("Customer since %s (%s); %s.", t.Since.Format("2 Jan 2006"), ageWords(t.Days), how)
	return t, nil
}

// ageWords says a number of days the way a clerk would.
func ageWords(days int) string {
	switch {
	case days < 1:
		return "new today"
	case days < 60:
		return plural(days, "day")
	case days < 730:
		return plural(days/30, "month")
	default:
		return plural(days/365, "year")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// offerRow is one offer made to her, with its promotion.
type offerRow struct {
	typ      retail.PromotionType
	sku, cat string
	outcome  retail.OfferOutcome
	at       int64
}

func loadOffers(ctx context.Context, q querier, id string) ([]offerRow, error) {
	var out []offerRow
	err := each(ctx, q, sqlOffers, []any{id},
		func(r *sql.Rows) error {
			var o offerRow
			if err := r.Scan(&o.typ, &o.sku, &o.cat, &o.outcome, &o.at); err != nil {
				return err
			}
			out = append(out, o)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("offers to %s: %w", id, err)
	}
	return out, nil
}

func promotionStats(offers []offerRow) PromotionStats {
	st := PromotionStats{ByType: []PromoTypeStat{}, BuysWith: []retail.PromotionType{}}
	by := map[retail.PromotionType]*PromoTypeStat{}
	for _, o := range offers {
		st.Offers++
		t := by[o.typ]
		if t == nil {
			t = &PromoTypeStat{Type: o.typ}
			by[o.typ] = t
		}
		t.Offered++
		switch o.outcome {
		case retail.OutcomePending:
			st.Pending++
		case retail.OutcomeRedeemed:
			st.Redeemed++
			t.Redeemed++
			t.Decided++
		case retail.OutcomeIgnored:
			st.Ignored++
			t.Decided++
		case retail.OutcomeExpired:
			st.Expired++
			t.Decided++
		}
	}
	decided := st.Redeemed + st.Ignored + st.Expired
	st.ResponseRate = rate(st.Redeemed, decided)
	switch {
	case st.Redeemed > 0 && st.ResponseRate >= 1.0/3:
		st.Response = "responds"
	case st.Redeemed > 0:
		st.Response = "sometimes"
	case decided >= 3:
		st.Response = "never"
	default:
		st.Response = "unknown"
	}
	for _, t := range by {
		t.Rate = rate(t.Redeemed, t.Decided)
		st.ByType = append(st.ByType, *t)
	}
	sort.Slice(st.ByType, func(i, j int) bool {
		a, b := st.ByType[i], st.ByType[j]
		if a.Rate != b.Rate {
			return a.Rate > b.Rate
		}
		if a.Redeemed != b.Redeemed {
			return a.Redeemed > b.Redeemed
		}
		return a.Type < b.Type
	})
	for _, t := range st.ByType {
		if t.Redeemed > 0 {
			st.BuysWith = append(st.BuysWith, t.Type)
		}
	}
	return st
}

// buyLaterDays is how long after a visit an order counts as her coming
// back for it (VisitStats.BoughtLater).
const buyLaterDays = 7

func visitStats(ctx context.Context, q querier, h *history, now time.Time) (VisitStats, error) {
	var st VisitStats
	zones := map[string]*time.Location{}
	from180 := now.AddDate(0, 0, -180).UnixMilli()
	orders := h.orders // by placed_at
	err := each(ctx, q, sqlVisits, []any{h.profile.ID}, func(r *sql.Rows) error {
		var store, tz string
		var at int64
		if err := r.Scan(&store, &at, &tz); err != nil {
			return err
		}
		st.Count++
		if at > from180 && at <= now.UnixMilli() {
			st.Last180Days++
		}
		last := ms(at)
		st.LastAt = &last
		loc := zones[tz]
		if loc == nil {
			var err error
			if loc, err = time.LoadLocation(tz); err != nil {
				loc = time.UTC
			}
			zones[tz] = loc
		}
		lt := time.UnixMilli(at).In(loc)
		dayStart := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
		start, end := dayStart.UnixMilli(), dayStart.AddDate(0, 0, 1).UnixMilli()
		i := sort.Search(len(orders), func(i int) bool { return orders[i].at >= start })
		for ; i < len(orders) && orders[i].at < end; i++ {
			if orders[i].store == store {
				st.BoughtSameDay++
				return nil
			}
		}
		j := sort.Search(len(orders), func(j int) bool { return orders[j].at >= end })
		if j < len(orders) && orders[j].at <= at+buyLaterDays*24*int64(time.Hour/time.Millisecond) {
			st.BoughtLater++
			return nil
		}
		st.NoPurchase++
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("visits of %s: %w", h.profile.ID, err)
	}
	st.Per30Days = float64(st.Last180Days) / 6
	if len(h.orders) > 0 {
		st.PerOrder = float64(st.Count) / float64(len(h.orders))
	}
	st.SameDayRate, st.LaterRate = rate(st.BoughtSameDay, st.Count), rate(st.BoughtLater, st.Count)
	switch {
	case st.Count == 0:
	case st.NoPurchase > st.BoughtSameDay && st.NoPurchase > st.BoughtLater:
		st.Pattern = "browses"
	case st.BoughtLater > st.BoughtSameDay:
		st.Pattern = "comes_back_later"
	default:
		st.Pattern = "buys_on_visit"
	}
	return st, nil
}

// returnStats reads her returns (returns_customer) and the region's cap
// on returns without an order.
func returnStats(ctx context.Context, q querier, h *history, now time.Time) (ReturnStats, error) {
	st := ReturnStats{ReceiptlessCap: 3, CapDays: 45}
	for _, s := range h.skus {
		st.UnitsBought += s.units
	}
	err := each(ctx, q, sqlReturnSettings, nil,
		func(r *sql.Rows) error {
			var k, v string
			if err := r.Scan(&k, &v); err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("setting %s: %w", k, err)
			}
			if k == "receiptless_cap_count" {
				st.ReceiptlessCap = n
			} else {
				st.CapDays = n
			}
			return nil
		})
	if err != nil {
		return st, fmt.Errorf("return settings: %w", err)
	}
	windowFrom := now.UnixMilli() - int64(st.CapDays)*24*int64(time.Hour/time.Millisecond)
	err = each(ctx, q, sqlReturns, []any{h.profile.ID}, func(r *sql.Rows) error {
		var noOrder bool
		var at, refund, units int64
		if err := r.Scan(&noOrder, &at, &refund, &units); err != nil {
			return err
		}
		st.Returns++
		st.UnitsReturned += units
		st.RefundCents += refund
		if noOrder {
			st.WithoutOrder++
			if at > windowFrom {
				st.ReceiptlessInWindow++
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("returns of %s: %w", h.profile.ID, err)
	}
	if st.UnitsBought > 0 {
		st.Rate = float64(st.UnitsReturned) / float64(st.UnitsBought)
	}
	if st.StoreCreditCents, err = retail.StoreCreditBalance(ctx, q, h.profile.ID); err != nil {
		return st, err
	}
	near := max(st.ReceiptlessCap-1, 1)
	switch {
	case st.Returns >= highMaintenanceReturns && (st.Rate > highMaintenanceRate || st.UnitsBought == 0):
		st.HighMaintenance = true
		st.Why = fmt.Sprintf("returned %d of %d units bought (%d%%) in %d returns", st.UnitsReturned, st.UnitsBought,
			int(math.Round(st.Rate*100)), st.Returns)
		if st.UnitsBought == 0 {
			st.Why = fmt.Sprintf("returned %d units in %d returns and bought nothing on record", st.UnitsReturned, st.Returns)
		}
	case st.ReceiptlessInWindow >= near:
		st.HighMaintenance = true
		st.Why = fmt.Sprintf("made %s without a receipt in the last %d days; the cap is %d",
			plural(st.ReceiptlessInWindow, "return"), st.CapDays, st.ReceiptlessCap)
	}
	return st, nil
}

func serviceStats(ctx context.Context, q querier, id string) (ServiceStats, error) {
	st := ServiceStats{Recent: []ServiceContact{}}
	err := each(ctx, q, sqlService, []any{id}, func(r *sql.Rows) error {
		var c ServiceContact
		var at int64
		var sat sql.NullBool
		if err := r.Scan(&c.ID, &c.Channel, &c.Reason, &at, &c.Resolved, &sat); err != nil {
			return err
		}
		c.OpenedAt = ms(at)
		if sat.Valid {
			c.Satisfied = &sat.Bool
		}
		c.EndedWell = c.Resolved && (!sat.Valid || sat.Bool)
		st.Contacts++
		if c.Resolved {
			st.Resolved++
		} else {
			st.Open++
		}
		switch {
		case !sat.Valid:
		case sat.Bool:
			st.Satisfied++
		default:
			st.Unsatisfied++
		}
		if c.EndedWell {
			st.EndedWell++
		}
		if len(st.Recent) < 5 {
			st.Recent = append(st.Recent, c)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("service contacts of %s: %w", id, err)
	}
	return st, nil
}

// wishList is her wish list with what this store has of each, newest first.
func wishList(ctx context.Context, q querier, id, store string) ([]WishItem, error) {
	out := []WishItem{}
	err := each(ctx, q, sqlWishList, []any{store, id}, func(r *sql.Rows) error {
		var w WishItem
		var at int64
		if err := r.Scan(&w.SKU, &w.Name, &w.PriceCents, &at, &w.Source, &w.Note, &w.StockHere); err != nil {
			return err
		}
		w.AddedAt, w.StockHere = ms(at), max(w.StockHere, 0)
		out = append(out, w)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("wish list of %s: %w", id, err)
	}
	return out, nil
}

func abandonedCarts(ctx context.Context, q querier, id string) (AbandonedCart, error) {
	st := AbandonedCart{ByStep: map[retail.CheckoutStep]int{}, Recent: []Cart{}}
	recent := map[string]*Cart{}
	err := each(ctx, q, sqlCarts, []any{id}, func(r *sql.Rows) error {
		var c Cart
		var at int64
		if err := r.Scan(&c.ID, &c.Channel, &c.Step, &at); err != nil {
			return err
		}
		c.At, c.Items = ms(at), []BasketLine{}
		st.Count++
		st.ByStep[c.Step]++
		if len(st.Recent) < 5 {
			st.Recent = append(st.Recent, c)
		}
		return nil
	})
	if err != nil || len(st.Recent) == 0 {
		return st, err
	}
	for i := range st.Recent {
		recent[st.Recent[i].ID] = &st.Recent[i]
	}
	// What was left in them: adds minus removes, from her cart events
	// (cart_events_customer), in the order first added.
	qty := map[string]map[string]int64{}
	err = each(ctx, q, sqlCartItems, []any{id}, func(r *sql.Rows) error {
		var cart, sku string
		var kind retail.CartEventKind
		var n int64
		if err := r.Scan(&cart, &kind, &sku, &n); err != nil {
			return err
		}
		c := recent[cart]
		if c == nil {
			return nil
		}
		if qty[cart] == nil {
			qty[cart] = map[string]int64{}
		}
		if _, seen := qty[cart][sku]; !seen {
			c.Items = append(c.Items, BasketLine{SKU: sku})
		}
		if kind == retail.CartAdd {
			qty[cart][sku] += n
		} else {
			qty[cart][sku] -= n
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("cart events of %s: %w", id, err)
	}
	for _, c := range recent {
		items := c.Items[:0]
		for _, it := range c.Items {
			if n := qty[c.ID][it.SKU]; n > 0 {
				items = append(items, BasketLine{SKU: it.SKU, Qty: n})
			}
		}
		c.Items = items
	}
	return st, nil
}

// product is a product as a suggestion shows it.
type product struct {
	sku, name, category string
	price, stock        int64 // stock: available at this store, never below 0
	active              bool
}

// complementRow is a complement of one of the given SKUs.
type complementRow struct {
	of string
	product
}

// complementsOf lists the active complements of skus (product_complements
// by primary key), in the order of skus.
func complementsOf(ctx context.Context, q querier, skus []string, store string) ([]complementRow, error) {
	if len(skus) == 0 {
		return nil, nil
	}
	var out []complementRow
	err := each(ctx, q, sqlComplements, []any{store, jsonList(skus)}, func(r *sql.Rows) error {
		var c complementRow
		if err := r.Scan(&c.of, &c.sku, &c.name, &c.category, &c.price, &c.stock); err != nil {
			return err
		}
		c.stock = max(c.stock, 0)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("complements: %w", err)
	}
	rank := map[string]int{}
	for i, s := range skus {
		rank[s] = i
	}
	sort.SliceStable(out, func(i, j int) bool {
		if rank[out[i].of] != rank[out[j].of] {
			return rank[out[i].of] < rank[out[j].of]
		}
		return out[i].sku < out[j].sku
	})
	return out, nil
}

// complements360 is the complements of what she bought that she has not
// bought, with whether she was offered a promotion on them.
func complements360(ctx context.Context, q querier, h *history, offers []offerRow, store string) ([]Complement, error) {
	skus := make([]string, len(h.skus))
	for i, s := range h.skus {
		skus[i] = s.sku
	}
	rows, err := complementsOf(ctx, q, skus, store)
	if err != nil {
		return nil, err
	}
	out := []Complement{}
	seen := map[string]bool{}
	for _, c := range rows {
		if h.bought[c.sku] != nil || seen[c.sku] {
			continue
		}
		seen[c.sku] = true
		cm := Complement{SKU: c.sku, Name: c.name, PriceCents: c.price, StockHere: c.stock, For: c.of, ForName: h.bought[c.of].name}
		for _, o := range offers { // by made_at: the last match is the latest
			if o.sku == c.sku || (o.sku == "" && o.cat != "" && o.cat == c.category) {
				cm.Offered, cm.OfferOutcome = true, o.outcome
			}
		}
		out = append(out, cm)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Offered && !out[j].Offered })
	return out[:min(10, len(out))], nil
}

// Customer360 returns everything a clerk needs about a customer in one
// call, read from one snapshot of the replica with indexed look-ups on
// customer_id only (see docs/api.md for the definitions and the cost).
// An unknown id is ErrUnknownCustomer.
func (s *Store) Customer360(ctx context.Context, customerID string) (Customer360, error) {
	if customerID == "" {
		return Customer360{}, refuse(ErrInvalid, "Which customer? Look her up first.")
	}
	if err := ctx.Err(); err != nil {
		return Customer360{}, err
	}
	now := s.now()
	out := Customer360{AsOf: now.UTC()}
	err := s.snapshot(ctx, func(q querier) error {
		var h history
		if err := loadProfile(ctx, q, customerID, &h); err != nil {
			return err
		}
		if err := loadOrders(ctx, q, customerID, &h); err != nil {
			return err
		}
		out.Customer = h.profile
		out.Orders = h.orderStats()
		out.TopCategories = h.topCategories(5)
		var err error
		if out.Tenure, err = tenure(ctx, q, &h, now); err != nil {
			return err
		}
		offers, err := loadOffers(ctx, q, customerID)
		if err != nil {
			return err
		}
		out.Promotions = promotionStats(offers)
		if out.Visits, err = visitStats(ctx, q, &h, now); err != nil {
			return err
		}
		if out.Complements, err = complements360(ctx, q, &h, offers, s.id); err != nil {
			return err
		}
		top := h.topSKUs(coPurchaseSKUs)
		with := make([]string, len(top))
		for i, t := range top {
			with[i] = t.sku
		}
		exclude := map[string]bool{}
		for sku := range h.bought {
			exclude[sku] = true
		}
		var note string
		if out.AlsoBought, note, err = coPurchases(ctx, q, &h, with, exclude, s.id, 5); err != nil {
			return err
		}
		if note != "" {
			out.Notes = append(out.Notes, note)
		}
		if out.Service, err = serviceStats(ctx, q, customerID); err != nil {
			return err
		}
		if out.Returns, err = returnStats(ctx, q, &h, now); err != nil {
			return err
		}
		if out.WishList, err = wishList(ctx, q, customerID, s.id); err != nil {
			return err
		}
		out.Carts, err = abandonedCarts(ctx, q, customerID)
		return err
	})
	if err != nil {
		return Customer360{}, err
	}
	out.Customer.By = ""
	return out, nil
}

// The reads, by name, so that TestReadsUseIndexes can check every plan:
// each one reaches its rows through an index on customer_id (or a primary
// key), never by scanning a table that grows with the region.
const (
	customerCols = "id, name, coalesce(loyalty_card, ''), phone, coalesce(home_store, ''), language, since"
	sqlByCard    = "SELECT " + customerCols + " FROM customers WHERE loyalty_card = ?"
	sqlByPhone   = "SELECT " + customerCols + " FROM customers WHERE phone IN (?, ?) ORDER BY id LIMIT 2"
	sqlByID      = "SELECT " + customerCols + " FROM customers WHERE id = ?"
	// card_token != '' lets SQLite use the partial index order_tenders_card.
	sqlByCardToken = `SELECT c.id, c.name, coalesce(c.loyalty_card, ''), c.phone, coalesce(c.home_store, ''), c.language, c.since
		FROM order_tenders t JOIN orders o ON o.id = t.order_id JOIN customers c ON c.id = o.customer_id
		WHERE t.card_token = ? AND t.card_token != '' ORDER BY o.placed_at DESC LIMIT 1`
	sqlCustomerName  = "SELECT name FROM customers WHERE id = ?"
	sqlPromotionName = "SELECT name FROM promotions WHERE id = ?"
	sqlClerkName     = "SELECT name FROM clerks WHERE id = ?"
	sqlProfile       = `SELECT id, name, coalesce(loyalty_card, ''), phone, coalesce(home_store, ''), language, since,
		email, contact_email, contact_sms, contact_push, contact_mail, acquired_via, acquired_by, coalesce(acquired_store, '')
		FROM customers WHERE id = ?`
	sqlOrders = `SELECT id, channel, coalesce(store_id, ''), status, total_cents, placed_at
		FROM orders WHERE customer_id = ? ORDER BY placed_at, id`
	// Aggregated per SKU first, so each product is looked up once, not
	// once per line.
	sqlBought = `SELECT b.sku, p.name, p.category, p.price_cents, b.units, b.spend, b.last FROM (
		SELECT l.sku, sum(l.qty) AS units, sum(l.qty * l.unit_price_cents - l.discount_cents) AS spend, max(o.placed_at) AS last
		FROM orders o JOIN order_lines l ON l.order_id = o.id
		WHERE o.customer_id = ? AND o.status != 'cancelled' GROUP BY l.sku) AS b
		JOIN products p ON p.sku = b.sku`
	sqlOffers = `SELECT p.type, coalesce(p.sku, ''), p.category, o.outcome, o.made_at
		FROM offers o JOIN promotions p ON p.id = o.promotion_id WHERE o.customer_id = ? ORDER BY o.made_at, o.id`
	sqlVisits = `SELECT v.store_id, v.at, s.timezone FROM visits v JOIN stores s ON s.id = v.store_id
		WHERE v.customer_id = ? ORDER BY v.at`
	sqlReturnSettings = `SELECT key, value FROM settings WHERE key IN ('receiptless_cap_count', 'receiptless_cap_days')`
	sqlReturns        = `SELECT r.order_id IS NULL, r.returned_at, r.refund_cents,
		(SELECT coalesce(sum(qty), 0) FROM return_lines WHERE return_id = r.id)
		FROM returns r WHERE r.customer_id = ?`
	sqlService = `SELECT id, channel, reason, opened_at, resolved, satisfied FROM service_contacts
		WHERE customer_id = ? ORDER BY opened_at DESC, id`
	sqlWishList = `SELECT w.sku, p.name, p.price_cents, w.added_at, w.source, w.note, coalesce(i.on_hand - i.reserved, 0)
		FROM wish_items w JOIN products p ON p.sku = w.sku
		LEFT JOIN inventory i ON i.location_id = ? AND i.sku = w.sku
		WHERE w.customer_id = ? ORDER BY w.added_at DESC, w.sku`
	sqlCarts = `SELECT id, channel, last_step, updated_at FROM carts WHERE customer_id = ? AND status = 'abandoned'
		ORDER BY updated_at DESC, id`
	sqlCartItems = `SELECT cart_id, kind, sku, qty FROM cart_events
		WHERE customer_id = ? AND kind IN ('add', 'remove') AND cart_id IS NOT NULL ORDER BY at, id`
	sqlComplements = `SELECT c.sku, p.sku, p.name, p.category, p.price_cents, coalesce(i.on_hand - i.reserved, 0)
		FROM product_complements c JOIN products p ON p.sku = c.complement_sku
		LEFT JOIN inventory i ON i.location_id = ? AND i.sku = c.complement_sku
		WHERE c.sku IN (SELECT value FROM json_each(?)) AND p.active = 1`
)
