package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

// Store runs one store's business operations against the edge's replica:
// every read is local, every write is one SQLite transaction that applies
// the mutation and appends it to the outbox (replication.Replica.Write),
// so all of it works with the network down. The apps and the local HTTP
// API call it.
type Store struct {
	id      string
	replica *replication.Replica
	now     func() time.Time
	log     *slog.Logger
	coupons couponSigner
	wallet  WalletPublisher
	pins    *pinGuard
	readers readPool // connections for the customer 360 and cross-sell reads
}

// WalletPublisher delivers a shopper's coupons to her phone's wallet topic.
type WalletPublisher interface {
	PublishWallet(ctx context.Context, customerID string, payload []byte) error
}

// StoreConfig configures a Store.
type StoreConfig struct {
	StoreID string // the store this edge serves (a stores row)
	Replica *replication.Replica
	// CouponKey signs coupon codes; every store of the region must have
	// the same key to validate codes offline. At least 16 bytes.
	CouponKey []byte
	Wallet    WalletPublisher // nil: coupons are not pushed
	Now       func() time.Time
	Logger    *slog.Logger
	// PINAttempts failures in a row lock a clerk for PINLockout.
	PINAttempts int
	PINLockout  time.Duration
}

// NewStore returns the operations of cfg.StoreID.
func NewStore(cfg StoreConfig) (*Store, error) {
	if cfg.StoreID == "" || cfg.Replica == nil {
		return nil, errors.New("edge: store id and replica are required")
	}
	if len(cfg.CouponKey) < 16 {
		return nil, errors.New("edge: the coupon key must be at least 16 bytes")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PINAttempts == 0 {
		cfg.PINAttempts = 5
	}
	if cfg.PINLockout == 0 {
		cfg.PINLockout = 15 * time.Minute
	}
	s := &Store{id: cfg.StoreID, replica: cfg.Replica, now: cfg.Now, log: cfg.Logger,
		coupons: couponSigner{key: cfg.CouponKey}, wallet: cfg.Wallet,
		pins: &pinGuard{attempts: cfg.PINAttempts, lockout: cfg.PINLockout}}
	cfg.Replica.OnRelease(s.readers.closeAll)
	return s, nil
}

// ID is the store's id.
func (s *Store) ID() string { return s.id }

// Error is an operation refused for a reason a person can act on: an
// unknown customer, a forged coupon, a wrong PIN. Nothing was written.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
	Status  int    `json:"-"` // the HTTP status the API answers with
}

func (e *Error) Error() string { return e.Message }

// Is matches Errors by code, so errors.Is(err, ErrWrongPIN) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func refuse(base *Error, format string, args ...any) *Error {
	return &Error{Code: base.Code, Message: fmt.Sprintf(format, args...), Status: base.Status}
}

// The refusals, by code; match them with errors.Is.
var (
	ErrUnknownCustomer = &Error{Code: "unknown_customer", Status: http.StatusNotFound}
	ErrUnknownProduct  = &Error{Code: "unknown_product", Status: http.StatusNotFound}
	ErrUnknownClerk    = &Error{Code: "unknown_clerk", Status: http.StatusNotFound}
	ErrUnknownOrder    = &Error{Code: "unknown_order", Status: http.StatusNotFound}
	ErrWrongPIN        = &Error{Code: "wrong_pin", Status: http.StatusUnauthorized}
	ErrLocked          = &Error{Code: "clerk_locked", Status: http.StatusForbidden}
	ErrNotPermitted    = &Error{Code: "not_permitted", Status: http.StatusForbidden}
	ErrForgedCoupon    = &Error{Code: "coupon_invalid", Status: http.StatusUnprocessableEntity}
	ErrCouponExpired   = &Error{Code: "coupon_expired", Status: http.StatusUnprocessableEntity}
	ErrCouponUsed      = &Error{Code: "coupon_used", Status: http.StatusConflict}
	ErrCouponNotHers   = &Error{Code: "coupon_other_customer", Status: http.StatusUnprocessableEntity}
	ErrEmptyBasket     = &Error{Code: "empty_basket", Status: http.StatusBadRequest}
	ErrInvalid         = &Error{Code: "invalid", Status: http.StatusBadRequest}
	ErrRejected        = &Error{Code: "rejected", Status: http.StatusConflict}
	ErrReturnWindow    = &Error{Code: "past_return_window", Status: http.StatusUnprocessableEntity}
	ErrOverPaid        = &Error{Code: "over_paid", Status: http.StatusUnprocessableEntity}
	ErrOutOfStock      = &Error{Code: "insufficient_stock", Status: http.StatusConflict}
	ErrNoCredit        = &Error{Code: "insufficient_credit", Status: http.StatusUnprocessableEntity}
)

// write applies one mutation locally and queues it for the hub. A request
// the local rules reject comes back as an *Error with the rule's reason.
func (s *Store) write(ctx context.Context, actor retail.Actor, body retail.Body) (retail.Result, error) {
	res, err := s.replica.Write(ctx, actor, body)
	if err != nil {
		return res, err
	}
	if res.Status == retail.StatusRejected {
		e := refuse(ErrRejected, "%s", res.Reason)
		e.Code = res.Code
		if res.Code == retail.CodeInsufficientStock {
			e.Status = ErrOutOfStock.Status
		}
		return res, e
	}
	return res, nil
}

// query runs fn with read access to the replica.
func (s *Store) query(fn func(db *retail.DB) error) error {
	db, done := s.replica.DB()
	defer done()
	return fn(db)
}

// newID is a globally unique id for an entity made here (UUIDv7).
func newID() string { return retail.NewID() }
