package retail

import (
	"errors"
	"fmt"
)

// Errors returned when opening a database.
var (
	// ErrSchemaTooNew: the file was written by a newer Endcap; this binary
	// must not touch it.
	ErrSchemaTooNew = errors.New("database schema is newer than this program")
)

// Errors returned when decoding or validating a mutation. Every decoding
// error wraps exactly one of these.
var (
	ErrMalformed      = errors.New("malformed mutation")
	ErrUnknownVersion = errors.New("unknown envelope version")
	ErrUnknownType    = errors.New("unknown mutation type")
	ErrTooLarge       = errors.New("mutation too large")
	ErrInvalid        = errors.New("invalid mutation")
)

// Rejection is how a Request is refused: a stable machine code and a reason
// a clerk can read ("Only 1 of SKU-123 left at DC-1; 2 asked").
type Rejection struct {
	Code   string
	Reason string
}

func (r *Rejection) Error() string { return r.Reason }

// Rejection codes.
const (
	CodeInvalid            = "invalid"
	CodeNotFound           = "not_found"
	CodeDuplicateID        = "duplicate_id"
	CodeConflict           = "conflict"
	CodeInsufficientStock  = "insufficient_stock"
	CodeInsufficientCredit = "insufficient_credit" // store credit below what the order pays with it
	CodeCouponUsed         = "coupon_used"
	CodeCouponExpired      = "coupon_expired"
	CodeCouponNotHers      = "coupon_not_hers"
	CodeBadTransition      = "bad_transition"
	CodeInactive           = "inactive"
	CodeNotPermitted       = "not_permitted" // the actor's role may not do this
)

func reject(code, format string, args ...any) error {
	return &Rejection{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// invalid is a rejection for a mutation whose body does not hold together.
func invalid(format string, args ...any) error {
	return reject(CodeInvalid, format, args...)
}
