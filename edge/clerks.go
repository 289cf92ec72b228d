package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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
// many in a row. The counts live in the replica's file (edge_clerk_pins,
// a table of this edge's own that never leaves it), so a restart or a
// crash of the edge does not clear a lockout. A bootstrap, which replaces
// the replica's file with the hub's snapshot, does. The mutex makes each
// clerk's count-and-lock one step for this process.
type pinGuard struct {
	attempts int
	lockout  time.Duration
	mu       sync.Mutex
}

const pinSchema = `CREATE TABLE IF NOT EXISTS edge_clerk_pins (
  clerk_id     TEXT PRIMARY KEY,
  failures     INTEGER NOT NULL,
  locked_until INTEGER NOT NULL
) STRICT`

// state is the clerk's wrong PINs in a row and when her lockout ends
// (zero: not locked).
func (g *pinGuard) state(ctx context.Context, db *retail.DB, clerkID string, now time.Time) (failures int, until time.Time, err error) {
	var ms int64
	err = db.QueryRowContext(ctx, "SELECT failures, locked_until FROM edge_clerk_pins WHERE clerk_id = ?", clerkID).Scan(&failures, &ms)
	switch {
	case errors.Is(err, sql.ErrNoRows), err != nil && strings.Contains(err.Error(), "no such table"):
		return 0, time.Time{}, nil
	case err != nil:
		return 0, time.Time{}, fmt.Errorf("clerk lockout: %w", err)
	}
	if t := time.UnixMilli(ms); now.Before(t) {
		return failures, t, nil
	}
	return failures, time.Time{}, nil
}

// fail counts a wrong PIN and reports how many are left before a lockout
// (0: the clerk is now locked).
func (g *pinGuard) fail(ctx context.Context, db *retail.DB, clerkID string, now time.Time) (int, error) {
	if _, err := db.ExecContext(ctx, pinSchema); err != nil {
		return 0, fmt.Errorf("clerk lockout: %w", err)
	}
	var failures int
	err := db.QueryRowContext(ctx, `INSERT INTO edge_clerk_pins (clerk_id, failures, locked_until) VALUES (?, 1, 0)
		ON CONFLICT (clerk_id) DO UPDATE SET failures = failures + 1 RETURNING failures`, clerkID).Scan(&failures)
	if err != nil {
		return 0, fmt.Errorf("clerk lockout: %w", err)
	}
	if failures < g.attempts {
		return g.attempts - failures, nil
	}
	if _, err := db.ExecContext(ctx, "UPDATE edge_clerk_pins SET failures = 0, locked_until = ? WHERE clerk_id = ?",
		now.Add(g.lockout).UnixMilli(), clerkID); err != nil {
		return 0, fmt.Errorf("clerk lockout: %w", err)
	}
	return 0, nil
}

// clear forgets the clerk's failures after a right PIN.
func (g *pinGuard) clear(ctx context.Context, db *retail.DB, clerkID string) error {
	_, err := db.ExecContext(ctx, "DELETE FROM edge_clerk_pins WHERE clerk_id = ?", clerkID)
	if err != nil && !strings.Contains(err.Error(), "no such table") {
		return fmt.Errorf("clerk lockout: %w", err)
	}
	return nil
}

// SignInClerk checks a clerk's PIN. Wrong PINs count; after PINAttempts in
// a row the clerk is locked for PINLockout, whatever PIN is given, also
// across restarts of the edge.
func (s *Store) SignInClerk(ctx context.Context, clerkID, pin string) (Clerk, error) {
	now := s.now()
	g := s.pins
	g.mu.Lock()
	defer g.mu.Unlock()
	db, done := s.replica.DB()
	defer done()
	failures, until, err := g.state(ctx, db, clerkID, now)
	if err != nil {
		return Clerk{}, err
	}
	if !until.IsZero() {
		return Clerk{}, refuse(ErrLocked, "Clerk %s is locked after %d wrong PINs; try again after %s or ask a manager.",
			clerkID, g.attempts, until.Format("15:04"))
	}

	var c Clerk
	var hash string
	var active bool
	var store sql.NullString
	err = db.QueryRowContext(ctx, "SELECT id, name, store_id, role, pin_hash, active FROM clerks WHERE id = ?", clerkID).
		Scan(&c.ID, &c.Name, &store, &c.Role, &hash, &active)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !active) {
		return Clerk{}, refuse(ErrUnknownClerk, "No active clerk %q in this region.", clerkID)
	}
	if err != nil {
		return Clerk{}, err
	}
	c.StoreID = store.String
	if !retail.VerifyPIN(hash, pin) {
		left, err := g.fail(ctx, db, clerkID, now)
		if err != nil {
			return Clerk{}, err
		}
		if left == 0 {
			return Clerk{}, refuse(ErrLocked, "Wrong PIN. Clerk %s is now locked for %s after %d wrong PINs.", clerkID, g.lockout, g.attempts)
		}
		return Clerk{}, refuse(ErrWrongPIN, "Wrong PIN for clerk %s; %d tries left before a lockout.", clerkID, left)
	}
	if c.StoreID != "" && c.StoreID != s.id && c.Role != retail.RoleAdmin {
		return Clerk{}, refuse(ErrNotPermitted, "Clerk %s works at store %s, not at %s.", clerkID, c.StoreID, s.id)
	}
	if failures > 0 {
		if err := g.clear(ctx, db, clerkID); err != nil {
			return Clerk{}, err
		}
	}
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
