package edge

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Clerk sessions on the local API. A clerk signs in with her PIN
// (POST /v1/clerks/signin) and gets a session token; requests that act for
// a clerk carry it as "Authorization: Bearer TOKEN", and the API takes the
// clerk from the session, never from the request. A session ends when the
// clerk signs out, after SessionIdle without a request (a till left
// alone locks), or SessionMax after sign-in (a shift), whichever is first.
// Sessions live in the edge's memory: a restart signs every clerk out.

const (
	// SessionIdle ends a session no request has used for this long.
	SessionIdle = 30 * time.Minute
	// SessionMax ends a session this long after the sign-in.
	SessionMax = 12 * time.Hour
)

// The session refusals.
var (
	ErrSignInRequired = &Error{Code: "signin_required", Status: http.StatusUnauthorized}
	ErrSessionEnded   = &Error{Code: "session_ended", Status: http.StatusUnauthorized}
)

type session struct {
	clerk    Clerk
	started  time.Time
	lastUsed time.Time
}

// sessions is the edge's signed-in clerks by token. The zero value is
// ready to use.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

// open starts a session for c and returns its token.
func (ss *sessions) open(c Clerk, now time.Time) string {
	b := make([]byte, 24)
	rand.Read(b) // never fails (crypto/rand)
	token := base64.RawURLEncoding.EncodeToString(b)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[string]*session{}
	}
	for t, s := range ss.m { // drop the ended ones as we go
		if s.ended(now) {
			delete(ss.m, t)
		}
	}
	ss.m[token] = &session{clerk: c, started: now, lastUsed: now}
	return token
}

func (s *session) ended(now time.Time) bool {
	return now.Sub(s.lastUsed) > SessionIdle || now.Sub(s.started) > SessionMax
}

// use finds the live session of token and marks it used now.
func (ss *sessions) use(token string, now time.Time) (Clerk, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[token]
	if s == nil {
		return Clerk{}, false
	}
	if s.ended(now) {
		delete(ss.m, token)
		return Clerk{}, false
	}
	s.lastUsed = now
	return s.clerk, true
}

// close ends the session of token; false if there was none.
func (ss *sessions) close(token string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.m[token]
	delete(ss.m, token)
	return ok
}

// bearer is the request's session token, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// sessionClerk is the clerk whose session the request carries: ok false
// without one; an *Error for a token that is not (or no longer) a session.
func (n *Node) sessionClerk(r *http.Request) (Clerk, bool, error) {
	token := bearer(r)
	if token == "" {
		return Clerk{}, false, nil
	}
	c, ok := n.sessions.use(token, n.store.now())
	if !ok {
		return Clerk{}, false, refuse(ErrSessionEnded, "The clerk session has ended (signed out, idle for %s, or over %s): sign in again with your PIN.",
			SessionIdle, SessionMax)
	}
	return c, true, nil
}

// clerkFor is the signed-in clerk a clerk's operation runs as. A request
// without a session is refused (ErrSignInRequired), and one whose body
// names another clerk than the session's (ErrNotPermitted).
func (n *Node) clerkFor(r *http.Request, named string) (Clerk, error) {
	c, ok, err := n.sessionClerk(r)
	if err != nil {
		return Clerk{}, err
	}
	if !ok {
		return Clerk{}, refuse(ErrSignInRequired, "Sign in with your clerk PIN first (POST /v1/clerks/signin), then send its session as \"Authorization: Bearer TOKEN\".")
	}
	if named != "" && named != c.ID {
		return Clerk{}, refuse(ErrNotPermitted, "Signed in as %s, the request names clerk %s: each clerk acts under her own session.", c.ID, named)
	}
	return c, nil
}
