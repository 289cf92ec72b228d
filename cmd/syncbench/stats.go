package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/endcap/endcap/internal/procstat"
)

// dist is a sorted sample of durations.
type dist []time.Duration

func newDist(d []time.Duration) dist {
	d = slices.Clone(d)
	slices.Sort(d)
	return d
}

// pct is the q-th quantile (0..1), nearest rank; 0 for an empty sample.
func (d dist) pct(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func (d dist) max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}

func (d dist) mean() time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

// summary is "p50 … p90 … p99 … max …" in milliseconds.
func (d dist) summary() string {
	if len(d) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  mean %s  (n=%d)", ms(d.pct(.5)), ms(d.pct(.9)), ms(d.pct(.99)), ms(d.max()), ms(d.mean()), len(d))
}

// ms formats a duration in milliseconds with sensible precision.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f < 10:
		return fmt.Sprintf("%.2f ms", f)
	case f < 100:
		return fmt.Sprintf("%.1f ms", f)
	default:
		return fmt.Sprintf("%.0f ms", f)
	}
}

// secs formats a duration in seconds.
func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// thousands formats n with commas: 1234567 → 1,234,567.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// mib formats bytes as MiB (and GiB when large).
func mib(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.2f GiB (%s bytes)", float64(n)/(1<<30), thousands(n))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// cpuMeter measures the CPU the named processes use over a window, as
// percent of one core, and what the rest of the machine used meanwhile.
type cpuMeter struct {
	t0     time.Time
	pids   map[string]int // name → pid; 0 is this process
	start  map[string]time.Duration
	busy0  time.Duration
	steal0 time.Duration
	ok     bool
}

func startCPU(pids map[string]int) *cpuMeter {
	m := &cpuMeter{t0: time.Now(), pids: pids, start: map[string]time.Duration{}}
	for name, pid := range pids {
		m.start[name], _ = procstat.CPUTime(pid)
	}
	m.busy0, m.steal0, m.ok = procstat.MachineCPU()
	return m
}

// stop returns one line: each process's share of a core, the rest of the
// machine's, and the steal time.
func (m *cpuMeter) stop() string {
	wall := time.Since(m.t0)
	if !m.ok || wall <= 0 {
		return "CPU: not measured"
	}
	busy, steal, ok := procstat.MachineCPU()
	if !ok {
		return "CPU: not measured"
	}
	names := make([]string, 0, len(m.pids))
	for n := range m.pids {
		names = append(names, n)
	}
	sort.Strings(names)
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / wall.Seconds() }
	var parts []string
	var ours time.Duration
	for _, n := range names {
		t, ok := procstat.CPUTime(m.pids[n])
		if !ok {
			parts = append(parts, n+" ?")
			continue
		}
		d := t - m.start[n]
		ours += d
		parts = append(parts, fmt.Sprintf("%s %.0f%%", n, pct(d)))
	}
	others := busy - m.busy0 - ours
	return fmt.Sprintf("CPU (%% of one core, over %s): %s; all other processes %.0f%%; steal %.0f%%; load average %s",
		secs(wall), strings.Join(parts, ", "), max(pct(others), 0), pct(steal-m.steal0), procstat.LoadAverage())
}
