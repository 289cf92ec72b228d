package e2e

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

// Random bytes, truncated JSON, wrong versions, wrong kinds and an
// oversized payload, published with mosquitto_pub on every topic the
// protocol uses: everything keeps working and nothing is lost.
func TestGarbageOnEveryTopic(t *testing.T) {
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub is not installed: run 'make deps'")
	}
	b, c := startRegion(t, "mosquitto")
	a, bb := startEdge(t, "A", b.URL(), c), startEdge(t, "B", b.URL(), c)
	converged(t, c, a, bb)
	w := startWriter(a, "S1", 20*time.Millisecond)

	tp := replication.Topics{Region: region}
	topics := []string{tp.Feed(), tp.Up("A"), tp.Down("A"), tp.Down("B"), tp.Presence("A"), tp.Up("B")}
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 512)
	for i := range random {
		random[i] = byte(rnd.IntN(256))
	}
	valid := `{"v":1,"kind":"head","region":"test","head":1,"epoch":"x/1"}`
	payloads := map[string][]byte{
		"random bytes":   random,
		"truncated JSON": []byte(valid[:len(valid)/2]),
		"wrong version":  []byte(strings.Replace(valid, `"v":1`, `"v":99`, 1)),
		"no version":     []byte(`{"kind":"head"}`),
		"wrong region":   []byte(strings.Replace(valid, `"test"`, `"other"`, 1)),
		"unknown kind":   []byte(`{"v":1,"kind":"explode","region":"test"}`),
		"unknown field":  []byte(`{"v":1,"kind":"catchup","region":"test","from":1,"boom":true}`),
		"bad upload":     []byte(`{"v":1,"kind":"upload","region":"test","mutations":[42]}`),
		"bad changes":    []byte(`{"v":1,"kind":"changes","region":"test","head":9,"entries":[{"seq":5,"mutation_id":"x/1","status":"accepted","changes":[{"t":"nope","op":"put","c":[],"v":[]}]}]}`),
		"out of order":   []byte(`{"v":1,"kind":"changes","region":"test","head":9,"entries":[{"seq":9,"mutation_id":"x/1","status":"accepted","changes":[]},{"seq":3,"mutation_id":"x/2","status":"accepted","changes":[]}]}`),
		"oversized":      bytes.Repeat([]byte("x"), replication.MaxPayload+1),
		"null":           []byte("null"),
	}
	for _, topic := range topics {
		for name, p := range payloads {
			cmd := exec.Command(pub, "-h", "127.0.0.1", "-p", portOf(b.URL()), "-u", "hub", "-P", "pw-hub", "-q", "1", "-t", topic, "-s")
			cmd.Stdin = bytes.NewReader(p)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_pub %s on %s: %v %s", name, topic, err, out)
			}
		}
	}
	n := w.count()
	w.waitCount(t, n+20)
	acked := w.finish()
	if res := bb.write(scenario.Sale("SALE-AFTER-GARBAGE", "S2", "cust-1", 1, "")); res.Status != retail.StatusAccepted {
		t.Fatalf("sale at B after the garbage: %+v", res)
	}
	converged(t, c, a, bb)
	assertSalesOnce(t, bb, "A", "S1", acked)
	if n := a.count("SELECT count(*) FROM orders WHERE id = 'SALE-AFTER-GARBAGE'"); n != 1 {
		t.Errorf("B's sale after the garbage reached A %d times", n)
	}
	// Every edge counted what it dropped; so did the leader's bridge.
	for _, e := range []*edgeProc{a, bb} {
		st, err := e.status()
		if err != nil || st.Sync.Dropped == 0 {
			t.Errorf("%s dropped nothing (%+v, %v)", e.id, st.Sync, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sr, err := c.leader().client.Stores(ctx)
	if err != nil || sr.Bridge.Dropped == 0 {
		t.Errorf("the hub's bridge dropped nothing: %+v %v", sr.Bridge, err)
	}
}

func portOf(url string) string { return url[strings.LastIndex(url, ":")+1:] }
