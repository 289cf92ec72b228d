package devices_test

import (
	"time"

	"github.com/endcap/endcap/devices"
)

// Receipt fixtures: what the edge would fill in from its replica.

var (
	fixtureZone  = time.FixedZone("CET", 3600)
	fixtureTime  = time.Date(2026, 11, 22, 14, 5, 0, 0, fixtureZone)
	fixtureStore = devices.Store{
		Name:     "Endcap Springfield",
		Lines:    []string{"12 Market Street, Springfield", "Tel 0123 456 789  VAT FR12345678901"},
		Register: "Till 2",
	}
)

func fixtureSale() devices.SaleReceipt {
	return devices.SaleReceipt{
		Store:    fixtureStore,
		OrderID:  "S7-000123",
		Time:     fixtureTime,
		Clerk:    "Ana",
		Customer: "Jane Doe (LC*****7897)",
		Items: []devices.Item{
			{SKU: "4006381333931", Description: "Espresso cups, set of 4", Qty: 2, UnitPrice: 1299},
			{SKU: "96385074", Description: "Café crème filter 1×4 — 80 pcs", UnitPrice: 349},
			{SKU: "036000291452", Description: "Chef's knife 20 cm with a very long product name that does not fit", UnitPrice: 4999, Discount: 500, DiscountLabel: "Promo 10%"},
		},
		Adjustments: []devices.Adjustment{{Label: "Coupon CPN-MFRGGZDF", Amount: -500}},
		Tax:         devices.Tax{Label: "VAT 20%", Amount: 1158, Included: true},
		Total:       6946,
		Currency:    "EUR",
		Payments: []devices.Payment{
			{Method: "Card", Detail: "VISA ****1234", Amount: 5000},
			{Method: "Cash", Amount: 2000},
		},
		Change: 54,
		Footer: []string{"Thank you for shopping at Endcap!", "Returns within 30 days with this receipt or your loyalty card."},
	}
}

func fixtureReturn() devices.ReturnReceipt {
	return devices.ReturnReceipt{
		Store:           fixtureStore,
		ReturnID:        "R7-000045",
		OriginalOrderID: "W-000789",
		OriginalTime:    time.Date(2026, 11, 2, 10, 30, 0, 0, fixtureZone),
		Time:            fixtureTime,
		Clerk:           "Ana",
		Customer:        "Jane Doe (LC*****7897)",
		Lines: []devices.ReturnLine{
			{SKU: "4006381333931", Description: "Espresso cups, set of 4", Qty: 1, Amount: 1299, Reason: "damaged in transit"},
			{SKU: "96385074", Description: "Café crème filter", Amount: 349, Reason: "changed mind"},
		},
		Refunds:     []devices.Payment{{Method: "Card", Detail: "VISA ****1234", Amount: 1648}},
		RefundTotal: 1648,
		Currency:    "EUR",
		Policy:      "Items can be returned within 30 days of purchase, unused and in their original packaging. Refunds go back to the original tender. Online and phone orders can be returned in any Endcap store without the receipt.",
	}
}

func fixtureOrder(f devices.Fulfilment) devices.OrderReceipt {
	o := devices.OrderReceipt{
		Store:      fixtureStore,
		OrderID:    "W-000790",
		Time:       fixtureTime,
		Clerk:      "Ana",
		Customer:   "Jane Doe (LC*****7897)",
		Items:      []devices.Item{{SKU: "5901234123457", Description: "Stand mixer, red", UnitPrice: 34900}},
		Fulfilment: f,
		Expected:   time.Date(2026, 11, 25, 0, 0, 0, 0, fixtureZone),
		Tax:        devices.Tax{Label: "VAT 20%", Amount: 5817, Included: true},
		Total:      34900,
		Currency:   "EUR",
		Payments:   []devices.Payment{{Method: "Card", Detail: "VISA ****1234", Amount: 34900}},
		Footer:     []string{"We will text you when it ships."},
	}
	switch f {
	case devices.ShipToHome:
		o.ShipTo = []string{"Jane Doe", "4 Rue des Lilas", "75011 Paris"}
		o.Shipping = 0
	case devices.StorePickup:
		o.OrderID = "W-000791"
		o.PickupStore = []string{"Endcap Riverside", "1 Quay Road, Riverside"}
		o.Footer = []string{"We will text you when it is ready."}
	}
	return o
}

func fixtureCoupons() []devices.CouponSlip {
	return []devices.CouponSlip{
		{
			Store:       fixtureStore,
			Code:        "CPN-MFRGGZDFMZTWQ2LK",
			Title:       "10% off kitchenware",
			Description: "On any one kitchenware item from the mixer aisle.",
			Customer:    "Jane Doe",
			ValidUntil:  time.Date(2026, 12, 31, 0, 0, 0, 0, fixtureZone),
			Terms:       "One use. Not valid with other offers. Scan at any Endcap till.",
		},
		{
			Store:      fixtureStore,
			Code:       "CPN-ONSWG4TFOQ",
			Title:      "5 EUR off your next visit",
			ValidUntil: time.Date(2027, 1, 15, 0, 0, 0, 0, fixtureZone),
		},
	}
}
