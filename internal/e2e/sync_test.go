package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/endcap/endcap/internal/mqtttest"
	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

// broker is a broker a test can restart on the same address.
type broker interface {
	URL() string
	Restart()
	Stop()
	Start()
}

// embedded is the in-process broker, restartable on its address.
type embedded struct {
	t   testing.TB
	cfg replication.BrokerConfig
	b   *replication.Broker
}

func startEmbedded(t testing.TB, pwFile string) *embedded {
	t.Helper()
	return startEmbeddedTLS(t, pwFile, "")
}

// startEmbeddedTLS starts the embedded broker with TLS on its TCP
// listener when certDir (from replication.MintCerts) is set.
func startEmbeddedTLS(t testing.TB, pwFile, certDir string) *embedded {
	t.Helper()
	e := &embedded{t: t, cfg: replication.BrokerConfig{Region: region, PasswordFile: pwFile, TCPAddr: mqtttest.FreeAddr(t), Logger: mqtttest.TestLogger(t)}}
	if certDir != "" {
		e.cfg.TLSCertFile, e.cfg.TLSKeyFile = filepath.Join(certDir, "server.pem"), filepath.Join(certDir, "server-key.pem")
	}
	e.Start()
	t.Cleanup(e.Stop)
	return e
}

func (e *embedded) URL() string {
	if e.cfg.TLSCertFile != "" {
		return "ssl://" + e.cfg.TCPAddr
	}
	return "tcp://" + e.cfg.TCPAddr
}
func (e *embedded) Stop() {
	if e.b != nil {
		e.b.Close()
		e.b = nil
	}
}
func (e *embedded) Start() {
	e.t.Helper()
	waitFor(e.t, 30*time.Second, "the embedded broker starts on "+e.cfg.TCPAddr, func() (bool, string) {
		b, err := replication.StartBroker(context.Background(), e.cfg)
		if err != nil {
			return false, err.Error()
		}
		e.b = b
		return true, ""
	})
}
func (e *embedded) Restart() { e.Stop(); e.Start() }

type mosquitto struct{ *mqtttest.Mosquitto }

func (m mosquitto) Start() { m.Mosquitto.Restart() }

func startMosquitto(t testing.TB, pwFile string) mosquitto {
	t.Helper()
	return mosquitto{mqtttest.StartMosquitto(t, mqtttest.MosquittoConfig{Region: region, PasswordFile: pwFile})}
}

// region starts a broker, three hubs and the seed. Kinds: embedded,
// mosquitto, embedded-tls, mosquitto-tls (TLS brokers need the CA: see
// startRegionTLS).
func startRegion(t testing.TB, kind string, hubArgs ...string) (broker, *cluster) {
	t.Helper()
	b, c, _ := startRegionTLS(t, kind, hubArgs...)
	return b, c
}

// startRegionTLS is startRegion that also returns the CA file hubs and
// edges verify a TLS broker with ("" without TLS).
func startRegionTLS(t testing.TB, kind string, hubArgs ...string) (broker, *cluster, string) {
	t.Helper()
	_, pwFile := creds(t)
	ca, certDir := "", ""
	if strings.HasSuffix(kind, "-tls") {
		certDir = t.TempDir()
		if err := replication.MintCerts(certDir, []string{"127.0.0.1", "localhost"}); err != nil {
			t.Fatal(err)
		}
		ca = filepath.Join(certDir, "ca.pem")
		hubArgs = append(hubArgs, "--mqtt-ca", ca)
	}
	var b broker
	switch kind {
	case "mosquitto":
		b = startMosquitto(t, pwFile)
	case "mosquitto-tls":
		b = mosquitto{mqtttest.StartMosquitto(t, mqtttest.MosquittoConfig{Region: region, PasswordFile: pwFile,
			TLSCertFile: filepath.Join(certDir, "server.pem"), TLSKeyFile: filepath.Join(certDir, "server-key.pem")})}
	default:
		b = startEmbeddedTLS(t, pwFile, certDir)
	}
	c := startCluster(t, clusterOpts{brokerURL: b.URL(), passwords: pwFile, extra: hubArgs})
	c.submit(seedBodies(t))
	return b, c, ca
}

// writer writes sales at an edge until stopped and remembers the ones
// the edge acknowledged.
type writer struct {
	e     *edgeProc
	store string
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	acked []string
}

func startWriter(e *edgeProc, store string, every time.Duration) *writer {
	w := &writer{e: e, store: store, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(every):
			}
			id := fmt.Sprintf("SALE-%s-%d", store, i)
			raw := scenario.Sale(id, store, "cust-2", 1, "")
			var res retail.Result
			code, err := w.e.do("POST", "/v1/mutations", writeReq(raw), &res)
			if err == nil && code == 200 && res.Status == retail.StatusAccepted {
				w.mu.Lock()
				w.acked = append(w.acked, id)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writer) waitCount(t testing.TB, n int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d sales at %s", n, w.store), func() (bool, string) {
		return w.count() >= n, fmt.Sprint(w.count())
	})
}

func (w *writer) finish() []string {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked...)
}

// assertSalesOnce checks, on a converged replica (equal to the hub), that
// every acknowledged sale is there, that the edge's outbox sequences were
// each applied once with nothing missing, and that the store's sock stock
// went down by exactly the units of the sales present.
func assertSalesOnce(t testing.TB, at *edgeProc, origin, store string, acked []string) {
	t.Helper()
	for _, id := range acked {
		if n := at.count("SELECT count(*) FROM orders WHERE id = ?", id); n != 1 {
			t.Errorf("acknowledged sale %s: %d copies at the hub", id, n)
		}
	}
	applied := at.count("SELECT count(*) FROM applied_mutations WHERE id LIKE ?", origin+"/%")
	maxSeq := at.count("SELECT coalesce(max(CAST(substr(id, length(?) + 2) AS INTEGER)), 0) FROM applied_mutations WHERE id LIKE ?", origin, origin+"/%")
	if applied != maxSeq || applied < len(acked) {
		t.Errorf("%s: %d mutations applied, highest sequence %d, %d acknowledged", origin, applied, maxSeq, len(acked))
	}
	sold := at.count("SELECT coalesce(sum(l.qty), 0) FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.store_id = ? AND l.sku = 'SKU-2'", store)
	onHand := at.count("SELECT on_hand FROM inventory WHERE location_id = ? AND sku = 'SKU-2'", store)
	if onHand != 1000000-sold {
		t.Errorf("%s: %d socks on hand after %d sold: stock applied more or less than once", store, onHand, sold)
	}
}

func TestSaleAtOneStoreVisibleAtAnother(t *testing.T) {
	b, c := startRegion(t, "embedded")
	a, bb := startEdge(t, "A", b.URL(), c), startEdge(t, "B", b.URL(), c)
	converged(t, c, a, bb)
	if res := a.write(scenario.Sale("SALE-HAPPY", "S1", "cust-1", 2, "")); res.Status != retail.StatusAccepted {
		t.Fatalf("sale at A: %+v", res)
	}
	waitFor(t, 30*time.Second, "A's sale at B", func() (bool, string) {
		return bb.count("SELECT count(*) FROM orders WHERE id = 'SALE-HAPPY'") == 1, ""
	})
	h := converged(t, c, a, bb)
	assertSalesOnce(t, bb, "A", "S1", []string{"SALE-HAPPY"})

	// Presence: every hub node knows both stores are online and current;
	// a clean stop and a kill -9 (the last will) both show as offline.
	stores := func(n *hubProc) map[string]replication.StoreStatus {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sr, err := n.client.Stores(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]replication.StoreStatus{}
		for _, s := range sr.Stores {
			out[s.Edge] = s
		}
		return out
	}
	for _, n := range c.nodes {
		waitFor(t, 20*time.Second, "both stores online and current at "+n.id, func() (bool, string) {
			s := stores(n)
			return s["A"].Online && s["B"].Online && s["A"].AppliedSeq == h.HubSeq && s["B"].Behind == 0, fmt.Sprint(s)
		})
	}
	bb.Stop()
	a.Kill()
	waitFor(t, 40*time.Second, "both stores offline", func() (bool, string) {
		s := stores(c.nodes[1])
		return len(s) == 2 && !s["A"].Online && !s["B"].Online, fmt.Sprint(s)
	})
}

// Over TLS, hubs and edges verify the broker's certificate with the
// region's CA (hubctl certs) and sync as over plain TCP.
func TestSyncOverTLS(t *testing.T) {
	for _, kind := range []string{"embedded-tls", "mosquitto-tls"} {
		t.Run(kind, func(t *testing.T) {
			b, c, ca := startRegionTLS(t, kind)
			if !strings.HasPrefix(b.URL(), "ssl://") {
				t.Fatalf("broker URL %s is not TLS", b.URL())
			}
			a, bb := startEdge(t, "A", b.URL(), c, "--mqtt-ca", ca), startEdge(t, "B", b.URL(), c, "--mqtt-ca", ca)
			// An edge may have bootstrapped from a follower a little
			// behind the seeding: the sale's customer must be there.
			converged(t, c, a, bb)
			if res := a.write(scenario.Sale("SALE-TLS", "S1", "cust-1", 1, "")); res.Status != retail.StatusAccepted {
				t.Fatalf("sale at A: %+v", res)
			}
			converged(t, c, a, bb)
			assertSalesOnce(t, bb, "A", "S1", []string{"SALE-TLS"})
		})
	}
}

func TestEdgeKilledDuringUpload(t *testing.T) {
	b, c := startRegion(t, "embedded")
	a := startEdge(t, "A", b.URL(), c)
	w := startWriter(a, "S1", 5*time.Millisecond)
	w.waitCount(t, 60)
	a.Kill() // kill -9 while uploads are in flight
	if err := a.Restart(); err != nil {
		t.Fatal(err)
	}
	n := w.count()
	w.waitCount(t, n+60)
	acked := w.finish()
	converged(t, c, a)
	assertSalesOnce(t, a, "A", "S1", acked)
}

func TestBrokerRestartDuringTraffic(t *testing.T) {
	for _, kind := range []string{"embedded", "mosquitto"} {
		t.Run(kind, func(t *testing.T) {
			b, c := startRegion(t, kind)
			a, bb := startEdge(t, "A", b.URL(), c), startEdge(t, "B", b.URL(), c)
			wa, wb := startWriter(a, "S1", 10*time.Millisecond), startWriter(bb, "S2", 10*time.Millisecond)
			wa.waitCount(t, 40)
			b.Restart()
			n := wa.count()
			wa.waitCount(t, n+40)
			ackedA, ackedB := wa.finish(), wb.finish()
			converged(t, c, a, bb)
			assertSalesOnce(t, bb, "A", "S1", ackedA)
			assertSalesOnce(t, a, "B", "S2", ackedB)
		})
	}
}

func TestHubLeaderKilledDuringTraffic(t *testing.T) {
	b, c := startRegion(t, "embedded")
	a, bb := startEdge(t, "A", b.URL(), c), startEdge(t, "B", b.URL(), c)
	wa, wb := startWriter(a, "S1", 10*time.Millisecond), startWriter(bb, "S2", 10*time.Millisecond)
	wa.waitCount(t, 40)
	old := c.leader()
	old.Kill()
	n := wa.count()
	wa.waitCount(t, n+60)
	ackedA, ackedB := wa.finish(), wb.finish()
	if nl := c.leader(); nl == old {
		t.Fatalf("no new leader")
	}
	converged(t, c, a, bb)
	assertSalesOnce(t, bb, "A", "S1", ackedA)
	assertSalesOnce(t, a, "B", "S2", ackedB)
}

// Stores offline at the same time: the same coupon redeemed, the same
// order line returned, the last unit reserved. The hub counts one of
// each; the other store's sale stands with its discount flagged, its
// return is flagged, its reservation rejected — all shown to its clerk.
func TestConflictsBetweenOfflineStores(t *testing.T) {
	b, c := startRegion(t, "embedded")
	c.submit([]jsonRaw{mustEncode(t, "web", 1, scenario.CardSale("ORD-WEB", "S3", "cust-2"))})
	a, bb := startEdge(t, "A", b.URL(), c), startEdge(t, "B", b.URL(), c)
	converged(t, c, a, bb)
	b.Stop() // both stores offline
	for _, s := range []struct {
		e     *edgeProc
		store string
	}{{a, "S1"}, {bb, "S2"}} {
		for _, body := range []retail.Body{
			scenario.Sale("SALE-"+s.store, s.store, "cust-1", 1, "CPN-ONE"),
			scenario.ReturnLine("RET-"+s.store, "ORD-WEB", s.store, "cust-2"),
			scenario.ReserveLast("RES-"+s.store, s.store, "cust-3"),
		} {
			if res := s.e.write(body); res.Status != retail.StatusAccepted {
				t.Fatalf("%s offline at %s: %+v", body.Type(), s.store, res)
			}
		}
	}
	b.Start()
	converged(t, c, a, bb)
	var loser *edgeProc
	for _, e := range []*edgeProc{a, bb} {
		if len(e.attention()) > 0 {
			loser = e
		}
	}
	if loser == nil {
		t.Fatal("no store has anything on its attention list")
	}
	winner := a
	if loser == a {
		winner = bb
	}
	if items := winner.attention(); len(items) != 0 {
		t.Errorf("%s also needs attention: %+v", winner.id, items)
	}
	got := map[string]string{}
	for _, it := range loser.attention() {
		kind := it.Code
		for _, e := range it.Exceptions {
			if kind == "" || e.Kind == retail.ExDuplicateRedemption || e.Kind == retail.ExOverReturnUnits {
				kind = string(e.Kind)
			}
		}
		got[it.Type] = it.Status + "/" + kind
	}
	want := map[string]string{
		"record_sale":  "flagged/" + string(retail.ExDuplicateRedemption),
		"return_items": "flagged/" + string(retail.ExOverReturnUnits),
		"place_order":  "rejected/" + retail.CodeInsufficientStock,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s's attention list: %v, want %v", loser.id, got, want)
	}
	store := map[*edgeProc]string{a: "S1", bb: "S2"}[loser]
	if n := loser.count("SELECT count(*) FROM orders WHERE id = ?", "RES-"+store); n != 0 {
		t.Errorf("the rejected reservation is still in %s's replica", loser.id)
	}
	if n := loser.count("SELECT count(*) FROM coupons WHERE code = 'CPN-ONE' AND redeemed_order_id IS NOT NULL"); n != 1 {
		t.Errorf("CPN-ONE redeemed %d times", n)
	}
}

func TestEdgeBackAfterAWeekOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 hub mutations; not in -short")
	}
	b, c := startRegion(t, "embedded", "--retain-changes", "50000")
	_, pwFile := creds(t)
	nowhere := startEmbedded(t, pwFile) // a broker no hub uses: the edges are cut off
	cEdge, dEdge := startEdge(t, "C", b.URL(), c), startEdge(t, "D", b.URL(), c)
	converged(t, c, cEdge, dEdge)
	cut := func(e *edgeProc) {
		e.Stop()
		e.Args = replaceFlag(e.Args, "--mqtt", nowhere.URL())
		if err := e.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	back := func(e *edgeProc) {
		e.Stop()
		e.Args = replaceFlag(e.Args, "--mqtt", b.URL())
		if err := e.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	cut(dEdge)
	hubWrites(t, c, 0, 60000)
	cut(cEdge)
	for i := range 1000 {
		for _, e := range []*edgeProc{cEdge, dEdge} {
			store := map[*edgeProc]string{cEdge: "S3", dEdge: "S4"}[e]
			if res := e.write(scenario.Sale(fmt.Sprintf("WEEK-%s-%d", store, i), store, "cust-3", 1, "")); res.Status != retail.StatusAccepted {
				t.Fatalf("offline sale: %+v", res)
			}
		}
	}
	hubWrites(t, c, 60000, 100000)
	start := time.Now()
	back(cEdge) // missed 40,000: within the retained log
	back(dEdge) // missed 100,000: behind it, so a snapshot
	converged(t, c, cEdge, dEdge)
	t.Logf("both edges converged %s after reconnecting", time.Since(start).Round(time.Millisecond))
	stC, _ := cEdge.status()
	stD, _ := dEdge.status()
	if stC.Sync.Bootstraps != 0 || stD.Sync.Bootstraps != 1 {
		t.Errorf("bootstraps: C %d (want 0), D %d (want 1)", stC.Sync.Bootstraps, stD.Sync.Bootstraps)
	}
	for _, e := range []*edgeProc{cEdge, dEdge} {
		if n := e.count("SELECT count(*) FROM orders WHERE id LIKE 'WEEK-%'"); n != 2000 {
			t.Errorf("%s sees %d of the 2,000 offline sales", e.id, n)
		}
	}
}

// hubWrites submits stock counts [from, to) at the hub, as the web shop
// and the other stores would, in batches of 1,000.
func hubWrites(t testing.TB, c *cluster, from, to int) {
	t.Helper()
	for i := from; i < to; i += 1000 {
		var raws []jsonRaw
		for j := i; j < min(i+1000, to); j++ {
			raws = append(raws, mustEncode(t, "web", uint64(j+2), &retail.AdjustStock{Location: "S1", SKU: "SKU-1", Delta: 1, Reason: "count"}))
		}
		c.submit(raws)
	}
}

func replaceFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = value
		}
	}
	return out
}
