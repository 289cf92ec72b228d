package edge

import (
	"errors"
	"net/http"
)

// storeRoutes adds the store operations to the local API (docs/api.md).
// Each group of operations registers its own routes.
func (n *Node) storeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/clerks/signin", n.handleClerkSignIn)
	mux.HandleFunc("GET /v1/coupons/{code}", n.handleCheckCoupon)
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
	writeJSON(w, http.StatusOK, c)
}

func (n *Node) handleCheckCoupon(w http.ResponseWriter, r *http.Request) {
	c, err := n.store.CheckCoupon(r.Context(), r.PathValue("code"), r.URL.Query().Get("customer"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
