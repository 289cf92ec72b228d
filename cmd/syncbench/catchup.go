package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/endcap/endcap/internal/procrun"
	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/retail"
)

// catchup runs the returning-edge scenario on e's cluster: an edge
// follows the feed, goes offline while the hub commits N sales, then
// starts again; timed from its start until it has applied the hub's
// sequence.
func (b *bench) catchup(ctx context.Context, e *env) error {
	cfg := b.cfg
	b.printf("")
	b.printf("## catchup: an edge (in this process, durability %s) is offline while the hub commits %s sales (%d a request), then returns",
		durabilityName(cfg.durability), thousands(int64(cfg.catchupN)), cfg.catchupBatch)
	leader, err := e.leader(ctx, 30*time.Second)
	if err != nil {
		return err
	}
	st, err := leader.status(ctx)
	if err != nil {
		return err
	}
	dir := filepath.Join(e.dir, "edges", returningID)
	n, err := e.startEdge(ctx, returningID, dir)
	if err != nil {
		return err
	}
	err = waitApplied(ctx, n, st.HubSeq, 5*time.Minute, 20*time.Millisecond)
	n.Close()
	if err != nil {
		return err
	}
	from := st.HubSeq

	// The hub commits N sales while the edge is away.
	b.logf("catchup: edge %s is offline at hub sequence %d; the hub commits %d sales", returningID, from, cfg.catchupN)
	loadStart := time.Now()
	if err := b.loadSales(ctx, e, cfg.catchupN); err != nil {
		return fmt.Errorf("load the hub: %w", err)
	}
	loadTook := time.Since(loadStart)
	if leader, err = e.leader(ctx, 30*time.Second); err != nil {
		return err
	}
	if st, err = leader.status(ctx); err != nil {
		return err
	}
	target := st.HubSeq
	entries := target - from
	b.printf("the hub committed %s sales in %s (%.0f/s, 3 hubs, %d requests in flight)", thousands(int64(cfg.catchupN)), secs(loadTook),
		float64(cfg.catchupN)/loadTook.Seconds(), cfg.catchupConns)

	// The edge returns.
	b.logf("catchup: edge %s returns; %d entries to apply", returningID, entries)
	meter := startCPU(map[string]int{"syncbench (edge, broker)": 0, "hub " + leader.id + " (leader)": leader.Pid()})
	stopProf := func() {}
	if cfg.pprofDir != "" {
		stopProf = b.profileSelf(filepath.Join(cfg.pprofDir, "catchup-syncbench.pprof"))
		hubProf := make(chan error, 1)
		go func() {
			hubProf <- b.profileHub(ctx, leader, 15*time.Second, filepath.Join(cfg.pprofDir, "catchup-hub-leader.pprof"))
		}()
		stopSelf := stopProf
		stopProf = func() {
			stopSelf()
			if err := <-hubProf; err != nil {
				b.logf("catchup: hub profile: %v", err)
			}
		}
	}
	t0 := time.Now()
	n, err = e.startEdge(ctx, returningID, dir)
	if err != nil {
		stopProf()
		return err
	}
	defer n.Close()
	var first time.Duration
	err = procrun.Poll(ctx, fmt.Sprintf("edge %s catches up to %d", returningID, target), 30*time.Minute, 5*time.Millisecond, func() error {
		got, err := n.Replica().AppliedSeq(ctx)
		if err != nil {
			return err
		}
		if got > from && first == 0 {
			first = time.Since(t0)
		}
		if got < target {
			return fmt.Errorf("at %d (%s)", got, n.Sync().LastError())
		}
		return nil
	})
	took := time.Since(t0)
	stopProf()
	cpuLine := meter.stop()
	if err != nil {
		return err
	}
	stats := n.Sync().Stats()

	// Row changes in the entries applied (not timed).
	rows, err := b.countRows(ctx, leader, from+1, target)
	if err != nil {
		return fmt.Errorf("count row changes: %w", err)
	}
	perEntry := float64(rows) / float64(entries)
	eps := float64(entries) / took.Seconds()
	rps := float64(rows) / took.Seconds()
	b.printf("caught up %s change-log entries (%s row changes, %.1f an entry) in %s: %.0f entries/s, %.0f row changes/s",
		thousands(int64(entries)), thousands(rows), perEntry, secs(took), eps, rps)
	b.printf("  from edge.Start: first entry applied after %s; catch-up requests %d, feed entries applied %d, sync error %q",
		ms(first), stats.CatchupRequests, stats.FeedApplied, n.Sync().LastError())
	b.printf("%s", cpuLine)

	scen := fmt.Sprintf("catchup (%s entries)", thousands(int64(entries)))
	// Issue 5's "changes applied per second": the row changes the hub
	// leader publishes (a change-log entry is one mutation's, 5 for a sale).
	b.add(scen, "returning edge: row changes applied/s", fmt.Sprintf("%.0f/s (%.1f an entry)", rps, perEntry), "≥ 50,000/s", verdict(rps >= 50_000))
	b.add(scen, "… change-log entries applied/s", fmt.Sprintf("%.0f/s", eps), "", "")
	b.add(scen, "… time from edge start to applied == hub seq", secs(took), "", "")
	return nil
}

// loadSales commits n till sales through the hub's POST /v1/mutations,
// catchupBatch a request, catchupConns requests in flight.
func (b *bench) loadSales(ctx context.Context, e *env, n int) error {
	batch := b.cfg.catchupBatch
	reqs := (n + batch - 1) / batch
	var next atomic.Int64
	errc := make(chan error, b.cfg.catchupConns)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffff)
	for range b.cfg.catchupConns {
		go func() {
			errc <- func() error {
				for {
					r := int(next.Add(1) - 1)
					if r >= reqs || ctx.Err() != nil {
						return ctx.Err()
					}
					var raws []json.RawMessage
					for i := r * batch; i < min((r+1)*batch, n); i++ {
						store := scenario.Stores[i%len(scenario.Stores)]
						raw, err := retail.Encode(retail.Mutation{ID: retail.MutationID{Origin: "bulk", Seq: uint64(i + 1)},
							HLC: retail.HLC{Wall: time.Now().UnixMilli()}, Actor: scenario.Clerk(store),
							Body: scenario.Sale(fmt.Sprintf("bulk-%s-%d", run, i), store, "", 1, "")})
						if err != nil {
							return err
						}
						raws = append(raws, raw)
					}
					if _, err := e.submitRetry(ctx, raws); err != nil {
						return err
					}
				}
			}()
		}()
	}
	var first error
	for range b.cfg.catchupConns {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// countRows counts the row changes in change-log entries from..to.
func (b *bench) countRows(ctx context.Context, h *hubProc, from, to uint64) (int64, error) {
	var rows int64
	for from <= to {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		resp, err := h.client.Changes(cctx, from, int(min(to-from+1, 10000)))
		cancel()
		if err != nil {
			return 0, err
		}
		if len(resp.Changes) == 0 {
			return 0, fmt.Errorf("no entries from %d", from)
		}
		for _, c := range resp.Changes {
			rows += int64(len(c.Changes))
		}
		from = resp.Changes[len(resp.Changes)-1].Seq + 1
	}
	return rows, nil
}
