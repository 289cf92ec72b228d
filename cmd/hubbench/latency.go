package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"text/tabwriter"
	"time"
)

// latency sends one sale per request at each fixed rate (open loop): send
// i is scheduled at start + i/rate, whatever happened to the earlier ones,
// and its latency runs from that scheduled time to its acknowledged
// result, so a slow answer or a busy sender is counted, never hidden.
func (b *bench) latency(ctx context.Context) error {
	c, leader, r, err := b.seeded(ctx, "latency")
	if err != nil {
		return err
	}
	defer c.close()
	var rows []latResult
	for _, rate := range b.cfg.rates {
		cpu0, ok0 := cpuTimes(c)
		t := time.Now()
		res, err := b.openLoop(ctx, leader, r, rate)
		if err != nil {
			return err
		}
		res.others = "-"
		if cpu1, ok1 := cpuTimes(c); ok0 && ok1 {
			var ours time.Duration
			for i := range 4 { // the 3 hubs and hubbench
				ours += cpu1[i] - cpu0[i]
			}
			res.others = pct(max(0, cpu1[4]-cpu0[4]-ours), time.Since(t))
		}
		rows = append(rows, res)
		b.logf("latency at %.0f/s: p50 %s ms, p99 %s ms, max %s ms", rate, ms(quantile(res.lat, 0.5)), ms(quantile(res.lat, 0.99)), ms(quantile(res.lat, 1)))
	}
	fmt.Fprintf(b.out, "\n## latency: one 3-line sale per request at a fixed rate for %s (open loop), to the leader\n", b.cfg.latDur)
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target/s\tachieved/s\taccepted\tnot accepted\tfailed\tp50 ms\tp90 ms\tp99 ms\tmax ms\tmost sends waiting for a sender\tCPU others\t")
	for _, res := range rows {
		lat := res.lat
		fmt.Fprintf(tw, "%.0f\t%.0f\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t\n", res.rate, res.achieved, len(lat), res.other, res.failed,
			ms(quantile(lat, 0.5)), ms(quantile(lat, 0.9)), ms(quantile(lat, 0.99)), ms(quantile(lat, 1)), res.maxQueue, res.others)
	}
	tw.Flush()
	fmt.Fprintln(b.out, "(latency: from each sale's scheduled send time to its acknowledged result: committed on a quorum and applied on the leader;\n"+
		" CPU others: every other process on the machine, share of one core)")
	return nil
}

type latResult struct {
	rate, achieved float64
	lat            []time.Duration // sorted
	other, failed  int
	maxQueue       int
	others         string // CPU share of the machine's other processes
}

// openLoop sends one sale per request at rate for --latency-duration.
func (b *bench) openLoop(ctx context.Context, leader *proc, r *region, rate float64) (latResult, error) {
	total := int(rate * b.cfg.latDur.Seconds())
	// Encode every sale first: the sender does nothing but send.
	muts, err := r.sales(total)
	if err != nil {
		return latResult{}, err
	}
	// Warm the connections and the leader up, unmeasured.
	warm, err := r.sales(min(total, 500))
	if err != nil {
		return latResult{}, err
	}
	if err := submitChunks(ctx, leader, len(warm), min(b.cfg.latConns, 64), b.cfg.timeout, func(i int) ([]json.RawMessage, error) {
		return warm[i : i+1], nil
	}); err != nil {
		return latResult{}, fmt.Errorf("warm-up: %w", err)
	}
	b.logf("latency: %d sales at %.0f/s, one per request, to leader %s", total, rate, leader.id)

	type job struct {
		i  int
		at time.Time
	}
	jobs := make(chan job, total)
	var (
		mu            sync.Mutex
		lat           []time.Duration
		failed, other int
		lastAck       time.Time
		maxQueue      int // written by the scheduler only; read after it closed jobs
	)
	start := time.Now().Add(20 * time.Millisecond)
	interval := float64(time.Second) / rate
	go func() {
		defer close(jobs)
		for i := range total {
			at := start.Add(time.Duration(float64(i) * interval))
			if d := time.Until(at); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			maxQueue = max(maxQueue, len(jobs))
			jobs <- job{i, at}
		}
	}()
	var wg sync.WaitGroup
	for range b.cfg.latConns {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				cctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
				res, err := leader.client.Submit(cctx, muts[j.i:j.i+1])
				cancel()
				done := time.Now()
				mu.Lock()
				switch {
				case err != nil:
					failed++
				case classify(res).accepted != 1:
					other++
				default:
					lat = append(lat, done.Sub(j.at))
					if done.After(lastAck) {
						lastAck = done
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return latResult{}, err
	}
	slices.Sort(lat)
	var achieved float64
	if len(lat) > 0 {
		achieved = float64(len(lat)) / lastAck.Sub(start).Seconds()
	}
	return latResult{rate: rate, achieved: achieved, lat: lat, other: other, failed: failed, maxQueue: maxQueue}, nil
}
