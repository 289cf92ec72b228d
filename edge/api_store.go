package edge

import (
	"errors"
	"net/http"
	"time"

	"github.com/endcap/endcap/retail"
)

// storeRoutes adds the store operations to the local API (docs/api.md).
// Each group of operations registers its own routes.
func (n *Node) storeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/clerks/signin", n.handleClerkSignIn)
	mux.HandleFunc("POST /v1/clerks/signout", n.handleClerkSignOut)
	mux.HandleFunc("GET /v1/clerks/me", n.asClerk(func(w http.ResponseWriter, _ *http.Request, c Clerk) { writeJSON(w, http.StatusOK, c) }))
	mux.HandleFunc("GET /v1/coupons/{code}", n.handleCheckCoupon)
	n.customerRoutes(mux)
	n.orderRoutes(mux)
	mux.HandleFunc("POST /v1/signin", n.handleSignIn)
	mux.HandleFunc("GET /v1/customers/{id}/wishlist", n.handleWishList)
	mux.HandleFunc("POST /v1/customers/{id}/wishlist", n.handleAddWish)
	mux.HandleFunc("DELETE /v1/customers/{id}/wishlist/{sku}", n.handleRemoveWish)
	mux.HandleFunc("POST /v1/customers/{id}/wishlist/{sku}/basket", n.handleMoveToBasket)
	mux.HandleFunc("POST /v1/contacts", n.asClerk(n.handleContact))
	mux.HandleFunc("GET /v1/devices", n.handleDevices)
}

func (n *Node) handleDevices(w http.ResponseWriter, r *http.Request) {
	d := n.devices.Load()
	if d == nil {
		writeJSON(w, http.StatusOK, DevicesStatus{Scanner: "none", Scans: []Scan{}})
		return
	}
	writeJSON(w, http.StatusOK, d.Status())
}

// actorOf is who the request acts for: the clerk of its session, or
// without one the store's kiosk (a shopper acting for herself).
func (n *Node) actorOf(r *http.Request) (retail.Actor, error) {
	c, ok, err := n.sessionClerk(r)
	if err != nil {
		return retail.Actor{}, err
	}
	if ok {
		return retail.Actor{Kind: "clerk", ID: c.ID}, nil
	}
	return retail.Actor{Kind: "system", ID: "kiosk-" + n.store.ID()}, nil
}

// asClerk serves h only to a request with a clerk's session
// (ErrSignInRequired, ErrSessionEnded otherwise).
func (n *Node) asClerk(h func(http.ResponseWriter, *http.Request, Clerk)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := n.clerkFor(r, "")
		if err != nil {
			fail(w, err)
			return
		}
		h(w, r, c)
	}
}

func (n *Node) handleSignIn(w http.ResponseWriter, r *http.Request) {
	// One of card, phone or token finds her (or customer_id, when the app
	// already knows her); the method says how she signed in.
	var req struct {
		CustomerID string              `json:"customer_id"`
		Card       string              `json:"card"`
		Phone      string              `json:"phone"`
		Token      string              `json:"token"`
		Method     retail.SignInMethod `json:"method"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	id := req.CustomerID
	for _, k := range []struct {
		by     LookupKind
		value  string
		method retail.SignInMethod
	}{{ByLoyaltyCard, req.Card, retail.SignInCard}, {ByPhone, req.Phone, retail.SignInPhone}, {BySignInToken, req.Token, retail.SignInAppQR}} {
		if k.value == "" {
			continue
		}
		ref, err := n.store.FindCustomer(r.Context(), k.by, k.value)
		if err != nil {
			fail(w, err)
			return
		}
		id = ref.ID
		if req.Method == "" {
			req.Method = k.method
		}
	}
	if id == "" {
		fail(w, refuse(ErrInvalid, "Give the shopper's card, phone or app token (or customer_id)."))
		return
	}
	res, err := n.store.SignIn(r.Context(), id, req.Method)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (n *Node) handleWishList(w http.ResponseWriter, r *http.Request) {
	items, err := n.store.WishList(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, items)
}

func (n *Node) handleAddWish(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SKU    string            `json:"sku"`
		Source retail.WishSource `json:"source"`
		Note   string            `json:"note"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	actor, err := n.actorOf(r)
	if err != nil {
		fail(w, err)
		return
	}
	if err := n.store.AddWish(r.Context(), actor, r.PathValue("id"), req.SKU, req.Source, req.Note); err != nil {
		fail(w, err)
		return
	}
	n.handleWishList(w, r)
}

func (n *Node) handleRemoveWish(w http.ResponseWriter, r *http.Request) {
	actor, err := n.actorOf(r)
	if err != nil {
		fail(w, err)
		return
	}
	if err := n.store.RemoveWish(r.Context(), actor, r.PathValue("id"), r.PathValue("sku")); err != nil {
		fail(w, err)
		return
	}
	n.handleWishList(w, r)
}

func (n *Node) handleMoveToBasket(w http.ResponseWriter, r *http.Request) {
	actor, err := n.actorOf(r)
	if err != nil {
		fail(w, err)
		return
	}
	line, err := n.store.MoveToBasket(r.Context(), actor, r.PathValue("id"), r.PathValue("sku"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, line)
}

func (n *Node) handleContact(w http.ResponseWriter, r *http.Request, c Clerk) {
	var req NewContact
	if !decodeBody(w, r, &req) {
		return
	}
	if req.ClerkID != "" && req.ClerkID != c.ID {
		fail(w, refuse(ErrNotPermitted, "Signed in as %s, the contact names clerk %s: each clerk records her own.", c.ID, req.ClerkID))
		return
	}
	req.ClerkID = c.ID
	id, err := n.store.RecordContact(r.Context(), retail.Actor{Kind: "clerk", ID: c.ID}, req)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

// fail writes err: an *Error with its status and code, anything else 500.
func fail(w http.ResponseWriter, err error) {
	var e *Error
	if errors.As(err, &e) {
		writeJSON(w, e.Status, e)
		return
	}
	writeError(w, http.StatusInternalServerError, err)
}

// decodeBody decodes a JSON request body strictly into v (400 on error).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, 1<<20), v); err != nil {
		fail(w, refuse(ErrInvalid, "Bad request body: %v", err))
		return false
	}
	return true
}

// ClerkSession is the answer to a clerk's sign-in: who she is and the
// session token her requests carry ("Authorization: Bearer TOKEN").
type ClerkSession struct {
	Clerk
	Session string `json:"session"`
	// IdleMinutes and MaxHours say when the session ends by itself.
	IdleMinutes int `json:"idle_minutes"`
	MaxHours    int `json:"max_hours"`
}

func (n *Node) handleClerkSignIn(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClerkID string `json:"clerk_id"`
		PIN     string `json:"pin"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	c, err := n.store.SignInClerk(r.Context(), req.ClerkID, req.PIN)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ClerkSession{Clerk: c, Session: n.sessions.open(c, n.store.now()),
		IdleMinutes: int(SessionIdle / time.Minute), MaxHours: int(SessionMax / time.Hour)})
}

func (n *Node) handleClerkSignOut(w http.ResponseWriter, r *http.Request) {
	if !n.sessions.close(bearer(r)) {
		fail(w, refuse(ErrSessionEnded, "No such session: it had ended already."))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleCheckCoupon(w http.ResponseWriter, r *http.Request) {
	c, err := n.store.CheckCoupon(r.Context(), r.PathValue("code"), r.URL.Query().Get("customer"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
