package edge

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/endcap/endcap/internal/scenario"
)

// apiServer serves the local API of a store on a test replica.
func apiServer(t testing.TB) (*httptest.Server, *Store) {
	t.Helper()
	s, r, _ := testStore(t)
	n := &Node{replica: r, store: s}
	srv := httptest.NewServer(n.routes())
	t.Cleanup(srv.Close)
	return srv, s
}

// send sends a request to the local API, as clerk when not empty (the
// X-Endcap-Clerk header), and returns the answer with its body read.
func send(t testing.TB, srv *httptest.Server, method, path, body, clerk string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if clerk != "" {
		req.Header.Set("X-Endcap-Clerk", clerk)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// call sends a JSON request as clerk-S1 and returns the status and body.
func call(t testing.TB, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	resp, b := send(t, srv, method, path, body, "clerk-S1")
	return resp.StatusCode, string(bytes.TrimSpace(b))
}

func TestStoreAPI(t *testing.T) {
	srv, s := apiServer(t)
	code := s.coupons.issue("P10", "cust-1", scenario.T0.AddDate(0, 0, 3))
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     []string
	}{
		{"clerk sign-in", "POST", "/v1/clerks/signin", `{"clerk_id":"mgr-S1","pin":"4321"}`, 200, []string{`"role":"manager"`}},
		{"clerk wrong PIN", "POST", "/v1/clerks/signin", `{"clerk_id":"clerk-S1","pin":"9999"}`, 401, []string{`"code":"wrong_pin"`, "tries left"}},
		{"clerk sign-in, bad body", "POST", "/v1/clerks/signin", `{"clerk":"x"}`, 400, []string{`"code":"invalid"`}},
		{"coupon check", "GET", "/v1/coupons/" + code + "?customer=cust-1", "", 200, []string{`"promotion_id":"P10"`}},
		{"forged coupon", "GET", "/v1/coupons/" + code + "?customer=cust-2", "", 422, []string{`"code":"coupon_invalid"`}},
		{"shopper sign-in", "POST", "/v1/signin", `{"customer_id":"cust-3","method":"card"}`, 200, []string{`"visit_id":`, `"promotion_id":"P10"`}},
		{"shopper sign-in by phone", "POST", "/v1/signin", `{"phone":"+15550001"}`, 200, []string{`"name":"Customer 1"`, `"visit_id":`}},
		{"shopper sign-in by an unknown card", "POST", "/v1/signin", `{"card":"LC0000000991"}`, 404, []string{`"code":"unknown_customer"`}},
		{"shopper sign-in without a shopper", "POST", "/v1/signin", `{"method":"card"}`, 400, []string{`"code":"invalid"`}},
		{"unknown shopper", "POST", "/v1/signin", `{"customer_id":"nobody","method":"card"}`, 404, []string{`"code":"unknown_customer"`}},
		{"add to wish list", "POST", "/v1/customers/cust-1/wishlist", `{"sku":"SKU-2","source":"clerk"}`, 200, []string{`"sku":"SKU-2"`, `"stock_here":1000000`}},
		{"wish list", "GET", "/v1/customers/cust-1/wishlist", "", 200, []string{`"sku":"SKU-2"`}},
		{"wish list of nobody", "GET", "/v1/customers/nobody/wishlist", "", 404, []string{`"code":"unknown_customer"`}},
		{"move to basket", "POST", "/v1/customers/cust-1/wishlist/SKU-2/basket", "", 200, []string{`{"sku":"SKU-2","qty":1}`}},
		{"remove what is not on it (idempotent)", "DELETE", "/v1/customers/cust-1/wishlist/SKU-1", "", 200, []string{`[]`}},
		{"remove from the wish list of nobody", "DELETE", "/v1/customers/nobody/wishlist/SKU-1", "", 404, []string{`"code":"unknown_customer"`}},
		{"service contact", "POST", "/v1/contacts", `{"customer_id":"cust-1","channel":"store","reason":"late","resolved":true}`, 201, []string{`"id":`}},
		{"service contact, unknown field", "POST", "/v1/contacts", `{"customer_id":"cust-1","mood":"bad"}`, 400, []string{"unknown field"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, srv, tc.method, tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body %s lacks %s", body, w)
				}
			}
			if status >= 400 {
				var e map[string]string
				if json.Unmarshal([]byte(body), &e) != nil || e["error"] == "" {
					t.Errorf("error body %s has no message", body)
				}
			}
		})
	}
}
