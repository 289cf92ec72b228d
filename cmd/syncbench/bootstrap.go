package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/endcap/endcap/internal/procrun"
	"github.com/endcap/endcap/internal/procstat"

	"github.com/endcap/endcap/retail"
	"github.com/endcap/endcap/retail/demodata"
)

const bootID = "EB" // the bootstrapping edge

// bootstrap times a new edge process from start to following the feed of
// a hub that serves a large region, and reads its peak resident memory.
func (b *bench) bootstrap(ctx context.Context) error {
	cfg := b.cfg
	b.printf("")
	b.printf("## bootstrap: a new edge process (%s --bootstrap) takes a %s-customer region from a hub's snapshot",
		cfg.edgeBinary, thousands(int64(cfg.customers)))
	src, err := b.region(ctx, cfg.customers)
	if err != nil {
		return err
	}
	e, err := b.newEnv(ctx, "bootstrap", bootID)
	if err != nil {
		return err
	}
	defer e.close()

	// One hub whose state starts as the region database: a hub opens an
	// existing state.db as it is (adding its own tables) and serves it.
	// The region has no change log: its hub sequence starts at 0.
	state := filepath.Join(e.dir, "h1", "state", "state.db")
	b.logf("bootstrap: copying %s to the hub's state", src)
	if err := copyFile(src, state); err != nil {
		return err
	}
	b.logf("bootstrap: starting the hub (it checks the database first: PRAGMA quick_check)")
	hubStart := time.Now()
	h, err := e.startHub(ctx, "h1", true, 30*time.Minute)
	if err != nil {
		return err
	}
	if _, err := e.leader(ctx, 2*time.Minute); err != nil {
		return err
	}
	b.logf("bootstrap: hub ready in %s", secs(time.Since(hubStart)))

	// The edge process, its stderr lines timed as they arrive.
	edir := filepath.Join(e.dir, bootID)
	if err := os.MkdirAll(edir, 0o755); err != nil {
		return err
	}
	pwFile := filepath.Join(e.dir, "edge-password")
	if err := os.WriteFile(pwFile, []byte(password(bootID)+"\n"), 0o600); err != nil {
		return err
	}
	httpAddr, err := procrun.FreeAddr()
	if err != nil {
		return err
	}
	var marks bootMarks
	p := &procrun.Proc{Group: &children, Name: "edge " + bootID, Bin: cfg.edgeBinary, Ready: "ready: http", OnLine: marks.line,
		Args: []string{"--id", bootID, "--data", edir, "--region", region, "--mqtt", e.broker.URL(), "--password-file", pwFile,
			"--hub", "http://" + h.http, "--http", httpAddr, "--bootstrap", "--log-level", "info"}}
	if cfg.logDir != "" {
		p.LogPath = filepath.Join(cfg.logDir, "bootstrap-"+bootID+".log")
	}
	defer p.Kill()
	mem := &memWatch{}
	memStop := make(chan struct{})
	memDone := make(chan struct{})
	meter := startCPU(map[string]int{"hub h1": h.Pid(), "syncbench (broker)": 0})
	b.logf("bootstrap: starting edge %s", bootID)
	go func() {
		defer close(memDone)
		for {
			if pid := p.Pid(); pid != 0 {
				mem.sample(pid, p.StartedAt())
			}
			select {
			case <-memStop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	err = p.Start(ctx, 30*time.Minute)
	t0 := p.StartedAt()
	if err != nil {
		close(memStop)
		return err
	}
	ready := time.Since(t0)

	// Following the feed: a mutation committed now must arrive.
	raw, err := retail.Encode(retail.Mutation{ID: retail.MutationID{Origin: "syncbench", Seq: 1}, HLC: retail.HLC{Wall: time.Now().UnixMilli()},
		Actor: retail.Actor{Kind: "system", ID: "syncbench"},
		Body:  &retail.UpsertCustomer{ID: "syncbench-probe", Name: "Probe", Since: time.Now(), AcquiredVia: retail.AcquiredWalkIn}})
	if err != nil {
		close(memStop)
		return err
	}
	res, err := e.submitRetry(ctx, []json.RawMessage{raw})
	if err != nil {
		close(memStop)
		return err
	}
	seq := res[0].Seq
	err = procrun.Poll(ctx, fmt.Sprintf("edge %s applies hub sequence %d", bootID, seq), 5*time.Minute, 5*time.Millisecond, func() error {
		got, err := b.edgeApplied(ctx, httpAddr)
		if err != nil {
			return err
		}
		if got < seq {
			return fmt.Errorf("at %d", got)
		}
		return nil
	})
	follow := time.Since(t0)
	pid := p.Pid()
	_, hwm, hwmOK := procstat.Memory(pid)
	close(memStop)
	<-memDone
	cpuLine := meter.stop()
	p.Kill()
	if err != nil {
		return err
	}

	m := marks.get()
	snap := m.bytes
	if snap == 0 {
		if fi, err := os.Stat(filepath.Join(edir, "replica.db")); err == nil {
			snap = fi.Size()
		}
	}
	since := func(t time.Time) string {
		if t.IsZero() {
			return "?"
		}
		return secs(t.Sub(t0))
	}
	b.printf("edge process start → following the feed (applied a mutation the hub committed once the edge was ready): %s", secs(follow))
	b.printf("  from the edge's start: first snapshot bytes at %s (the hub copies the database first: VACUUM INTO), downloaded and checked",
		since(m.firstByte))
	b.printf("  at %s (SHA-256, PRAGMA quick_check), installed at %s, ready at %s, the new mutation applied at %s",
		since(m.downloaded), since(m.installed), secs(ready), secs(follow))
	b.printf("snapshot: %s database (SQLite file the edge installed)", mib(snap))
	// The kernel updates VmHWM lazily (RSS counters are batched per CPU):
	// it can read a little below a VmRSS sample; report the larger.
	peak := max(hwm, mem.peak)
	if hwmOK {
		b.printf("edge peak resident memory: %s (VmHWM of the edge process at the end %s; largest VmRSS sampled every 100 ms %s, at %s from its start)",
			mib(peak), mib(hwm), mib(mem.peak), secs(mem.peakAt))
	}
	b.printf("%s", cpuLine)

	scen := fmt.Sprintf("bootstrap (%s customers)", thousands(int64(cfg.customers)))
	b.add(scen, "new edge: start → following the feed", secs(follow), "< 60 s", verdict(follow < time.Minute))
	b.add(scen, "… snapshot size", mib(snap), "", "")
	if hwmOK {
		b.add(scen, "edge peak RSS while bootstrapping (VmHWM, edge process)", mib(peak), "< 200 MB", verdict(peak < 200e6))
	} else {
		b.add(scen, "edge peak RSS while bootstrapping", "not measured (no /proc)", "< 200 MB", "")
	}
	return nil
}

// bootMarks are the moments the edge's stderr reports, and the
// snapshot's size from its log.
type bootMarks struct {
	mu                               sync.Mutex
	firstByte, downloaded, installed time.Time
	bytes                            int64
}

var bytesAttr = regexp.MustCompile(`\bbytes=(\d+)`)

// line is the edge's stderr reader: cmd/edge prints "edge: snapshot
// N/M MiB" as bytes arrive, logs "snapshot downloaded" once the file is
// checked, and prints "bootstrapped from snapshot" once installed.
func (m *bootMarks) line(at time.Time, line string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case strings.HasPrefix(line, "edge: snapshot ") && m.firstByte.IsZero():
		m.firstByte = at
	case strings.Contains(line, `msg="snapshot downloaded"`):
		m.downloaded = at
		if s := bytesAttr.FindStringSubmatch(line); s != nil {
			m.bytes, _ = strconv.ParseInt(s[1], 10, 64)
		}
	case strings.Contains(line, "bootstrapped from snapshot"):
		m.installed = at
	}
}

type bootMarksView struct {
	firstByte, downloaded, installed time.Time
	bytes                            int64
}

func (m *bootMarks) get() bootMarksView {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bootMarksView{m.firstByte, m.downloaded, m.installed, m.bytes}
}

// memWatch keeps the largest VmRSS sampled and when it was seen.
type memWatch struct {
	peak   int64
	peakAt time.Duration
}

func (w *memWatch) sample(pid int, started time.Time) {
	if rss, _, ok := procstat.Memory(pid); ok && rss > w.peak {
		w.peak, w.peakAt = rss, time.Since(started)
	}
}

// edgeApplied reads an edge's applied hub sequence from its local API.
func (b *bench) edgeApplied(ctx context.Context, addr string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := newGet(ctx, "http://"+addr+"/v1/status")
	if err != nil {
		return 0, err
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("edge status: %s", resp.Status)
	}
	var st struct {
		AppliedSeq uint64 `json:"applied_seq"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st.AppliedSeq, err
}

// regionFile names a cached region: region-1m.db for a million customers
// (the file `make bench` generates), region-1k.db, region-1500.db.
func regionFile(customers int) string {
	switch {
	case customers%1_000_000 == 0:
		return fmt.Sprintf("region-%dm.db", customers/1_000_000)
	case customers%1000 == 0:
		return fmt.Sprintf("region-%dk.db", customers/1000)
	}
	return fmt.Sprintf("region-%d.db", customers)
}

// region returns the path of a demodata region of n customers (the
// generator's defaults otherwise), generating it into the cache dir if it
// is not there.
func (b *bench) region(ctx context.Context, n int) (string, error) {
	path := filepath.Join(b.cfg.cacheDir, regionFile(n))
	switch _, err := os.Stat(path); {
	case err == nil:
		return path, checkRegion(ctx, path, n)
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	if err := os.MkdirAll(b.cfg.cacheDir, 0o755); err != nil {
		return "", err
	}
	tmp := path + ".syncbench-partial"
	removeDB(tmp)
	db, err := retail.Open(ctx, tmp, retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		return "", err
	}
	b.logf("bootstrap: generating a %d-customer region into %s (a million take about 12 minutes; kept for later runs)", n, path)
	start := time.Now()
	next := 5
	_, err = demodata.Generate(ctx, db, demodata.Config{Customers: n}, func(done, total int) {
		if total > 0 && done*100/total >= next {
			b.logf("bootstrap: generating: %d%% (%d/%d customers) after %s", done*100/total, done, total, secs(time.Since(start)))
			for next <= done*100/total {
				next += 5
			}
		}
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		removeDB(tmp)
		return "", fmt.Errorf("generate the region: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	removeDB(tmp)
	b.printf("generated %s in %s", path, secs(time.Since(start)))
	return path, nil
}

// checkRegion checks that a cached region has n customers.
func checkRegion(ctx context.Context, path string, n int) error {
	db, err := retail.Open(ctx, path, retail.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("cached region %s: %w", path, err)
	}
	defer db.Close()
	var got int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM customers").Scan(&got); err != nil {
		return fmt.Errorf("cached region %s: %w", path, err)
	}
	if got != n {
		return fmt.Errorf("cached region %s has %d customers, not %d: remove it to generate it again", path, got, n)
	}
	return nil
}

// removeDB removes a SQLite file and its WAL and shared-memory files.
func removeDB(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
}

// copyFile copies src to a new file dst, creating its directory.
func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func newGet(ctx context.Context, url string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
}

// saveBody writes r to a new file at path.
func saveBody(r io.Reader, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
