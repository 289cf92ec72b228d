// Package scenario builds the small region and the store operations that
// replication's tests and tools replay: a seed (stores, clerks, products,
// customers, stock, a promotion and a coupon), and sales, reservations,
// redemptions and returns with the fields a real till would fill.
package scenario

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/endcap/endcap/retail"
)

// T0 is the scenario's "now" for validity windows.
var T0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// Stores are the seeded stores; DC1 is the distribution centre.
var Stores = []string{"S1", "S2", "S3", "S4"}

// Seed is the region every scenario starts from. SKU-LAST has one unit,
// at DC1 only: the endless-aisle conflict. Coupon CPN-ONE belongs to
// cust-1 and can be used once.
func Seed() []retail.Body {
	out := []retail.Body{
		&retail.UpsertStore{ID: "DC1", Kind: retail.KindDC, Name: "West DC", Region: "west"},
		&retail.UpsertPromotion{ID: "P10", Name: "$10 off", PromoType: retail.PromoAmountOff, Value: 1000, Audience: retail.AudienceAll,
			StartsAt: T0.AddDate(-1, 0, 0), EndsAt: T0.AddDate(5, 0, 0), Active: true},
		&retail.UpsertProduct{SKU: "SKU-1", Name: "Trail shoe", Category: "shoes", PriceCents: 8000, Active: true, Barcodes: []string{"4006381333931"}},
		&retail.UpsertProduct{SKU: "SKU-2", Name: "Socks", Category: "socks", PriceCents: 1200, Active: true, Barcodes: []string{"012345678905"}},
		&retail.UpsertProduct{SKU: "SKU-LAST", Name: "Last jacket", Category: "jackets", PriceCents: 20000, Active: true},
		&retail.AdjustStock{Location: "DC1", SKU: "SKU-LAST", Delta: 1, Reason: "received"},
		&retail.AdjustStock{Location: "DC1", SKU: "SKU-1", Delta: 1000000, Reason: "received"},
	}
	for _, s := range Stores {
		out = append(out,
			&retail.UpsertStore{ID: s, Kind: retail.KindStore, Name: "Store " + s, Region: "west"},
			&retail.UpsertClerk{ID: "clerk-" + s, StoreID: s, Name: "Clerk " + s, Role: retail.RoleAssociate, PINHash: pinHash, Active: true},
			&retail.UpsertClerk{ID: "mgr-" + s, StoreID: s, Name: "Manager " + s, Role: retail.RoleManager, PINHash: pinHash, Active: true},
			&retail.AdjustStock{Location: s, SKU: "SKU-1", Delta: 1000000, Reason: "received"},
			&retail.AdjustStock{Location: s, SKU: "SKU-2", Delta: 1000000, Reason: "received"},
		)
	}
	for i := 1; i <= 3; i++ {
		out = append(out, &retail.UpsertCustomer{ID: fmt.Sprintf("cust-%d", i), Name: fmt.Sprintf("Customer %d", i),
			Phone: fmt.Sprintf("+1555000%d", i), LoyaltyCard: fmt.Sprintf("LC-000%d", i), Since: T0.AddDate(-2, 0, 0),
			AcquiredVia: retail.AcquiredWalkIn, AcquiredStore: "S1", HomeStore: "S1"})
	}
	out = append(out,
		&retail.IssueCoupon{Code: "CPN-ONE", OfferID: "OF-1", PromotionID: "P10", CustomerID: "cust-1", Channel: retail.OfferStoreSignIn,
			StoreID: "S1", ExpiresAt: T0.AddDate(5, 0, 0)},
	)
	return out
}

// PIN is every seeded clerk's and manager's PIN.
const PIN = "4321"

// a fixed PBKDF2 hash of PIN, so the seed is the same bytes every run.
const pinHash = "pbkdf2-sha256$120000$YTEYUsIphQ+oVjZW1niXcQ$DpLU03SVz+IToKby8isa9CbkffF1UKtOZRBt7+jBxJE"

// Sale is a till sale of qty socks (SKU-2) at store, paid in cash,
// optionally with a coupon worth 1000 cents.
func Sale(id, store, customer string, qty int64, coupon string) *retail.RecordSale {
	o := retail.Order{ID: id, CustomerID: customer, Channel: retail.ChannelStore, StoreID: store, ClerkID: "clerk-" + store,
		Fulfilment: retail.CarryOut, FulfilFrom: store,
		Lines: []retail.Line{{SKU: "SKU-2", Qty: qty, UnitPriceCents: 1200}}}
	if coupon != "" {
		o.Lines = append(o.Lines, retail.Line{SKU: "SKU-1", Qty: 1, UnitPriceCents: 8000})
		o.Coupons = []retail.CouponUse{{Code: coupon, DiscountCents: 1000}}
	}
	_, _, total := o.Totals()
	o.Tenders = []retail.Tender{{Kind: retail.TenderCash, AmountCents: total}}
	return &retail.RecordSale{Order: o}
}

// CardSale is a till sale of one trail shoe paid by card, to be returned.
func CardSale(id, store, customer string) *retail.RecordSale {
	return &retail.RecordSale{Order: retail.Order{ID: id, CustomerID: customer, Channel: retail.ChannelStore, StoreID: store,
		ClerkID: "clerk-" + store, Fulfilment: retail.CarryOut, FulfilFrom: store,
		Lines:   []retail.Line{{SKU: "SKU-1", Qty: 1, UnitPriceCents: 8000}},
		Tenders: []retail.Tender{{Kind: retail.TenderCard, AmountCents: 8000, CardToken: "tok-" + customer}}}}
}

// ReturnLine returns line 1 (the shoe) of order at store, refunded to
// the card it was paid with.
func ReturnLine(id, order, store, customer string) *retail.ReturnItems {
	return &retail.ReturnItems{ID: id, OrderID: order, CustomerID: customer, StoreID: store, ClerkID: "clerk-" + store,
		Reason: "did not fit", WithReceipt: false, Restock: true,
		Lines:  []retail.ReturnLine{{OrderLineNo: 1, SKU: "SKU-1", Qty: 1, RefundCents: 8000}},
		Refund: retail.Tender{Kind: retail.TenderCard, AmountCents: 8000, CardToken: "tok-" + customer}}
}

// ReserveLast is an endless-aisle order for the last jacket, shipped from
// DC1 to the shopper's home.
func ReserveLast(id, store, customer string) *retail.PlaceOrder {
	return &retail.PlaceOrder{Order: retail.Order{ID: id, CustomerID: customer, Channel: retail.ChannelKiosk, StoreID: store,
		Fulfilment: retail.ShipToHome, FulfilFrom: "DC1", ShipAddress: "1 Main St",
		Lines:   []retail.Line{{SKU: "SKU-LAST", Qty: 1, UnitPriceCents: 20000}},
		Tenders: []retail.Tender{{Kind: retail.TenderCard, AmountCents: 20000, CardToken: "tok-" + customer}}}}
}

// Clerk is the actor of a store's clerk.
func Clerk(store string) retail.Actor { return retail.Actor{Kind: "clerk", ID: "clerk-" + store} }

// System is the actor of seeding.
var System = retail.Actor{Kind: "system", ID: "seed"}

// Changes applies bodies (as origin "hub", in order) to a scratch region
// database in dir and returns the change-log entries the hub would have
// published, numbered from 1: a replica that applies them holds exactly
// that region. Every body must be accepted.
func Changes(dir string, bodies []retail.Body) ([]Entry, error) {
	ctx := context.Background()
	db, err := retail.Open(ctx, filepath.Join(dir, "scenario-hub.db"), retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var out []Entry
	err = db.Update(ctx, func(tx *retail.Tx) error {
		for i, b := range bodies {
			m := retail.Mutation{ID: retail.MutationID{Origin: "hub", Seq: uint64(i + 1)}, HLC: retail.HLC{Wall: T0.UnixMilli()}, Actor: System, Body: b}
			res, err := retail.Apply(ctx, tx, m)
			if err != nil {
				return err
			}
			if res.Status == retail.StatusRejected {
				return fmt.Errorf("scenario mutation %d (%s): %s", i+1, b.Type(), res.Reason)
			}
			out = append(out, Entry{Seq: uint64(i + 1), MutationID: m.ID.String(), Status: res.Status, Changes: res.Changes})
		}
		return nil
	})
	return out, err
}

// Entry is one change-log entry (the shape of replication.Change, which
// this package cannot import).
type Entry struct {
	Seq        uint64
	MutationID string
	Status     retail.Status
	Changes    []retail.RowChange
}
