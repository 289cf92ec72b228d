package edge

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/devices"
	"github.com/endcap/endcap/devices/sim"
	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/retail"
)

// A loyalty card scanned at the kiosk (a real pty, through the same
// serial code a store uses) signs the shopper in and prints her coupons
// on the receipt printer; garbage and unknown cards are reported.
func TestKioskScanSignsInAndPrintsCoupons(t *testing.T) {
	card, err := devices.LoyaltyCode("000000042")
	if err != nil {
		t.Fatal(err)
	}
	unknown, _ := devices.LoyaltyCode("000000043")
	s, r, _ := testStore(t, &retail.UpsertCustomer{ID: "cust-42", Name: "Ada", LoyaltyCard: card, Since: scenario.T0.AddDate(-1, 0, 0),
		AcquiredVia: retail.AcquiredWalkIn, AcquiredStore: "S1"})
	dir := t.TempDir()
	framing := devices.Framing{Suffix: devices.SuffixCR}
	vs, err := sim.NewScanner(sim.ScannerOptions{Link: filepath.Join(dir, "scanner"), Framing: framing})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vs.Close() })
	vp, err := sim.NewPrinter(sim.PrinterOptions{Link: filepath.Join(dir, "printer")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vp.Close() })

	n := &Node{replica: r, store: s, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := n.StartDevices(ctx, DevicesConfig{
		Scanner: &devices.ScannerConfig{Serial: devices.SerialConfig{Path: vs.Path(), ReadTimeout: 100 * time.Millisecond}, Framing: framing},
		Printer: &devices.PrinterConfig{Serial: devices.SerialConfig{Path: vp.Path(), ReadTimeout: 100 * time.Millisecond}, QueueDir: filepath.Join(dir, "queue")},
		Header:  devices.Store{Name: "Endcap S1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-d.Done() })

	waitUntil(t, "the scanner connected", func() bool { return d.Status().Scanner == "connected" })
	if err := vs.Garbage(12, rand.New(rand.NewPCG(3, 4))); err != nil {
		t.Fatal(err)
	}
	if err := vs.Scan(unknown); err != nil {
		t.Fatal(err)
	}
	if err := vs.Scan(card); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "three scans handled", func() bool { return len(d.Status().Scans) == 3 })
	scans := d.Status().Scans // newest first
	if !strings.HasPrefix(scans[0].Result, "signed in Ada; 1 coupon(s) printing") {
		t.Errorf("the card: %+v", scans[0])
	}
	if !strings.Contains(scans[1].Result, "No customer") || scans[2].Kind != "error" {
		t.Errorf("the unknown card and the garbage: %+v", scans[1:])
	}
	waitUntil(t, "the coupon printed", func() bool { return len(vp.Receipts()) == 1 })
	text := vp.Receipts()[0].Text(48)
	if !strings.Contains(text, "CPN-") || !strings.Contains(text, "$10 off") || !strings.Contains(text, "Ada") {
		t.Errorf("the coupon slip:\n%s", text)
	}

	// A sale rung up through the API prints its receipt.
	srv := httptest.NewServer(n.routes())
	t.Cleanup(srv.Close)
	code, body := call(t, srv, "POST", "/v1/sales", `{"clerk_id":"clerk-S1","customer_id":"cust-42","lines":[{"barcode":"012345678905","qty":2}],"tenders":[{"kind":"cash","amount_cents":2400}]}`)
	if code != 201 || !strings.Contains(body, `"print":"queued"`) {
		t.Fatalf("sale: %d %s", code, body)
	}
	waitUntil(t, "the sale receipt printed", func() bool { return len(vp.Receipts()) == 2 })
	text = vp.Receipts()[1].Text(48)
	if !strings.Contains(text, "Socks") || !strings.Contains(text, "24.00") || !strings.Contains(text, "Cash") {
		t.Errorf("the sale receipt:\n%s", text)
	}
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
