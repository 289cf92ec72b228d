package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/endcap/endcap/devices"
	"github.com/endcap/endcap/retail"
)

// DevicesConfig is the store's hardware: a barcode scanner at the kiosk
// and a receipt printer, on serial ports (or devsim's pseudo-terminals).
type DevicesConfig struct {
	Scanner *devices.ScannerConfig // nil: no scanner
	Printer *devices.PrinterConfig // nil: no printer
	// Header prints at the top of every receipt.
	Header devices.Store
	Layout devices.Layout
}

// Scan is one scan as the kiosk saw it and what came of it.
type Scan struct {
	At     time.Time `json:"at"`
	Code   string    `json:"code,omitempty"`
	Kind   string    `json:"kind"`
	Result string    `json:"result"` // what the kiosk did, or why not
}

// Devices runs the store's scanner and printer for the kiosk: a loyalty
// card or the app's sign-in QR scanned signs the shopper in and prints
// her coupons; other scans are listed for the apps; every problem
// (garbage, a bad check digit, an unplugged device, paper out) is
// reported and nothing crashes or stops.
type Devices struct {
	store   *Store
	log     *slog.Logger
	printer *devices.Printer
	layout  devices.Layout
	header  devices.Store

	mu      sync.Mutex
	scans   []Scan // the latest, newest last
	scanner string // connected, or why not
	done    chan struct{}
}

// StartDevices starts the scanner and printer loops until ctx ends.
func (n *Node) StartDevices(ctx context.Context, cfg DevicesConfig) (*Devices, error) {
	if n.store == nil {
		return nil, errors.New("edge: devices need the store operations (a coupon key)")
	}
	d := &Devices{store: n.store, log: n.log.With("part", "devices"), layout: cfg.Layout, header: cfg.Header, scanner: "none", done: make(chan struct{})}
	var wg sync.WaitGroup
	if cfg.Printer != nil {
		p, err := devices.NewPrinter(*cfg.Printer)
		if err != nil {
			return nil, err
		}
		d.printer = p
		wg.Add(1)
		go func() { defer wg.Done(); p.Run(ctx) }()
	}
	if cfg.Scanner != nil {
		sc := *cfg.Scanner
		sc.Logger = d.log
		s, err := devices.NewScanner(sc)
		if err != nil {
			return nil, err
		}
		events := make(chan devices.Event, 64)
		d.scanner = "starting"
		wg.Add(2)
		go func() { defer wg.Done(); s.Run(ctx, events); close(events) }()
		go func() {
			defer wg.Done()
			for ev := range events {
				d.handle(ctx, ev)
			}
		}()
	}
	go func() { wg.Wait(); close(d.done) }()
	n.devices.Store(d)
	return d, nil
}

// Done is closed when the device loops have stopped.
func (d *Devices) Done() <-chan struct{} { return d.done }

func (d *Devices) record(s Scan) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.scans = append(d.scans, s)
	if len(d.scans) > 50 {
		d.scans = d.scans[len(d.scans)-50:]
	}
}

func (d *Devices) handle(ctx context.Context, ev devices.Event) {
	switch ev.Type {
	case devices.EventConnected:
		d.mu.Lock()
		d.scanner = "connected"
		d.mu.Unlock()
		return
	case devices.EventDisconnected:
		d.mu.Lock()
		d.scanner = fmt.Sprintf("disconnected: %v", ev.Err)
		d.mu.Unlock()
		return
	case devices.EventError:
		d.log.Warn("unreadable scan", "raw", fmt.Sprintf("%q", ev.Raw), "err", ev.Err)
		d.record(Scan{At: ev.Time, Code: ev.Code, Kind: "error", Result: "could not read that: " + ev.Err.Error() + "; scan again"})
		return
	}
	s := Scan{At: ev.Time, Code: ev.Code, Kind: ev.Kind.String()}
	var by LookupKind
	var method retail.SignInMethod
	switch ev.Kind {
	case devices.KindLoyaltyCard:
		by, method = ByLoyaltyCard, retail.SignInCard
	case devices.KindSignInToken:
		by, method = BySignInToken, retail.SignInAppQR
	default:
		s.Result = "scanned; the till or kiosk screen takes it from here"
		d.record(s)
		return
	}
	ref, err := d.store.FindCustomer(ctx, by, ev.Code)
	if err != nil {
		s.Result = err.Error()
		d.record(s)
		return
	}
	res, err := d.store.SignIn(ctx, ref.ID, method)
	if err != nil {
		s.Result = err.Error()
		d.record(s)
		return
	}
	s.Result = fmt.Sprintf("signed in %s; %d coupon(s)", res.Name, len(res.Coupons))
	if len(res.Coupons) > 0 && d.printer != nil {
		if err := d.printCoupons(ctx, res); err != nil {
			s.Result += "; printing failed: " + err.Error()
		} else {
			s.Result += " printing"
		}
	}
	d.record(s)
}

func (d *Devices) printCoupons(ctx context.Context, res SignInResult) error {
	slips := make([]devices.CouponSlip, len(res.Coupons))
	for i, c := range res.Coupons {
		slips[i] = devices.CouponSlip{Store: d.header, Code: c.Code, Title: c.PromotionName, Description: c.Why,
			Customer: res.Name, ValidUntil: c.ExpiresAt, Terms: "One use. Valid for the shopper it was issued to."}
	}
	job, err := devices.CouponsJob(d.layout, "coupons-"+res.VisitID, slips)
	if err != nil {
		return err
	}
	return d.printer.Enqueue(ctx, job)
}

// DevicesStatus is what GET /v1/devices shows.
type DevicesStatus struct {
	Scanner string                `json:"scanner"`
	Scans   []Scan                `json:"scans"` // newest first
	Printer *devices.PrinterState `json:"printer,omitempty"`
	Queue   []devices.Job         `json:"queue,omitempty"`
}

// Status reports the devices and the latest scans.
func (d *Devices) Status() DevicesStatus {
	d.mu.Lock()
	st := DevicesStatus{Scanner: d.scanner, Scans: make([]Scan, 0, len(d.scans))}
	for i := len(d.scans) - 1; i >= 0; i-- {
		st.Scans = append(st.Scans, d.scans[i])
	}
	d.mu.Unlock()
	if d.printer != nil {
		ps := d.printer.State()
		st.Printer = &ps
		st.Queue, _ = d.printer.List()
	}
	return st
}

// print queues rc on the store's printer, if it has one, and says what
// became of it. The operation is done either way: a receipt that cannot
// print does not undo a sale.
func (n *Node) print(ctx context.Context, rc Receipt) string {
	d := n.devices.Load()
	if d == nil || d.printer == nil {
		return "no printer"
	}
	if err := d.PrintReceipt(ctx, rc); err != nil {
		d.log.Warn("receipt not queued", "receipt", rc.ID, "err", err)
		return err.Error()
	}
	return "queued"
}

// PrintReceipt queues a sale, return or endless-aisle order receipt. The
// job id is the receipt's kind and id, so it prints once however often it
// is queued.
func (d *Devices) PrintReceipt(ctx context.Context, rc Receipt) error {
	if d.printer == nil {
		return errors.New("no printer")
	}
	header := d.header
	if rc.StoreName != "" {
		header.Name = rc.StoreName
	}
	customer := rc.CustomerName
	items := make([]devices.Item, len(rc.Lines))
	for i, l := range rc.Lines {
		items[i] = devices.Item{SKU: l.SKU, Description: l.Name, Qty: int(l.Qty), UnitPrice: devices.Money(l.UnitPriceCents),
			Discount: devices.Money(l.UnitPriceCents*l.Qty - l.AmountCents)}
		if items[i].Discount > 0 {
			items[i].DiscountLabel = "Discount"
		}
	}
	payments := make([]devices.Payment, len(rc.Tenders))
	for i, t := range rc.Tenders {
		payments[i] = devices.Payment{Method: tenderName(t.Kind), Detail: t.Card, Amount: devices.Money(t.AmountCents)}
	}
	var job devices.Job
	var err error
	switch rc.Kind {
	case "return":
		lines := make([]devices.ReturnLine, len(rc.Lines))
		for i, l := range rc.Lines {
			lines[i] = devices.ReturnLine{SKU: l.SKU, Description: l.Name, Qty: int(l.Qty), Amount: devices.Money(l.AmountCents)}
		}
		job, err = devices.ReturnReceipt{Store: header, ReturnID: rc.ID, OriginalOrderID: rc.OriginalOrderID, Time: rc.Time,
			Clerk: rc.ClerkID, Customer: customer, Lines: lines, Refunds: payments, RefundTotal: devices.Money(rc.TotalCents),
			Currency: "USD", Policy: rc.Policy}.Job(d.layout)
	case "order":
		o := devices.OrderReceipt{Store: header, OrderID: rc.ID, Time: rc.Time, Clerk: rc.ClerkID, Customer: customer, Items: items,
			Total: devices.Money(rc.TotalCents), Currency: "USD", Payments: payments, Footer: append(rc.Notes, rc.Policy)}
		if rc.ExpectedAt != nil {
			o.Expected = *rc.ExpectedAt
		}
		if rc.Fulfilment == retail.StorePickup {
			o.Fulfilment, o.PickupStore = devices.StorePickup, []string{rc.PickupStore}
		} else {
			o.Fulfilment, o.ShipTo = devices.ShipToHome, []string{rc.ShipAddress}
		}
		job, err = o.Job(d.layout)
	default:
		var adj []devices.Adjustment
		for _, c := range rc.Coupons {
			adj = append(adj, devices.Adjustment{Label: c.Name + " " + c.Code, Amount: -devices.Money(c.DiscountCents)})
		}
		job, err = devices.SaleReceipt{Store: header, OrderID: rc.ID, Time: rc.Time, Clerk: rc.ClerkID, Customer: customer,
			Items: items, Adjustments: adj, Total: devices.Money(rc.TotalCents), Currency: "USD", Payments: payments,
			Footer: []string{rc.Policy}}.Job(d.layout)
	}
	if err != nil {
		return err
	}
	return d.printer.Enqueue(ctx, job)
}

func tenderName(k retail.TenderKind) string {
	switch k {
	case retail.TenderCard:
		return "Card"
	case retail.TenderCash:
		return "Cash"
	}
	return string(k)
}
