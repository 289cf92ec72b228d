package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// failover kills the leader with SIGKILL and times until a write through
// a surviving node is acknowledged; then restarts the killed node, lets it
// catch up, and repeats.
func (b *bench) failover(ctx context.Context) error {
	c, _, r, err := b.seeded(ctx, "failover")
	if err != nil {
		return err
	}
	defer c.close()
	var times []time.Duration
	for round := 1; round <= b.cfg.rounds; round++ {
		leader, err := c.waitLeader(ctx, 60*time.Second)
		if err != nil {
			return err
		}
		sale, err := r.sale()
		if err != nil {
			return err
		}
		t := time.Now()
		leader.kill()
		survivors := c.live()
		// The same sale until it is acknowledged: a retry of a write that
		// did commit is answered as a duplicate with its first result.
		tries := 0
		for {
			p := survivors[tries%len(survivors)]
			tries++
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			res, err := p.client.Submit(cctx, []json.RawMessage{sale})
			cancel()
			if err == nil && classify(res).accepted == 1 {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Since(t) > time.Minute {
				return fmt.Errorf("round %d: no write succeeded within a minute of killing %s (last: %v)", round, leader.id, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		d := time.Since(t)
		times = append(times, d)
		b.logf("failover round %d: killed leader %s; a write through a survivor succeeded after %.0f ms (%d attempts)", round, leader.id, d.Seconds()*1000, tries)
		if err := c.restart(ctx, leader); err != nil {
			return err
		}
		newLeader, err := c.waitLeader(ctx, 60*time.Second)
		if err != nil {
			return err
		}
		if err := c.waitAllApplied(ctx, newLeader, 60*time.Second); err != nil {
			return err
		}
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	all := make([]string, len(times))
	for i, d := range times {
		all[i] = fmt.Sprintf("%.0f", d.Seconds()*1000)
	}
	fmt.Fprintf(b.out, "\n## failover: kill -9 the leader, until a write through a surviving node is acknowledged\n")
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rounds\tmin ms\tmedian ms\tmax ms\t")
	fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t\n", len(times), ms(sorted[0]), ms(median(sorted)), ms(sorted[len(sorted)-1]))
	tw.Flush()
	fmt.Fprintf(b.out, "(each round, ms: %s; raft's default timeouts: heartbeat 1s, election 1s)\n", strings.Join(all, " "))
	return nil
}

func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
