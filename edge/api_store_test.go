package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

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

// sessionsOf caches a session per test server and clerk.
var sessionsOf sync.Map // "URL clerk" -> token

// signedIn signs clerk in on srv (PIN scenario.PIN) once and returns her
// session token.
func signedIn(t testing.TB, srv *httptest.Server, clerk string) string {
	t.Helper()
	key := srv.URL + " " + clerk
	if tok, ok := sessionsOf.Load(key); ok {
		return tok.(string)
	}
	resp, err := http.Post(srv.URL+"/v1/clerks/signin", "application/json",
		strings.NewReader(fmt.Sprintf(`{"clerk_id":%q,"pin":%q}`, clerk, scenario.PIN)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s ClerkSession
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK || s.Session == "" {
		t.Fatalf("sign in %s: %d %v %+v", clerk, resp.StatusCode, err, s)
	}
	sessionsOf.Store(key, s.Session)
	return s.Session
}

// send sends a request to the local API, as clerk when not empty (her
// session, signed in once per server), and returns the answer with its
// body read.
func send(t testing.TB, srv *httptest.Server, method, path, body, clerk string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if clerk != "" {
		req.Header.Set("Authorization", "Bearer "+signedIn(t, srv, clerk))
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

// The local API takes the clerk from her session, never from the request:
// no session, an ended one, or a body naming another clerk is refused and
// writes nothing.
func TestAPIClerkSessions(t *testing.T) {
	srv, s := apiServer(t)
	now := scenario.T0
	s.now = func() time.Time { return now }
	sale := `{"lines":[{"barcode":"012345678905"}],"tenders":[{"kind":"cash","amount_cents":1200}]}`
	do := func(method, path, body, auth string, header ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e Error
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &e)
		return resp.StatusCode, e.Code
	}
	want := func(what string, gotStatus int, gotCode string, status int, code string) {
		t.Helper()
		if gotStatus != status || gotCode != code {
			t.Fatalf("%s: %d %q, want %d %q", what, gotStatus, gotCode, status, code)
		}
	}
	before := pending(t, s)

	st, code := do("POST", "/v1/sales", sale, "")
	want("a sale without a session", st, code, 401, "signin_required")
	st, code = do("POST", "/v1/sales", sale, "", "X-Endcap-Clerk", "clerk-S1")
	want("a sale with only a clerk header", st, code, 401, "signin_required")
	st, code = do("GET", "/v1/customers/cust-1/360", "", "not-a-session")
	want("a made-up token", st, code, 401, "session_ended")
	st, code = do("POST", "/v1/clerks/signin", `{"clerk_id":"clerk-S1","pin":"0000"}`, "")
	want("a wrong PIN", st, code, 401, "wrong_pin")

	tok := signedIn(t, srv, "clerk-S1")
	resp, b := send(t, srv, "GET", "/v1/clerks/me", "", "clerk-S1")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"id":"clerk-S1"`) {
		t.Fatalf("me: %d %s", resp.StatusCode, b)
	}
	st, code = do("POST", "/v1/sales", `{"clerk_id":"mgr-S1",`+sale[1:], tok)
	want("a sale naming another clerk", st, code, 403, "not_permitted")
	st, code = do("POST", "/v1/aisle-orders", `{"clerk_id":"clerk-S1"}`, "")
	want("an aisle order naming a clerk without her session", st, code, 401, "signin_required")
	if got := pending(t, s); got != before {
		t.Fatalf("refused requests wrote %d mutations", got-before)
	}

	st, _ = do("POST", "/v1/sales", sale, tok)
	want("a sale in her session", st, "", 201, "")
	now = now.Add(SessionIdle - time.Minute)
	st, _ = do("GET", "/v1/customers/cust-1/360", "", tok)
	want("29 minutes later", st, "", 200, "")
	now = now.Add(SessionIdle + time.Minute)
	st, code = do("GET", "/v1/customers/cust-1/360", "", tok)
	want("idle too long", st, code, 401, "session_ended")

	tok2 := signedIn(t, srv, "mgr-S1")
	st, _ = do("POST", "/v1/clerks/signout", "", tok2)
	want("sign out", st, "", 204, "")
	st, code = do("GET", "/v1/clerks/me", "", tok2)
	want("after signing out", st, code, 401, "session_ended")
	st, code = do("POST", "/v1/clerks/signout", "", tok2)
	want("signing out twice", st, code, 401, "session_ended")

	// A session in use all day still ends after SessionMax: a new shift
	// signs in again.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/clerks/signin", strings.NewReader(`{"clerk_id":"mgr-S1","pin":"`+scenario.PIN+`"}`))
	resp, b = func() (*http.Response, []byte) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}()
	var cs ClerkSession
	if err := json.Unmarshal(b, &cs); err != nil || resp.StatusCode != 200 || cs.Session == "" || cs.IdleMinutes != 30 || cs.MaxHours != 12 {
		t.Fatalf("sign in: %d %s", resp.StatusCode, b)
	}
	for end := now.Add(SessionMax); now.Before(end); now = now.Add(SessionIdle / 2) {
		st, _ = do("GET", "/v1/clerks/me", "", cs.Session)
		want("in use during the shift", st, "", 200, "")
	}
	now = now.Add(time.Minute)
	st, code = do("GET", "/v1/clerks/me", "", cs.Session)
	want("after the shift", st, code, 401, "session_ended")
}
