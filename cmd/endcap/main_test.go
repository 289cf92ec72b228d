package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/endcap/endcap/hub"
)

// The first run starts a 3-node hub and seeds it through the raft log;
// every node ends with the same state. A second run on the same data
// starts the same cluster again without seeding twice.
func TestRunSeedsAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub cluster")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"--data", dir, "--customers", "40", "--raft-port", "0", "--http-port", "0",
		"--mqtt-port", "0", "--ws-port", "0", "--edge-port", "0", "--exit"}

	var out, errs bytes.Buffer
	if err := run(ctx, args, &out, &errs); err != nil {
		t.Fatalf("first run: %v\n%s\n%s", err, out.String(), errs.String())
	}
	if !strings.Contains(errs.String(), "seeded the demo region: 40 customers") {
		t.Fatalf("no seeding reported:\n%s", errs.String())
	}
	sums := checksums(t, out.String())
	if len(sums) != 3 || sums[0] != sums[1] || sums[1] != sums[2] {
		t.Fatalf("nodes differ or are missing:\n%s", out.String())
	}
	seq := regexp.MustCompile(`hub sequence (\d+)`).FindStringSubmatch(out.String())
	if seq == nil || seq[1] == "0" {
		t.Fatalf("nothing reached the hub:\n%s", out.String())
	}
	// The store's edge downloaded the region and follows the hub.
	if e := regexp.MustCompile(`Edge S01: applied hub sequence (\d+) of (\d+), 0 pending`).FindStringSubmatch(out.String()); e == nil || e[1] != seq[1] || e[2] != seq[1] {
		t.Fatalf("the edge did not catch up with the hub (sequence %s):\n%s", seq[1], out.String())
	}

	out.Reset()
	errs.Reset()
	if err := run(ctx, args, &out, &errs); err != nil {
		t.Fatalf("second run: %v\n%s\n%s", err, out.String(), errs.String())
	}
	if strings.Contains(errs.String(), "seed") {
		t.Fatalf("seeded twice:\n%s", errs.String())
	}
	if again := regexp.MustCompile(`hub sequence (\d+)`).FindStringSubmatch(out.String()); again == nil || again[1] != seq[1] {
		t.Fatalf("hub sequence %v after restart, want %s:\n%s", again, seq[1], out.String())
	}
	// The checksum covers the applied raft index, which a new term's
	// entries move on; the nodes must still agree with each other.
	if sums2 := checksums(t, out.String()); len(sums2) != 3 || sums2[0] != sums2[1] || sums2[1] != sums2[2] {
		t.Fatalf("nodes differ after a restart:\n%s", out.String())
	}
}

func checksums(t *testing.T, out string) []string {
	t.Helper()
	var sums []string
	for _, m := range regexp.MustCompile(`(?m)^\s+h\d\s+\S+\s+\S+\s+\S+\s+([0-9a-f]{16})`).FindAllStringSubmatch(out, -1) {
		sums = append(sums, m[1])
	}
	return sums
}

// A batch sent while the hub has no leader is sent again until one is
// elected; other errors are not retried.
func TestSubmitRetriesWithoutALeader(t *testing.T) {
	var calls, status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(int(status.Load()))
			w.Write([]byte(`{"error":"not the leader"}`))
			return
		}
		w.Write([]byte(`{"results":[{"status":"accepted"}]}`))
	}))
	t.Cleanup(srv.Close)
	client := &hub.Client{Addr: srv.URL}
	batch := []json.RawMessage{json.RawMessage(`{}`)}
	if err := submit(context.Background(), client, batch); err != nil || calls.Load() != 3 {
		t.Fatalf("submit: %v after %d calls, want success on the 3rd", err, calls.Load())
	}
	calls.Store(0)
	status.Store(http.StatusBadRequest)
	if err := submit(context.Background(), client, batch); err == nil || calls.Load() != 1 {
		t.Fatalf("submit: %v after %d calls, want the 400 at once", err, calls.Load())
	}
}
