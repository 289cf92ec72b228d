package main

import (
	"fmt"
	"time"

	"github.com/endcap/endcap/devices"
)

// sampleJob builds a demo receipt of a kind, with an id of its own so each
// :print prints.
func sampleJob(kind string, now time.Time) (devices.Job, error) {
	id := fmt.Sprintf("DEMO-%s", now.Format("150405.000000"))
	store := devices.Store{
		Name:     "Endcap Demo",
		Lines:    []string{"1 Sample Street, Springfield"},
		Register: "devsim",
	}
	items := []devices.Item{
		{SKU: "4006381333931", Description: "Espresso cups, set of 4", Qty: 2, UnitPrice: 1299},
		{SKU: "96385074", Description: "Coffee filters, 80 pcs", UnitPrice: 349},
	}
	var l devices.Layout
	switch kind {
	case "sale":
		return devices.SaleReceipt{
			Store: store, OrderID: id, Time: now, Clerk: "Demo", Customer: "Jane Doe (LC*****7897)",
			Items: items, Tax: devices.Tax{Label: "VAT 20%", Amount: 491, Included: true},
			Total: 2947, Currency: "EUR",
			Payments: []devices.Payment{{Method: "Card", Detail: "VISA ****1234", Amount: 2947}},
			Footer:   []string{"Thank you for shopping at Endcap!"},
		}.Job(l)
	case "return":
		return devices.ReturnReceipt{
			Store: store, ReturnID: id, OriginalOrderID: "S7-000123", Time: now, Clerk: "Demo",
			Lines:       []devices.ReturnLine{{SKU: "96385074", Description: "Coffee filters, 80 pcs", Amount: 349, Reason: "changed mind"}},
			Refunds:     []devices.Payment{{Method: "Card", Detail: "VISA ****1234", Amount: 349}},
			RefundTotal: 349, Currency: "EUR",
			Policy: "Items can be returned within 30 days of purchase, unused and in their original packaging.",
		}.Job(l)
	case "order", "pickup":
		o := devices.OrderReceipt{
			Store: store, OrderID: id, Time: now, Clerk: "Demo", Customer: "Jane Doe",
			Items:      []devices.Item{{SKU: "5901234123457", Description: "Stand mixer, red", UnitPrice: 34900}},
			Fulfilment: devices.ShipToHome, ShipTo: []string{"Jane Doe", "4 Rue des Lilas", "75011 Paris"},
			Expected: now.AddDate(0, 0, 3), Total: 34900, Currency: "EUR",
			Payments: []devices.Payment{{Method: "Card", Amount: 34900}},
		}
		if kind == "pickup" {
			o.Fulfilment, o.ShipTo, o.PickupStore = devices.StorePickup, nil, []string{"Endcap Riverside", "1 Quay Road"}
		}
		return o.Job(l)
	case "coupon", "coupons":
		return devices.CouponsJob(l, id, []devices.CouponSlip{{
			Store: store, Code: "CPN-MFRGGZDFMZTWQ2LK", Title: "10% off kitchenware",
			Customer: "Jane Doe", ValidUntil: now.AddDate(0, 1, 0), Terms: "One use. Scan at any Endcap till.",
		}})
	}
	return devices.Job{}, fmt.Errorf("no sample %q (sale, return, order, pickup, coupons)", kind)
}
