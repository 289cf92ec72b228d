package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/endcap/endcap/internal/procstat"
)

// tpResult is one throughput row's figures.
type tpResult struct {
	wait     string
	row      row
	elapsed  time.Duration
	accepted int
	other    int // results not accepted
	failed   int // requests that failed (error, timeout)
	requests int
	lat      []time.Duration // per request
	cpu      []time.Duration // per node, in cluster order; then hubbench; then the machine's busy and stolen time
	leader   int             // index of the leader in cpu
	entries  float64         // raft entries proposed by the leader (group commits)
	batched  float64         // mutations in them
	cpuKnown bool
}

func (r tpResult) rate() float64 { return float64(r.accepted) / r.elapsed.Seconds() }

// throughput runs the rows on a fresh cluster for each --batch-wait value.
func (b *bench) throughput(ctx context.Context) error {
	var results []tpResult
	for _, wait := range b.cfg.waits {
		var extra []string
		label := "default"
		if wait != "" {
			d, _ := time.ParseDuration(wait)
			label = d.String()
			if d == 0 {
				// The hub reads 0 as its default (2ms); negative is never wait.
				wait, label = "-1ns", "0 (never)"
			}
			extra = []string{"--batch-wait", wait}
		}
		rs, err := b.throughputCluster(ctx, label, extra)
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}
	b.printThroughput(results)
	return nil
}

func (b *bench) throughputCluster(ctx context.Context, label string, extra []string) ([]tpResult, error) {
	c, err := b.cluster(ctx, "throughput", extra...)
	if err != nil {
		return nil, err
	}
	defer c.close()
	leader, err := c.waitLeader(ctx, 30*time.Second)
	if err != nil {
		return nil, err
	}
	r := newRegion("hubbench", b.cfg.products)
	setup, err := r.setup()
	if err != nil {
		return nil, err
	}
	if err := submitChunks(ctx, leader, 1, 1, b.cfg.timeout, func(int) ([]json.RawMessage, error) { return setup, nil }); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	var out []tpResult
	for _, rw := range b.cfg.rows {
		if b.cfg.warmup > 0 {
			if _, err := b.load(ctx, c, leader, r, rw, b.cfg.warmup, 0, ""); err != nil {
				return nil, err
			}
		}
		profile := ""
		if b.cfg.pprofDir != "" && b.cfg.count == 0 && b.cfg.duration > 2*time.Second {
			profile = filepath.Join(b.cfg.pprofDir, fmt.Sprintf("ROLE-wait-%s-%dx%d.pprof", strings.Fields(label)[0], rw.writers, rw.perReq))
		}
		res, err := b.load(ctx, c, leader, r, rw, b.cfg.duration, b.cfg.count, profile)
		if err != nil {
			return nil, err
		}
		res.wait = label
		out = append(out, res)
		if st, err := status(ctx, leader); err != nil || st.State != "Leader" {
			// Writes went on through the forwarding follower, but the row
			// measured an election too: say so, and go on with the new leader.
			b.logf("throughput: %s is no longer the leader after the row (%v); the row's figures include an election", leader.id, err)
			if leader, err = c.waitLeader(ctx, 30*time.Second); err != nil {
				return nil, err
			}
		}
		b.logf("throughput batch-wait %s, %d writers x %d sales/request: %.0f sales/s (%d accepted, %d other, %d failed requests in %.1fs)",
			label, rw.writers, rw.perReq, res.rate(), res.accepted, res.other, res.failed, res.elapsed.Seconds())
	}
	// The followers applied the same: check that the run left them equal.
	if err := c.waitConverged(ctx, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("after the runs: %w", err)
	}
	return out, nil
}

// load runs one row: rw.writers writers sending rw.perReq sales per
// request to the leader, back to back, for d (or count sales in all). With
// a profile name, it saves CPU profiles of the leader and of a follower
// meanwhile (ROLE in the name is "leader" or "follower").
func (b *bench) load(ctx context.Context, c *cluster, leader *proc, r *region, rw row, d time.Duration, count int, profile string) (tpResult, error) {
	res := tpResult{row: rw}
	var (
		mu           sync.Mutex
		sent         atomic.Int64 // sales handed out, for --count
		stop         atomic.Bool
		failedLogged atomic.Int32
		firstErr     error
	)
	cpu0, cpuOK := cpuTimes(c)
	m0 := scrapeBatches(ctx, leader)
	var profiled sync.WaitGroup
	defer profiled.Wait()
	if profile != "" {
		targets := map[string]*proc{"leader": leader}
		for _, p := range c.nodes {
			if p != leader {
				targets["follower"] = p
				break
			}
		}
		for role, p := range targets {
			name := strings.Replace(profile, "ROLE", role, 1)
			profiled.Go(func() { fetchProfile(ctx, p, d-time.Second, name, b.logf) })
		}
	}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range rw.writers {
		wg.Go(func() {
			var lat []time.Duration
			var acc, other, failed, reqs int
			for !stop.Load() && ctx.Err() == nil {
				n := rw.perReq
				if count > 0 {
					if left := int64(count) - sent.Add(int64(n)); left < 0 {
						if n += int(left); n <= 0 {
							break
						}
					}
				} else if time.Now().After(deadline) {
					break
				}
				muts, err := r.sales(n)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					stop.Store(true)
					break
				}
				t0 := time.Now()
				cctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
				got, err := leader.client.Submit(cctx, muts)
				cancel()
				reqs++
				if err != nil {
					failed++
					if ctx.Err() == nil {
						if failedLogged.Add(1) <= 3 {
							b.logf("throughput: request of %d sales failed after %.0f ms (outcome unknown): %v", n, time.Since(t0).Seconds()*1000, err)
						}
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				lat = append(lat, time.Since(t0))
				o := classify(got)
				acc += o.accepted
				other += o.other
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.accepted += acc
			res.other += other
			res.failed += failed
			res.requests += reqs
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if cpu1, ok := cpuTimes(c); ok && cpuOK {
		res.cpuKnown = true
		for i := range cpu1 {
			res.cpu = append(res.cpu, cpu1[i]-cpu0[i])
		}
		res.leader = slices.Index(c.nodes, leader)
	}
	if m1 := scrapeBatches(ctx, leader); m0 != nil && m1 != nil {
		res.entries, res.batched = m1[1]-m0[1], m1[0]-m0[0]
	}
	slices.Sort(res.lat)
	return res, nil
}

// cpuTimes is the CPU time used so far by each node's process, then by
// hubbench itself, then the machine's busy time (all processes) and the
// time the hypervisor stole.
func cpuTimes(c *cluster) ([]time.Duration, bool) {
	var out []time.Duration
	for _, p := range c.nodes {
		d, ok := procstat.CPUTime(p.pid())
		if !ok {
			return nil, false
		}
		out = append(out, d)
	}
	d, ok := procstat.CPUTime(0)
	busy, steal, ok2 := procstat.MachineCPU()
	return append(out, d, busy, steal), ok && ok2
}

// scrapeBatches reads the leader's group-commit histogram from /metrics:
// the sum (mutations) and count (raft entries). nil if it cannot.
func scrapeBatches(ctx context.Context, p *proc) []float64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.httpAddr+"/metrics", nil)
	if err != nil {
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := p.client.HTTP.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := []float64{-1, -1}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for i, name := range []string{"endcap_hub_batch_mutations_sum ", "endcap_hub_batch_mutations_count "} {
			if v, ok := strings.CutPrefix(sc.Text(), name); ok {
				out[i], _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			}
		}
	}
	if out[0] < 0 || out[1] < 0 {
		return nil
	}
	return out
}

// fetchProfile saves a CPU profile of p (its --pprof endpoint).
func fetchProfile(ctx context.Context, p *proc, d time.Duration, name string, logf func(string, ...any)) {
	secs := max(1, int(d.Seconds()))
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.pprofAddr, secs), nil)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		logf("profile of %s: %v", p.id, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		logf("profile of %s: %s", p.id, resp.Status)
		return
	}
	f, err := os.Create(name)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		logf("profile: %v", err)
		return
	}
	logf("CPU profile of %s (%ds): %s", p.id, secs, name)
}

func pct(d time.Duration, of time.Duration) string {
	return fmt.Sprintf("%.0f%%", 100*d.Seconds()/of.Seconds())
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 1, 64) }

func (b *bench) printThroughput(results []tpResult) {
	fmt.Fprintf(b.out, "\n## throughput: committed-and-applied 3-line sales/s, writes to the leader, %s per row\n",
		map[bool]string{true: fmt.Sprintf("%d sales", b.cfg.count), false: b.cfg.duration.String()}[b.cfg.count > 0])
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch-wait\twriters\tsales/req\tsales/s\taccepted\tnot accepted\tfailed req\treq p50 ms\treq p99 ms\tsales/raft entry\tCPU leader\tCPU followers\tCPU hubbench\tCPU others\tstolen\tCPU ms/sale\tceiling/s\t")
	for _, r := range results {
		cpuL, cpuF, cpuB, cpuO, stolen, perSale, ceiling := "-", "-", "-", "-", "-", "-", "-"
		if r.cpuKnown {
			nodes := r.cpu[:3]
			var f, ours time.Duration
			for i, d := range nodes {
				if i != r.leader {
					f += d
				}
				ours += d
			}
			ours += r.cpu[3]
			cpuL, cpuF, cpuB = pct(nodes[r.leader], r.elapsed), pct(f/2, r.elapsed)+" each", pct(r.cpu[3], r.elapsed)
			cpuO, stolen = pct(max(0, r.cpu[4]-ours), r.elapsed), pct(r.cpu[5], r.elapsed)
			if r.accepted > 0 {
				per := ours.Seconds() / float64(r.accepted)
				perSale = strconv.FormatFloat(per*1000, 'f', 2, 64)
				ceiling = strconv.FormatFloat(float64(runtime.NumCPU())/per, 'f', 0, 64)
			}
		}
		perEntry := "-"
		if r.entries > 0 {
			perEntry = strconv.FormatFloat(r.batched/r.entries, 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.wait, r.row.writers, r.row.perReq, r.rate(), r.accepted, r.other, r.failed,
			ms(quantile(r.lat, 0.5)), ms(quantile(r.lat, 0.99)), perEntry, cpuL, cpuF, cpuB, cpuO, stolen, perSale, ceiling)
	}
	tw.Flush()
	fmt.Fprintf(b.out, "(CPU: share of one core over the row, %d cores = %d%%; \"others\" is every other process on the machine, \"stolen\" the hypervisor's steal time;\n"+
		" CPU ms/sale: the 3 hubs' and hubbench's CPU per accepted sale; ceiling/s: %d cores / that, the rate if this machine ran nothing else)\n",
		runtime.NumCPU(), 100*runtime.NumCPU(), runtime.NumCPU())
}
