package edge

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/endcap/endcap/retail"
)

// Clerk is a signed-in clerk.
type Clerk struct {
	ID      string      `json:"id"`
	Name    string      `json:"name"`
	StoreID string      `json:"store_id"`
	Role    retail.Role `json:"role"`
}

// CanApprove reports whether the clerk may approve exceptions (a return
// past its window, a refund to another tender, over the receipt-less cap).
func (c Clerk) CanApprove() bool { return c.Role == retail.RoleManager || c.Role == retail.RoleAdmin }

// pinGuard counts failed PINs per clerk and locks a clerk out after too
// many in a row. It lives in memory: a restart of the edge clears it.
type pinGuard struct {
	attempts int
	lockout  time.Duration
	mu       sync.Mutex
	state    map[string]*pinState
}

type pinState struct {
	failures int
	until    time.Time
}

// SignInClerk checks a clerk's PIN. Wrong PINs count; after PINAttempts in
// a row the clerk is locked for PINLockout, whatever PIN is given.
func (s *Store) SignInClerk(ctx context.Context, clerkID, pin string) (Clerk, error) {
	now := s.now()
	g := s.pins
	g.mu.Lock()
	st := g.state[clerkID]
	if st != nil && now.Before(st.until) {
		g.mu.Unlock()
		return Clerk{}, refuse(ErrLocked, "Clerk %s is locked after %d wrong PINs; try again after %s or ask a manager.",
			clerkID, g.attempts, st.until.Format("15:04"))
	}
	g.mu.Unlock()

	var c Clerk
	var hash string
	var active bool
	var store sql.NullString
	err := s.query(func(db *retail.DB) error {
		return db.QueryRowContext(ctx, "SELECT id, name, store_id, role, pin_hash, active FROM clerks WHERE id = ?", clerkID).
			Scan(&c.ID, &c.Name, &store, &c.Role, &hash, &active)
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !active) {
		return Clerk{}, refuse(ErrUnknownClerk, "No active clerk %q in this region.", clerkID)
	}
	if err != nil {
		return Clerk{}, err
	}
	c.StoreID = store.String
	if !retail.VerifyPIN(hash, pin) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if st = g.state[clerkID]; st == nil {
			st = &pinState{}
			g.state[clerkID] = st
		}
		st.failures++
		if st.failures >= g.attempts {
			st.failures, st.until = 0, now.Add(g.lockout)
			return Clerk{}, refuse(ErrLocked, "Wrong PIN. Clerk %s is now locked for %s after %d wrong PINs.", clerkID, g.lockout, g.attempts)
		}
		return Clerk{}, refuse(ErrWrongPIN, "Wrong PIN for clerk %s; %d tries left before a lockout.", clerkID, g.attempts-st.failures)
	}
	if c.StoreID != "" && c.StoreID != s.id && c.Role != retail.RoleAdmin {
		return Clerk{}, refuse(ErrNotPermitted, "Clerk %s works at store %s, not at %s.", clerkID, c.StoreID, s.id)
	}
	g.mu.Lock()
	delete(g.state, clerkID)
	g.mu.Unlock()
	return c, nil
}

// Approve checks a manager's PIN for an exception and returns the
// manager, whose id is recorded as the approver.
func (s *Store) Approve(ctx context.Context, clerkID, pin string) (Clerk, error) {
	c, err := s.SignInClerk(ctx, clerkID, pin)
	if err != nil {
		return Clerk{}, err
	}
	if !c.CanApprove() {
		return Clerk{}, refuse(ErrNotPermitted, "%s is an %s; only a manager or admin can approve this.", c.Name, c.Role)
	}
	return c, nil
}
