package edge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/internal/scenario"
)

// customerAPI serves the local API of store S1 on Ann's region.
func customerAPI(t *testing.T) (*httptest.Server, *Store) {
	t.Helper()
	s, r := cxHistoryStore(t, true, annRegion()...)
	srv := httptest.NewServer((&Node{replica: r, store: s}).routes())
	t.Cleanup(srv.Close)
	return srv, s
}

// customerCall sends a request as clerk-S1 and decodes the JSON answer into out (if
// not nil); it returns the status and the error body's code.
func customerCall(t *testing.T, srv *httptest.Server, method, path, body string, out any) (int, string) {
	t.Helper()
	resp, b := send(t, srv, method, path, body, "clerk-S1")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: content type %q", method, path, ct)
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if err := json.Unmarshal(b, &e); err != nil || e.Message == "" {
			t.Errorf("%s %s: %d without an error body (%v)", method, path, resp.StatusCode, err)
		}
		return resp.StatusCode, e.Code
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, ""
}

func TestAPICustomerLookup(t *testing.T) {
	srv, s := customerAPI(t)
	token := s.SignInToken("cust-ann", scenario.T0.Add(time.Minute))
	for _, tc := range []struct {
		name, query string
		status      int
		code, id    string
	}{
		{"card", "card=LC-ANN", 200, "", "cust-ann"},
		{"phone", "phone=" + url.QueryEscape("+1 555 7777"), 200, "", "cust-ann"},
		{"app token", "token=" + url.QueryEscape(token), 200, "", "cust-ann"},
		{"card token", "card_token=tok-shared", 200, "", "cust-c"},
		{"unknown card", "card=LC-0000", 404, "unknown_customer", ""},
		{"household phone", "phone=%2B15559999", 409, "ambiguous_customer", ""},
		{"forged token", "token=" + url.QueryEscape(strings.Replace(token, "cust-ann", "cust-b", 1)), 422, "signin_invalid", ""},
		{"expired token", "token=" + url.QueryEscape(s.SignInToken("cust-ann", scenario.T0.Add(-time.Second))), 422, "signin_expired", ""},
		{"nothing to look up by", "", 400, "invalid", ""},
		{"two things at once", "card=LC-ANN&phone=15557777", 400, "invalid", ""},
		{"an empty card", "card=", 400, "invalid", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c CustomerRef
			status, code := customerCall(t, srv, "GET", "/v1/customers/lookup?"+tc.query, "", &c)
			if status != tc.status || code != tc.code || c.ID != tc.id {
				t.Errorf("%d %q %q, want %d %q %q", status, code, c.ID, tc.status, tc.code, tc.id)
			}
		})
	}
}

func TestAPICustomer360(t *testing.T) {
	srv, _ := customerAPI(t)
	var raw map[string]json.RawMessage
	if status, code := customerCall(t, srv, "GET", "/v1/customers/cust-ann/360", "", &raw); status != 200 {
		t.Fatalf("%d %s", status, code)
	}
	var c Customer360
	for _, k := range []string{"customer", "tenure", "orders", "top_categories", "promotions", "visits", "complements",
		"also_bought", "service", "returns", "wish_list", "abandoned_carts"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("no %q in the answer", k)
		}
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Orders.AverageCents != 4125 || c.Orders.ByChannel["kiosk"].Orders != 1 || c.AlsoBought[0].Percent != 38 ||
		c.Returns.UnitsBought != 7 || c.Carts.ByStep["payment"] != 1 {
		t.Errorf("%+v", c)
	}
	if status, code := customerCall(t, srv, "GET", "/v1/customers/cust-nobody/360", "", nil); status != 404 || code != "unknown_customer" {
		t.Errorf("unknown customer: %d %q", status, code)
	}
}

func TestAPICrossSell(t *testing.T) {
	srv, _ := customerAPI(t)
	for _, tc := range []struct {
		name, customer, body string
		status               int
		code                 string
		first                string // the first suggestion's why
		suppressed           bool
	}{
		{"basket", "cust-ann", `{"basket":[{"sku":"SKU-2","qty":1}]}`, 200, "", "on her wish list", false},
		{"empty basket", "cust-ann", `{"basket":[]}`, 200, "", "on her wish list", false},
		{"serial returner", "cust-rita", `{"basket":[{"sku":"SKU-1","qty":1}]}`, 200, "", "", true},
		{"unknown product", "cust-ann", `{"basket":[{"sku":"SKU-NOPE","qty":1}]}`, 404, "unknown_product", "", false},
		{"unknown customer", "cust-nobody", `{"basket":[{"sku":"SKU-1","qty":1}]}`, 404, "unknown_customer", "", false},
		{"bad quantity", "cust-ann", `{"basket":[{"sku":"SKU-1","qty":-1}]}`, 400, "invalid", "", false},
		{"unknown field", "cust-ann", `{"basket":[],"coupon":"x"}`, 400, "invalid", "", false},
		{"not JSON", "cust-ann", `basket`, 400, "invalid", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res CrossSellResult
			status, code := customerCall(t, srv, "POST", "/v1/customers/"+tc.customer+"/cross-sell", tc.body, &res)
			if status != tc.status || code != tc.code || res.Suppressed != tc.suppressed {
				t.Fatalf("%d %q suppressed %v, want %d %q %v", status, code, res.Suppressed, tc.status, tc.code, tc.suppressed)
			}
			if tc.first != "" && (len(res.Suggestions) == 0 || res.Suggestions[0].Why != tc.first) {
				t.Errorf("suggestions %+v, want the first %q", res.Suggestions, tc.first)
			}
		})
	}
}
