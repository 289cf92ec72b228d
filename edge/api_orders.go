package edge

import (
	"net/http"
	"strconv"
)

// orderRoutes adds sales at the till, paperless returns and the endless
// aisle to the local API (docs/api.md, "Sales, returns and the endless
// aisle").
func (n *Node) orderRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/sales", n.handleSale)
	mux.HandleFunc("GET /v1/customers/{id}/returnable", n.asClerk(n.handleReturnable))
	mux.HandleFunc("GET /v1/returnable", n.asClerk(n.handleReturnableByCard))
	mux.HandleFunc("POST /v1/returns", n.handleReturn)
	mux.HandleFunc("GET /v1/products", n.handleSearch)
	mux.HandleFunc("POST /v1/aisle-orders", n.handleAisleOrder)
}

func (n *Node) handleSale(w http.ResponseWriter, r *http.Request) {
	var req SaleRequest
	if !decodeBody(w, r, &req) {
		return
	}
	c, err := n.clerkFor(r, req.ClerkID)
	if err != nil {
		fail(w, err)
		return
	}
	req.ClerkID = c.ID
	res, err := n.store.Sale(r.Context(), req)
	if err != nil {
		fail(w, err)
		return
	}
	res.Receipt.Print = n.print(r.Context(), res.Receipt)
	writeJSON(w, http.StatusCreated, res)
}

func (n *Node) handleReturnable(w http.ResponseWriter, r *http.Request, _ Clerk) {
	lines, err := n.store.FindReturnable(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, lines)
}

func (n *Node) handleReturnableByCard(w http.ResponseWriter, r *http.Request, _ Clerk) {
	lines, err := n.store.FindReturnableByCard(r.Context(), r.URL.Query().Get("card_token"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, lines)
}

func (n *Node) handleReturn(w http.ResponseWriter, r *http.Request) {
	var req ReturnRequest
	if !decodeBody(w, r, &req) {
		return
	}
	c, err := n.clerkFor(r, req.ClerkID)
	if err != nil {
		fail(w, err)
		return
	}
	req.ClerkID = c.ID
	res, err := n.store.Return(r.Context(), req)
	if err != nil {
		fail(w, err)
		return
	}
	res.Receipt.Print = n.print(r.Context(), res.Receipt)
	writeJSON(w, http.StatusCreated, res)
}

func (n *Node) handleSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sq := SearchQuery{Text: q.Get("q"), Category: q.Get("category"), Barcode: q.Get("barcode")}
	if l := q.Get("limit"); l != "" {
		var err error
		if sq.Limit, err = strconv.Atoi(l); err != nil {
			fail(w, refuse(ErrInvalid, "limit %q is not a number.", l))
			return
		}
	}
	hits, err := n.store.Search(r.Context(), sq)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, hits)
}

func (n *Node) handleAisleOrder(w http.ResponseWriter, r *http.Request) {
	var req AisleOrder
	if !decodeBody(w, r, &req) {
		return
	}
	// At the kiosk the shopper orders herself; a clerk who takes the
	// order for her does it under her session.
	if _, ok, err := n.sessionClerk(r); err != nil || ok || req.ClerkID != "" {
		c, err := n.clerkFor(r, req.ClerkID)
		if err != nil {
			fail(w, err)
			return
		}
		req.ClerkID = c.ID
	}
	res, err := n.store.OrderForLater(r.Context(), req)
	if err != nil {
		fail(w, err)
		return
	}
	res.Receipt.Print = n.print(r.Context(), res.Receipt)
	writeJSON(w, http.StatusCreated, res)
}
