package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/endcap/endcap/hub"
	"github.com/endcap/endcap/retail"
)

// region makes the mutations: a store with products and stock, sales in
// it, customers. Mutation ids are origin/seq with one sequence for the
// whole run, so every mutation is new to the hub. Safe for concurrent use.
type region struct {
	origin   string
	products int
	seq      atomic.Uint64
	orders   atomic.Uint64
	base     time.Time
}

func newRegion(origin string, products int) *region {
	return &region{origin: origin, products: products, base: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
}

func (r *region) encode(b retail.Body) (json.RawMessage, error) {
	seq := r.seq.Add(1)
	m := retail.Mutation{ID: retail.MutationID{Origin: r.origin, Seq: seq},
		HLC:   retail.HLC{Wall: r.base.UnixMilli() + int64(seq)},
		Actor: retail.Actor{Kind: "system", ID: "hubbench"}, Body: b}
	return retail.Encode(m)
}

func (r *region) sku(i int) string { return fmt.Sprintf("SKU-%04d", i%r.products) }

// setup is store S1 and the products, each with a billion units in S1.
func (r *region) setup() ([]json.RawMessage, error) {
	bodies := []retail.Body{&retail.UpsertStore{ID: "S1", Kind: retail.KindStore, Name: "Main St", Region: "bench"}}
	for i := range r.products {
		sku := r.sku(i)
		bodies = append(bodies, &retail.UpsertProduct{SKU: sku, Name: "Product " + sku, Category: "bench", PriceCents: 1000, Active: true},
			&retail.AdjustStock{Location: "S1", SKU: sku, Delta: 1_000_000_000, Reason: "received"})
	}
	out := make([]json.RawMessage, 0, len(bodies))
	for _, b := range bodies {
		raw, err := r.encode(b)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}

// sale is a 3-line till sale paid in cash, with a new order id.
func (r *region) sale() (json.RawMessage, error) {
	n := int(r.orders.Add(1))
	o := retail.Order{ID: fmt.Sprintf("%s-o%d", r.origin, n), Channel: retail.ChannelStore, StoreID: "S1", Fulfilment: retail.CarryOut}
	for l := range 3 {
		o.Lines = append(o.Lines, retail.Line{SKU: r.sku(n*3 + l), Qty: 1, UnitPriceCents: 1000})
	}
	o.Tenders = []retail.Tender{{Kind: retail.TenderCash, AmountCents: 3000}}
	return r.encode(&retail.RecordSale{Order: o})
}

// sales is n sales.
func (r *region) sales(n int) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, n)
	for i := range out {
		var err error
		if out[i], err = r.sale(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// customer is customer number i.
func (r *region) customer(i int) (json.RawMessage, error) {
	id := fmt.Sprintf("C%07d", i)
	return r.encode(&retail.UpsertCustomer{ID: id, Name: "Customer " + id, Email: id + "@example.com",
		Phone: fmt.Sprintf("+1555%07d", i), LoyaltyCard: "L" + id[1:], Since: r.base.Add(-time.Duration(i) * time.Minute),
		AcquiredVia: retail.AcquiredWalkIn, HomeStore: "S1", Contact: retail.Contact{Email: true, SMS: i%3 == 0}})
}

// outcome sorts a submission's results: accepted counts the mutations
// acknowledged as applied (duplicates of accepted ones included: a retry
// of a write whose first answer was lost).
type outcome struct{ accepted, other int }

func classify(res []hub.MutationResult) (o outcome) {
	for _, r := range res {
		if r.Err == "" && r.Status == retail.StatusAccepted {
			o.accepted++
		} else {
			o.other++
		}
	}
	return o
}

// submitChunks sends n requests to p, conc at a time; request i carries
// the mutations chunk(i) returns. It fails on any error or on a result
// that is not accepted.
func submitChunks(ctx context.Context, p *proc, n, conc int, timeout time.Duration, chunk func(i int) ([]json.RawMessage, error)) error {
	var next atomic.Int64
	errc := make(chan error, conc)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range conc {
		go func() {
			errc <- func() error {
				for {
					i := int(next.Add(1) - 1)
					if i >= n || ctx.Err() != nil {
						return ctx.Err()
					}
					muts, err := chunk(i)
					if err != nil {
						return err
					}
					cctx, ccancel := context.WithTimeout(ctx, timeout)
					res, err := p.client.Submit(cctx, muts)
					ccancel()
					if err != nil {
						return fmt.Errorf("submit to %s: %w", p.id, err)
					}
					if err := firstBad(res); err != nil {
						return err
					}
				}
			}()
		}()
	}
	var first error
	for range conc {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

func firstBad(res []hub.MutationResult) error {
	for _, r := range res {
		if r.Err != "" || r.Status != retail.StatusAccepted {
			return fmt.Errorf("mutation %s: status %s %s %s %s", r.ID, r.Status, r.Code, r.Reason, r.Err)
		}
	}
	return nil
}
