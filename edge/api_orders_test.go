package edge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// ordServer serves the local API of store S1 on a region with the
// returns and endless-aisle histories.
func ordServer(t *testing.T) (*httptest.Server, *orderRegion) {
	t.Helper()
	g := newOrderRegion(t, append(returnsHistory(), aisleHistory()...)...)
	srv := httptest.NewServer((&Node{replica: g.r, store: g.s}).routes())
	t.Cleanup(srv.Close)
	return srv, g
}

// ordDo sends a request as clerk-S1 (the X-Endcap-Clerk header) and
// decodes a 2xx answer into out; it returns the status and the body.
func ordDo(t *testing.T, srv *httptest.Server, method, path, body string, out any) (int, string) {
	t.Helper()
	resp, b := send(t, srv, method, path, body, "clerk-S1")
	if resp.StatusCode < 300 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// wantRefusal checks an error answer: its status and code.
func wantRefusal(t *testing.T, status int, body string, wantStatus int, code string) {
	t.Helper()
	var e Error
	if err := json.Unmarshal([]byte(body), &e); err != nil || status != wantStatus || e.Code != code || e.Message == "" {
		t.Fatalf("%d %s, want %d with code %s", status, body, wantStatus, code)
	}
}

func TestAPISale(t *testing.T) {
	srv, g := ordServer(t)
	var res SaleResult
	status, body := ordDo(t, srv, "POST", "/v1/sales",
		`{"lines":[{"barcode":"4006381333931"},{"sku":"SKU-2","qty":2}],"tenders":[{"kind":"card","amount_cents":10400,"card_token":"tok-9"}]}`, &res)
	if status != http.StatusCreated || res.TotalCents != 10400 || res.OrderID == "" || res.Receipt.ClerkID != "clerk-S1" || len(res.Receipt.Lines) != 2 {
		t.Fatalf("%d %s", status, body)
	}
	before := g.state()
	status, body = ordDo(t, srv, "POST", "/v1/sales", `{"lines":[{"barcode":"999"}],"tenders":[]}`, nil)
	wantRefusal(t, status, body, http.StatusNotFound, "unknown_product")
	status, body = ordDo(t, srv, "POST", "/v1/sales", `{"lines":[],"tenders":[]}`, nil)
	wantRefusal(t, status, body, http.StatusBadRequest, "empty_basket")
	status, body = ordDo(t, srv, "POST", "/v1/sales", `{"basket":[]}`, nil)
	wantRefusal(t, status, body, http.StatusBadRequest, "invalid")
	g.unchanged(before)
}

func TestAPIReturnable(t *testing.T) {
	srv, _ := ordServer(t)
	var lines []ReturnableLine
	status, body := ordDo(t, srv, "GET", "/v1/customers/cust-1/returnable", "", &lines)
	if status != http.StatusOK || len(lines) != 6 || lines[0].OrderID != "ord-card" || !strings.Contains(body, `"within_window":true`) {
		t.Fatalf("%d %s", status, body)
	}
	status, body = ordDo(t, srv, "GET", "/v1/customers/cust-3/returnable", "", nil)
	if status != http.StatusOK || body != "[]\n" {
		t.Fatalf("no orders: %d %q", status, body)
	}
	status, body = ordDo(t, srv, "GET", "/v1/customers/nobody/returnable", "", nil)
	wantRefusal(t, status, body, http.StatusNotFound, "unknown_customer")
}

func TestAPIReturnableByCard(t *testing.T) {
	srv, _ := ordServer(t)
	var lines []ReturnableLine
	status, body := ordDo(t, srv, "GET", "/v1/returnable?card_token=tok-web", "", &lines)
	if status != http.StatusOK || len(lines) != 1 || lines[0].OrderID != "ord-web" || lines[0].QtyReturned != 1 {
		t.Fatalf("%d %s", status, body)
	}
	status, body = ordDo(t, srv, "GET", "/v1/returnable", "", nil)
	wantRefusal(t, status, body, http.StatusBadRequest, "invalid")
}

func TestAPIReturn(t *testing.T) {
	srv, g := ordServer(t)
	var res ReturnResult
	status, body := ordDo(t, srv, "POST", "/v1/returns",
		`{"order_id":"ord-card","lines":[{"order_line_no":1}],"reason":"too big","restock":true}`, &res)
	if status != http.StatusCreated || res.Refund.AmountCents != 8000 || res.Refund.CardToken != "tok-cust-1" || res.Receipt.Policy == "" {
		t.Fatalf("%d %s", status, body)
	}
	before := g.state()
	status, body = ordDo(t, srv, "POST", "/v1/returns", `{"order_id":"ord-old","lines":[{"order_line_no":1}],"reason":"too big"}`, nil)
	wantRefusal(t, status, body, http.StatusUnprocessableEntity, "past_return_window")
	status, body = ordDo(t, srv, "POST", "/v1/returns",
		`{"order_id":"ord-old","lines":[{"order_line_no":1}],"reason":"too big","approver_id":"mgr-S1","approver_pin":"0000"}`, nil)
	wantRefusal(t, status, body, http.StatusUnauthorized, "wrong_pin")
	status, body = ordDo(t, srv, "POST", "/v1/returns", `{"order_id":"ord-phone","lines":[{"order_line_no":1}],"reason":"broken","refund_to":{"kind":"cash"}}`, nil)
	wantRefusal(t, status, body, http.StatusUnprocessableEntity, "over_paid")
	status, body = ordDo(t, srv, "POST", "/v1/returns", `{"customer_id":"cust-3","lines":[{"sku":"SKU-2"}],"reason":"gift"}`, nil)
	wantRefusal(t, status, body, http.StatusUnprocessableEntity, "receiptless_cap")
	g.unchanged(before)
	status, body = ordDo(t, srv, "POST", "/v1/returns",
		`{"customer_id":"cust-3","lines":[{"sku":"SKU-2"}],"reason":"gift","approver_id":"mgr-S1","approver_pin":"4321"}`, &res)
	if status != http.StatusCreated || !res.SerialReturner || res.ApprovedBy != "mgr-S1" || res.Refund.Kind != "store_credit" {
		t.Fatalf("%d %s", status, body)
	}
}

func TestAPIProducts(t *testing.T) {
	srv, _ := ordServer(t)
	var hits []ProductHit
	status, body := ordDo(t, srv, "GET", "/v1/products?q=lamp", "", &hits)
	if status != http.StatusOK || len(hits) != 1 || hits[0].SKU != "SKU-RARE" || len(hits[0].Stores) != 1 || hits[0].AgeSeconds != 3600 ||
		!strings.Contains(body, `"as_of":"2026-11-02T09:00:00Z"`) {
		t.Fatalf("%d %s", status, body)
	}
	status, body = ordDo(t, srv, "GET", "/v1/products?category=jackets&limit=5", "", &hits)
	if status != http.StatusOK || len(hits) != 1 || hits[0].DCs[0].ID != "DC1" {
		t.Fatalf("%d %s", status, body)
	}
	status, body = ordDo(t, srv, "GET", "/v1/products?barcode=012345678905", "", &hits)
	if status != http.StatusOK || len(hits) != 1 || hits[0].SKU != "SKU-2" {
		t.Fatalf("%d %s", status, body)
	}
	status, body = ordDo(t, srv, "GET", "/v1/products?barcode=999", "", nil)
	wantRefusal(t, status, body, http.StatusNotFound, "unknown_product")
	status, body = ordDo(t, srv, "GET", "/v1/products", "", nil)
	wantRefusal(t, status, body, http.StatusBadRequest, "invalid")
	status, body = ordDo(t, srv, "GET", "/v1/products?q=lamp&limit=x", "", nil)
	wantRefusal(t, status, body, http.StatusBadRequest, "invalid")
}

func TestAPIAisleOrder(t *testing.T) {
	srv, g := ordServer(t)
	var res AisleResult
	status, body := ordDo(t, srv, "POST", "/v1/aisle-orders",
		`{"customer_id":"cust-2","lines":[{"sku":"SKU-RARE"}],"fulfilment":"store_pickup","tenders":[{"kind":"cash","amount_cents":4500}]}`, &res)
	if status != http.StatusCreated || res.Status != "pending_confirmation" || res.FulfilFrom != "S3" || res.Receipt.PickupStore != "S1" {
		t.Fatalf("%d %s", status, body)
	}
	before := g.state()
	status, body = ordDo(t, srv, "POST", "/v1/aisle-orders",
		`{"customer_id":"cust-2","lines":[{"sku":"SKU-NONE"}],"fulfilment":"ship_to_home","ship_address":"x","tenders":[{"kind":"cash","amount_cents":3000}]}`, nil)
	wantRefusal(t, status, body, http.StatusConflict, "insufficient_stock")
	g.unchanged(before)
}
