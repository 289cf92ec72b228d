package edge

import (
	"context"
	"net/http"
	"strconv"
)

// orderRoutes adds sales at the till, paperless returns and the endless
// aisle to the local API (docs/api.md, "Sales, returns and the endless
// aisle").
func (n *Node) orderRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/sales", receiptOp(n, n.store.Sale, true,
		func(q *SaleRequest) *string { return &q.ClerkID }, func(r *SaleResult) *Receipt { return &r.Receipt }))
	mux.HandleFunc("GET /v1/customers/{id}/returnable", n.asClerk(n.handleReturnable))
	mux.HandleFunc("GET /v1/returnable", n.asClerk(n.handleReturnableByCard))
	mux.HandleFunc("POST /v1/returns", receiptOp(n, n.store.Return, true,
		func(q *ReturnRequest) *string { return &q.ClerkID }, func(r *ReturnResult) *Receipt { return &r.Receipt }))
	mux.HandleFunc("GET /v1/products", n.handleSearch)
	// At the kiosk the shopper orders herself; a clerk who takes the order
	// for her does it under her session.
	mux.HandleFunc("POST /v1/aisle-orders", receiptOp(n, n.store.OrderForLater, false,
		func(q *AisleOrder) *string { return &q.ClerkID }, func(r *AisleResult) *Receipt { return &r.Receipt }))
}

// receiptOp serves an operation that takes a JSON request, acts for a
// clerk (the one of the session; needed if clerkRequired, else only when
// the request has a session or names a clerk), prints a receipt and
// answers 201 with the result.
func receiptOp[Q, R any](n *Node, op func(context.Context, Q) (R, error), clerkRequired bool,
	clerk func(*Q) *string, receipt func(*R) *Receipt) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Q
		if !decodeBody(w, r, &req) {
			return
		}
		named := clerk(&req)
		if _, ok, err := n.sessionClerk(r); clerkRequired || err != nil || ok || *named != "" {
			c, err := n.clerkFor(r, *named)
			if err != nil {
				fail(w, err)
				return
			}
			*named = c.ID
		}
		res, err := op(r.Context(), req)
		if err != nil {
			fail(w, err)
			return
		}
		rc := receipt(&res)
		rc.Print = n.print(r.Context(), *rc)
		writeJSON(w, http.StatusCreated, res)
	}
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
