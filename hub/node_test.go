package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/retail"
	"github.com/hashicorp/raft"
)

// startNode runs a one-node hub in this process on loopback ports.
func startNode(t *testing.T, mod func(*Config)) (*Node, *Client) {
	t.Helper()
	cfg := Config{ID: "h1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Bootstrap: true,
		Token: "op-token", EdgeCredentials: map[string]string{"edge-S1": "edge-secret"}}
	if mod != nil {
		mod(&cfg)
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for n.Raft().State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Wait for the leader's member record too: forwarding and status use it.
	for {
		if m, ok := n.leader(context.Background()); ok && m.HTTPAddr != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("leader's member record not applied")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n, &Client{Addr: n.HTTPAddr(), Token: cfg.Token}
}

func encode(t *testing.T, seq uint64, b retail.Body) json.RawMessage {
	t.Helper()
	raw, err := retail.Encode(retail.Mutation{ID: retail.MutationID{Origin: "t", Seq: seq}, HLC: retail.HLC{Wall: 1793613600000 + int64(seq)},
		Actor: retail.Actor{Kind: "system", ID: "t"}, Body: b})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func stores(t *testing.T, from, n int) []json.RawMessage {
	var out []json.RawMessage
	for i := from; i < from+n; i++ {
		out = append(out, encode(t, uint64(i), &retail.UpsertStore{ID: fmt.Sprintf("S%d", i), Kind: retail.KindStore, Name: "x", Region: "west"}))
	}
	return out
}

// Every operator route refuses a request without the token with 401 and
// an empty-of-data body; the snapshot takes an edge's credentials.
func TestAuth(t *testing.T) {
	n, _ := startNode(t, nil)
	base := "http://" + n.HTTPAddr()
	routes := []struct{ method, path string }{
		{"GET", "/v1/status"}, {"POST", "/v1/mutations"}, {"GET", "/v1/changes?from=1"}, {"GET", "/v1/snapshot"},
		{"POST", "/v1/join"}, {"POST", "/v1/remove"}, {"POST", "/v1/leader-transfer"}, {"POST", "/v1/snapshot"},
		{"GET", "/v1/checksum"}, {"GET", "/metrics"},
	}
	creds := []struct {
		name string
		set  func(*http.Request)
	}{
		{"none", func(*http.Request) {}},
		{"wrong token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }},
		{"token without Bearer", func(r *http.Request) { r.Header.Set("Authorization", "op-token") }},
		{"edge credentials on an operator route", func(r *http.Request) { r.SetBasicAuth("edge-S1", "edge-secret") }},
		{"wrong edge secret", func(r *http.Request) { r.SetBasicAuth("edge-S1", "guess") }},
		{"unknown edge", func(r *http.Request) { r.SetBasicAuth("edge-S9", "edge-secret") }},
	}
	for _, rt := range routes {
		for _, c := range creds {
			if rt.path == "/v1/snapshot" && rt.method == "GET" && c.name == "edge credentials on an operator route" {
				continue // that one is allowed: below
			}
			t.Run(rt.method+" "+rt.path+" "+c.name, func(t *testing.T) {
				req, _ := http.NewRequest(rt.method, base+rt.path, strings.NewReader("[]"))
				c.set(req)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || strings.TrimSpace(string(body)) != "unauthorized" {
					t.Fatalf("%d %q, want 401 unauthorized", resp.StatusCode, body)
				}
			})
		}
	}
	t.Run("an edge may download the snapshot", func(t *testing.T) {
		c := &Client{Addr: n.HTTPAddr()}
		if _, err := c.DownloadSnapshot(context.Background(), "edge-S1", "edge-secret", filepath.Join(t.TempDir(), "s.db")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("metrics can be left open", func(t *testing.T) {
		m, _ := startNode(t, func(c *Config) { c.OpenMetrics = true })
		resp, err := http.Get("http://" + m.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, name := range []string{"endcap_hub_raft_state 2", "endcap_hub_commit_seconds", "endcap_hub_batch_mutations",
			"endcap_hub_applied_index", "endcap_hub_seq", "endcap_hub_change_log_entries", "endcap_hub_mutations_applied_total", "endcap_hub_raft_term"} {
			if !strings.Contains(string(body), name) {
				t.Errorf("/metrics lacks %s", name)
			}
		}
	})
}

func TestMutationsAndChanges(t *testing.T) {
	n, c := startNode(t, func(c *Config) { c.RetainChanges = 5 })
	ctx := context.Background()
	res, err := c.Submit(ctx, stores(t, 1, 3))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != retail.StatusAccepted || r.Seq != uint64(i+1) {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	// A batch with a bad mutation: it gets its own error; the others apply.
	bad := json.RawMessage(`{"v":1,"id":"t/99","type":"launch_rocket"}`)
	res, err = c.Submit(ctx, []json.RawMessage{stores(t, 4, 1)[0], bad, json.RawMessage(`{"v":7}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != retail.StatusAccepted || !strings.Contains(res[1].Err, "unknown mutation type") || !strings.Contains(res[2].Err, "unknown envelope version") {
		t.Fatalf("mixed batch: %+v", res)
	}
	// Not JSON at all: 400.
	var apiErr *APIError
	_, err = (&Client{Addr: n.HTTPAddr(), Token: "op-token"}).Submit(ctx, nil)
	if err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	req, _ := http.NewRequest("POST", "http://"+n.HTTPAddr()+"/v1/mutations", strings.NewReader("{garbage"))
	req.Header.Set("Authorization", "Bearer op-token")
	resp, _ := http.DefaultClient.Do(req)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage batch: %d", resp.StatusCode)
	}
	resp.Body.Close()

	got, err := c.Changes(ctx, 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Changes) != 3 || got.Changes[0].Seq != 2 || got.HubSeq != 4 || got.Consistency != "local" {
		t.Fatalf("changes from 2: %+v", got)
	}
	if got.Changes[0].Changes[0].Table != "stores" {
		t.Fatalf("change rows: %+v", got.Changes[0].Changes)
	}
	// Retention: 5 entries kept; asking before them is 410 Gone.
	if _, err := c.Submit(ctx, stores(t, 10, 6)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Changes(ctx, 2, 10)
	if !errors.Is(err, ErrCompacted) || !errors.As(err, &apiErr) || apiErr.Code != http.StatusGone {
		t.Fatalf("compacted range: %v", err)
	}
	if got, err := c.Changes(ctx, 6, 10); err != nil || len(got.Changes) != 5 {
		t.Fatalf("retained range: %+v %v", got, err)
	}
	for _, q := range []string{"from=0", "from=x", "from=1&limit=0", "from=1&limit=99999"} {
		req, _ := http.NewRequest("GET", "http://"+n.HTTPAddr()+"/v1/changes?"+q, nil)
		req.Header.Set("Authorization", "Bearer op-token")
		resp, _ := http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("changes?%s: %d, want 400", q, resp.StatusCode)
		}
	}
}

// Raft replays its log after a restart; entries at or below the index
// stored in the state are skipped, so each applies once.
func TestFSMSkipsReplayedEntries(t *testing.T) {
	f, err := OpenFSM(context.Background(), FSMConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entry := func(index uint64, muts ...json.RawMessage) *raft.Log {
		data, _ := json.Marshal(muts)
		return &raft.Log{Index: index, Type: raft.LogCommand, Data: append([]byte{entryMutations}, data...)}
	}
	logs := []*raft.Log{entry(1, stores(t, 1, 2)...), entry(2, stores(t, 3, 1)...)}
	first := f.ApplyBatch(logs)
	if f.AppliedIndex() != 2 || f.HubSeq() != 3 || len(first[0].([]MutationResult)) != 2 {
		t.Fatalf("after first apply: index %d seq %d", f.AppliedIndex(), f.HubSeq())
	}
	sum1, _ := f.Checksum(context.Background())
	again := f.ApplyBatch(logs) // replay
	if again[0] != nil || again[1] != nil || f.HubSeq() != 3 {
		t.Fatalf("replay applied again: %v seq %d", again, f.HubSeq())
	}
	sum2, _ := f.Checksum(context.Background())
	if sum1 != sum2 {
		t.Fatal("replay changed the state")
	}
	// Reopen: the index survives in the file.
	f.Close()
	f2, err := OpenFSM(context.Background(), FSMConfig{Dir: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if f2.AppliedIndex() != 2 || f2.HubSeq() != 3 {
		t.Fatalf("after reopen: index %d seq %d", f2.AppliedIndex(), f2.HubSeq())
	}
}

func TestSnapshotStream(t *testing.T) {
	ctx := context.Background()
	f, err := OpenFSM(ctx, FSMConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, _ := json.Marshal(stores(t, 1, 5))
	f.ApplyBatch([]*raft.Log{{Index: 7, Type: raft.LogCommand, Data: append([]byte{entryMutations}, data...)}})
	var buf bytes.Buffer
	meta, err := f.WriteSnapshot(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if meta.AppliedIndex != 7 || meta.HubSeq != 5 || meta.SchemaVersion != retail.SchemaVersion() {
		t.Fatalf("meta %+v", meta)
	}
	good := buf.Bytes()
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x01; return b }
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not a snapshot", []byte("SQLite format 3\x00 and more")},
		{"truncated in the header", good[:10]},
		{"truncated in the database", good[:len(good)/2]},
		{"no checksum", good[:len(good)-32]},
		{"a flipped bit in the database", flip(len(good) / 2)},
		{"a flipped bit in the meta line", flip(len(snapshotMagic) + 3)},
		{"a flipped bit in the checksum", flip(len(good) - 1)},
		{"data after the checksum", append(bytes.Clone(good), 'x')},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out.db")
			_, err := ReadSnapshot(ctx, bytes.NewReader(tc.in), dst)
			if !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("error %v, want ErrCorruptSnapshot", err)
			}
			if _, err := os.Stat(dst); err == nil {
				t.Fatal("a file was left from a corrupt snapshot")
			}
		})
	}

	// Restore of a corrupt stream leaves the state as it was; a good one
	// replaces it.
	g, err := OpenFSM(ctx, FSMConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	before, _ := g.Checksum(ctx)
	if err := g.Restore(io.NopCloser(bytes.NewReader(flip(len(good) / 3)))); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("restore of a corrupt snapshot: %v", err)
	}
	if after, _ := g.Checksum(ctx); after != before {
		t.Fatal("a failed restore changed the state")
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader(good))); err != nil {
		t.Fatal(err)
	}
	want, _ := f.Checksum(ctx)
	got, _ := g.Checksum(ctx)
	if got != want || g.AppliedIndex() != 7 || g.HubSeq() != 5 {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
}
