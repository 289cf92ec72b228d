package edge

import (
	"net/http"
)

// customerRoutes adds customer look-up, the customer 360 and cross-sell
// to the local API (docs/api.md, "Customers").
func (n *Node) customerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/customers/lookup", n.asClerk(n.handleFindCustomer))
	mux.HandleFunc("GET /v1/customers/{id}/360", n.asClerk(n.handleCustomer360))
	mux.HandleFunc("POST /v1/customers/{id}/cross-sell", n.asClerk(n.handleCrossSell))
}

// lookupParams are the query parameters of GET /v1/customers/lookup, one
// per LookupKind.
var lookupParams = []LookupKind{ByLoyaltyCard, ByPhone, BySignInToken, ByCardToken}

func (n *Node) handleFindCustomer(w http.ResponseWriter, r *http.Request, _ Clerk) {
	q := r.URL.Query()
	var by LookupKind
	var value string
	for _, k := range lookupParams {
		if !q.Has(string(k)) {
			continue
		}
		if by != "" {
			fail(w, refuse(ErrInvalid, "Look her up by one of card, phone, token or card_token, not by %s and %s at once.", by, k))
			return
		}
		by, value = k, q.Get(string(k))
	}
	if by == "" {
		fail(w, refuse(ErrInvalid, "Look her up by card, phone, token or card_token (a query parameter)."))
		return
	}
	c, err := n.store.FindCustomer(r.Context(), by, value)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (n *Node) handleCustomer360(w http.ResponseWriter, r *http.Request, _ Clerk) {
	c, err := n.store.Customer360(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// CrossSellRequest is the body of POST /v1/customers/{id}/cross-sell.
type CrossSellRequest struct {
	Basket []BasketLine `json:"basket"`
}

func (n *Node) handleCrossSell(w http.ResponseWriter, r *http.Request, _ Clerk) {
	var req CrossSellRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res, err := n.store.CrossSell(r.Context(), r.PathValue("id"), req.Basket)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
