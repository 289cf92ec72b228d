package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/hub"
	"github.com/endcap/endcap/retail"
)

const token = "t"

// startNode starts an in-process hub node on free loopback ports.
func startNode(t *testing.T, id string, bootstrap bool, edges map[string]string) *hub.Node {
	t.Helper()
	n, err := hub.Start(t.Context(), hub.Config{ID: id, DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Bootstrap: bootstrap, Token: token, EdgeCredentials: edges})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// waitFor polls cond until it returns nil, failing the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLeader waits until node at addr reports leader as the leader, with
// the leader's API address known.
func waitLeader(t *testing.T, addr, leader string) {
	t.Helper()
	c := &hub.Client{Addr: addr, Token: token}
	waitFor(t, leader+" to lead, seen from "+addr, 20*time.Second, func() error {
		st, err := c.Status(t.Context())
		if err != nil {
			return err
		}
		if st.Leader.ID != leader || st.Leader.HTTPAddr == "" {
			return fmt.Errorf("leader %+v, state %s", st.Leader, st.State)
		}
		if leader == st.ID && st.State != "Leader" {
			return fmt.Errorf("state %s", st.State)
		}
		return nil
	})
}

// hubctl runs the CLI against addr with the right token.
func hubctl(t *testing.T, addr string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(t.Context(), append([]string{"--hub", addr, "--token", token}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

func mustHubctl(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, stderr, err := hubctl(t, addr, args...)
	if err != nil {
		t.Fatalf("hubctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

func upsertStore(t *testing.T, seq uint64) json.RawMessage {
	t.Helper()
	b, err := retail.Encode(retail.Mutation{ID: retail.MutationID{Origin: "t", Seq: seq}, HLC: retail.HLC{Wall: time.Now().UnixMilli()},
		Actor: retail.Actor{Kind: "system", ID: "t"},
		Body:  &retail.UpsertStore{ID: "S1", Kind: retail.KindStore, Name: fmt.Sprintf("store %d", seq), Region: "west"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, s)
	}
	return v
}

// TestSingleNode runs every read command, snapshot and download against a
// real one-node hub holding two mutations.
func TestSingleNode(t *testing.T) {
	t.Parallel()
	node := startNode(t, "h1", true, map[string]string{"e1": "s1"})
	addr := node.HTTPAddr()
	waitLeader(t, addr, "h1")
	client := &hub.Client{Addr: addr, Token: token}
	res, err := client.Submit(t.Context(), []json.RawMessage{upsertStore(t, 1), upsertStore(t, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != retail.StatusAccepted || res[1].Status != retail.StatusAccepted || res[1].Seq == 0 {
		t.Fatalf("submit: %+v", res)
	}
	lastSeq := res[1].Seq

	t.Run("human", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			args    []string
			want    []string // in stdout
			notWant []string
		}{
			{name: "status", args: []string{"status"}, want: []string{
				"node            h1", "state           Leader",
				fmt.Sprintf("hub seq         %d", lastSeq),
				fmt.Sprintf("leader          h1 (raft %s, http %s)", node.RaftAddr(), addr),
				"ID  ROLE           RAFT ADDR",
				fmt.Sprintf("h1  leader, voter  %s", node.RaftAddr())}},
			{name: "flags after the command", args: []string{"status", "--hub", addr}, want: []string{"state           Leader"}},
			{name: "leader", args: []string{"leader"}, want: []string{
				"ID  RAFT ADDR", fmt.Sprintf("h1  %s  %s", node.RaftAddr(), addr)}},
			{name: "checksum", args: []string{"checksum"}, want: []string{
				fmt.Sprintf("hub seq        %d", lastSeq), "checksum       ", "applied index  "}},
			{name: "changes", args: []string{"changes", "--from", "1"}, want: []string{
				"SEQ  MUTATION  STATUS    ROWS",
				fmt.Sprintf("%d    t/1       accepted", res[0].Seq),
				fmt.Sprintf("%d    t/2       accepted", res[1].Seq)}},
			{name: "changes with limit", args: []string{"changes", "--from", fmt.Sprint(lastSeq), "--limit", "1"},
				want: []string{"t/2"}, notWant: []string{"t/1"}},
			{name: "changes past the end", args: []string{"changes", "--from", fmt.Sprint(lastSeq + 1)},
				want: []string{fmt.Sprintf("no changes from seq %d (the node's hub seq is %d)", lastSeq+1, lastSeq)}},
			{name: "stores without a broker", args: []string{"stores"}, want: []string{"EDGE  STATE  PENDING", "bridge is NOT connected"}},
			{name: "snapshot", args: []string{"snapshot"}, want: []string{"snapshot taken on h1 at applied index "}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out := mustHubctl(t, addr, tc.args...)
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("output lacks %q:\n%s", w, out)
					}
				}
				for _, w := range tc.notWant {
					if strings.Contains(out, w) {
						t.Errorf("output has %q:\n%s", w, out)
					}
				}
			})
		}
	})

	t.Run("json", func(t *testing.T) {
		st := decodeJSON[hub.Status](t, mustHubctl(t, addr, "--json", "status"))
		if st.ID != "h1" || st.Leader.ID != "h1" || st.Leader.HTTPAddr != addr || len(st.Peers) != 1 || !st.Peers[0].Leader || st.HubSeq != lastSeq {
			t.Errorf("status: %+v", st)
		}
		if m := decodeJSON[hub.Member](t, mustHubctl(t, addr, "leader", "--json")); m != (hub.Member{ID: "h1", RaftAddr: node.RaftAddr(), HTTPAddr: addr}) {
			t.Errorf("leader: %+v", m)
		}
		sum := decodeJSON[hub.ChecksumResponse](t, mustHubctl(t, addr, "--json", "checksum"))
		if sum.HubSeq != lastSeq || len(sum.Checksum) != 64 || sum.AppliedIndex == 0 {
			t.Errorf("checksum: %+v", sum)
		}
		ch := decodeJSON[hub.ChangesResponse](t, mustHubctl(t, addr, "--json", "changes", "--from", "1"))
		if len(ch.Changes) != 2 || ch.Changes[1].MutationID != "t/2" || len(ch.Changes[1].Changes) == 0 || ch.HubSeq != lastSeq {
			t.Errorf("changes: %+v", ch)
		}
		snap := decodeJSON[snapshotResult](t, mustHubctl(t, addr, "--json", "snapshot"))
		if snap.ID != "h1" || snap.AppliedIndex == 0 {
			t.Errorf("snapshot: %+v", snap)
		}
	})

	t.Run("download-snapshot", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "region.db")
		got := mustHubctl(t, addr, "download-snapshot", "--out", out)
		fi, err := os.Stat(out)
		if err != nil || fi.Size() == 0 {
			t.Fatalf("snapshot file: %v %v", fi, err)
		}
		if want := fmt.Sprintf("wrote %s: %s, applied index ", out, bytesize(fi.Size())); !strings.HasPrefix(got, want) ||
			!strings.Contains(got, fmt.Sprintf("hub seq %d,", lastSeq)) {
			t.Errorf("output %q, want %q... hub seq %d", got, want, lastSeq)
		}
		// As an edge, with JSON, over the file just written.
		res := decodeJSON[downloadResult](t, mustHubctl(t, addr, "--json", "download-snapshot", "--out", out, "--edge", "e1", "--secret", "s1"))
		if res.File != out || res.HubSeq != lastSeq || res.Size != fi.Size() {
			t.Errorf("json: %+v, file size %d", res, fi.Size())
		}
		// A failed download leaves the existing file alone and no partial file.
		os.WriteFile(out, []byte("old"), 0o600)
		_, _, err = hubctl(t, addr, "download-snapshot", "--out", out, "--edge", "e1", "--secret", "wrong")
		if err == nil || err.Error() != "unauthorized: check --edge and --secret (or $ENDCAP_EDGE_SECRET)" {
			t.Errorf("wrong edge secret: %v", err)
		}
		if b, _ := os.ReadFile(out); string(b) != "old" {
			t.Errorf("the existing file was changed to %d bytes", len(b))
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("left behind: %v", ents)
		}
	})

	t.Run("join checks the new node", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := ln.Addr().String()
		ln.Close()
		for _, tc := range []struct{ id, http, want string }{
			{"h7", down, "the new node's API at " + down + " does not answer (dial tcp " + down + ": connect: connection refused): start it first"},
			{"h7", addr, "the node at " + addr + " is h1, not h7"},
			{"h1", addr, "h1 at " + addr + " leads a one-node cluster of its own (started with --bootstrap?)"},
		} {
			_, _, err := hubctl(t, addr, "join", "--id", tc.id, "--raft", "127.0.0.1:7999", "--http", tc.http)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("join --http %s: %v, want %q...", tc.http, err, tc.want)
			}
		}
		if st := decodeJSON[hub.Status](t, mustHubctl(t, addr, "--json", "status")); len(st.Peers) != 1 {
			t.Errorf("peers: %+v", st.Peers)
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		for _, args := range [][]string{{"status"}, {"changes", "--from", "1"}, {"download-snapshot", "--out", filepath.Join(t.TempDir(), "x.db")}} {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append([]string{"--hub", addr, "--token", "nope"}, args...), &stdout, &stderr)
			if err == nil || err.Error() != "unauthorized: check --token or $ENDCAP_HUB_TOKEN" {
				t.Errorf("%s: %v", args[0], err)
			}
		}
	})
}

// TestMembership forms a two-node cluster with join, hands leadership
// over and removes the first node, each through the other node's API.
func TestMembership(t *testing.T) {
	t.Parallel()
	h1 := startNode(t, "h1", true, nil)
	h2 := startNode(t, "h2", false, nil)
	waitLeader(t, h1.HTTPAddr(), "h1")
	if out := mustHubctl(t, h2.HTTPAddr(), "status"); !strings.Contains(out, "h2 has no raft configuration yet: add it with 'hubctl join' on a member") {
		t.Errorf("status of a node not joined yet:\n%s", out)
	}

	out := mustHubctl(t, h1.HTTPAddr(), "join", "--id", "h2", "--raft", h2.RaftAddr(), "--http", h2.HTTPAddr())
	if want := fmt.Sprintf("h2  follower, voter  %s  %s", h2.RaftAddr(), h2.HTTPAddr()); !strings.HasPrefix(out, "h2 joined as a voter") || !strings.Contains(out, want) {
		t.Errorf("join output lacks %q:\n%s", want, out)
	}
	waitLeader(t, h2.HTTPAddr(), "h1")
	waitFor(t, "h2 to apply its own member record", 10*time.Second, func() error {
		st, err := (&hub.Client{Addr: h2.HTTPAddr(), Token: token}).Status(t.Context())
		if err != nil {
			return err
		}
		for _, p := range st.Peers {
			if p.HTTPAddr == "" {
				return fmt.Errorf("%s has no HTTP address yet", p.ID)
			}
		}
		return nil
	})
	out = mustHubctl(t, h2.HTTPAddr(), "status")
	for _, want := range []string{"node            h2", "state           Follower",
		fmt.Sprintf("h1  leader, voter    %s  %s", h1.RaftAddr(), h1.HTTPAddr()),
		fmt.Sprintf("h2  follower, voter  %s  %s", h2.RaftAddr(), h2.HTTPAddr())} {
		if !strings.Contains(out, want) {
			t.Errorf("status from h2 lacks %q:\n%s", want, out)
		}
	}

	// Through the follower, which forwards to the leader. The transfer
	// can fail while h2 is still catching up: retry until it leads.
	waitFor(t, "leadership to move to h2", 20*time.Second, func() error {
		var err error
		if out, _, err = hubctl(t, h2.HTTPAddr(), "leader-transfer", "--id", "h2"); err != nil {
			return err
		}
		st, err := (&hub.Client{Addr: h2.HTTPAddr(), Token: token}).Status(t.Context())
		if err != nil {
			return err
		}
		if st.State != "Leader" {
			return fmt.Errorf("h2 is %s", st.State)
		}
		return nil
	})
	if want := fmt.Sprintf("h1 handed leadership over; the leader is now h2 (raft %s, http %s)\n", h2.RaftAddr(), h2.HTTPAddr()); out != want {
		t.Errorf("leader-transfer printed %q, want %q", out, want)
	}
	waitLeader(t, h1.HTTPAddr(), "h2")
	if out := mustHubctl(t, h1.HTTPAddr(), "leader"); !strings.Contains(out, fmt.Sprintf("h2  %s  %s", h2.RaftAddr(), h2.HTTPAddr())) {
		t.Errorf("leader from h1:\n%s", out)
	}

	out = mustHubctl(t, h1.HTTPAddr(), "remove", "--id", "h1")
	if !strings.HasPrefix(out, "h1 removed") || strings.Contains(out, "h1  ") || !strings.Contains(out, "h2  leader, voter") {
		t.Errorf("remove output:\n%s", out)
	}
	if st := decodeJSON[hub.Status](t, mustHubctl(t, h2.HTTPAddr(), "--json", "status")); len(st.Peers) != 1 || st.Peers[0].ID != "h2" {
		t.Errorf("peers after remove: %+v", st.Peers)
	}
}

// TestHelp: every command has a help that exits 0 and shows its flags.
func TestHelp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range commands() {
		if !strings.Contains(out.String(), "\n  "+cmd.name+" ") {
			t.Errorf("hubctl --help does not list %s:\n%s", cmd.name, &out)
		}
	}
	for _, want := range []string{"Examples:", "--hub ADDR", "--token TOKEN", "--json", "--timeout DURATION"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("hubctl --help lacks %q", want)
		}
	}
	for _, cmd := range commands() {
		for _, args := range [][]string{{cmd.name, "--help"}, {cmd.name, "-h"}, {"help", cmd.name}, {"--json", cmd.name, "--help"}} {
			var stdout, stderr bytes.Buffer
			if err := run(t.Context(), args, &stdout, &stderr); err != nil {
				t.Errorf("%v: %v", args, err)
			}
			if want := "Usage: hubctl [global flags] " + cmd.name; !strings.HasPrefix(stdout.String(), want) || stderr.Len() > 0 {
				t.Errorf("%v: stdout %q, stderr %q", args, stdout.String(), stderr.String())
			}
		}
	}
	var stdout bytes.Buffer
	run(t.Context(), []string{"join", "--help"}, &stdout, &stdout)
	for _, want := range []string{"--id ID", "--raft ADDR", "--http ADDR", "Example:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("join --help lacks %q:\n%s", want, &stdout)
		}
	}
}

// TestUsageErrors: mistakes in the command line are usage errors (exit
// 2), caught before asking the hub (none listens at --hub here).
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--nope", "status"}, "flag provided but not defined: -nope"},
		{[]string{"status", "--nope"}, "status: flag provided but not defined: -nope"},
		{[]string{"status", "extra"}, `status: unexpected argument "extra"`},
		{[]string{"--timeout", "-1s", "status"}, "--timeout must not be negative"},
		{[]string{"join", "--id", "h2", "--raft", "127.0.0.1:7002"}, "join: --id, --raft and --http are required"},
		{[]string{"join", "--id", "h2", "--raft", "127.0.0.1", "--http", "127.0.0.1:8002"}, `join: --raft "127.0.0.1": want host:port`},
		{[]string{"remove"}, "remove: --id is required"},
		{[]string{"changes"}, "changes: --from SEQ (1 or more) is required"},
		{[]string{"changes", "--from", "x"}, `invalid value "x" for flag -from`},
		{[]string{"changes", "--from", "1", "--limit", "0"}, "changes: --limit must be 1..10000"},
		{[]string{"download-snapshot"}, "download-snapshot: --out FILE is required"},
		{[]string{"download-snapshot", "--out", "x.db", "--secret", "s"}, "download-snapshot: --secret needs --edge"},
		{[]string{"download-snapshot", "--out", t.TempDir()}, "is a directory"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"--hub", "127.0.0.1:1"}, tc.args...), &stdout, &stderr)
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a usage error with %q", tc.args, err, tc.want)
		}
		if stdout.Len() > 0 || stderr.Len() > 0 {
			t.Errorf("%q printed %q %q", tc.args, stdout.String(), stderr.String())
		}
	}
}

// TestErrors: failures talking to the hub read as one line that says
// what to do.
func TestErrors(t *testing.T) {
	t.Parallel()
	// A port no one listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	notLeader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":"not the leader","leader":"10.1.2.3:8080"}`)
	}))
	defer notLeader.Close()
	noLeader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":"not the leader"}`)
	}))
	defer noLeader.Close()
	compacted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
		fmt.Fprint(w, `{"error":"hub: changes before seq 50 were compacted"}`)
	}))
	defer compacted.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":"disk full"}`)
	}))
	defer broken.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"connection refused", []string{"--hub", refused, "status"},
			"cannot connect to the hub at " + refused + ": connection refused (is the node running? check --hub or $ENDCAP_HUB)"},
		{"not the leader", []string{"--hub", addr(notLeader), "join", "--skip-check", "--id", "h4", "--raft", "127.0.0.1:7004", "--http", "127.0.0.1:8004"},
			"not the leader; the leader is at 10.1.2.3:8080 (try --hub 10.1.2.3:8080)"},
		{"no leader", []string{"--hub", addr(noLeader), "remove", "--id", "h3"},
			"not the leader, and " + addr(noLeader) + " knows of no leader (an election may be under way); retry shortly"},
		{"compacted", []string{"--hub", addr(compacted), "changes", "--from", "3"},
			"hub: changes before seq 50 were compacted: the change log no longer holds that sequence (410 Gone); download a snapshot and follow on from its hub seq"},
		{"server error", []string{"--hub", addr(broken), "checksum"}, "disk full (hub " + addr(broken) + " answered 500 Internal Server Error)"},
		{"timeout", []string{"--hub", addr(slow), "--timeout", "50ms", "snapshot"},
			"no answer from the hub at " + addr(slow) + " within 50ms (raise --timeout); a change may still complete there"},
		{"download stalls", []string{"--hub", addr(slow), "--timeout", "100ms", "download-snapshot", "--out", filepath.Join(t.TempDir(), "r.db")},
			"download from " + addr(slow) + " stalled: no data for 100ms (raise --timeout)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append([]string{"--token", token}, tc.args...), &stdout, &stderr)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
			var u *usageError
			if errors.As(err, &u) {
				t.Errorf("a usage error: %v", err)
			}
		})
	}

	// Interrupted (SIGINT cancels the context main passes).
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := run(ctx, []string{"--hub", addr(slow), "--token", token, "status"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || err.Error() != "interrupted" {
		t.Errorf("cancelled: %v", err)
	}
}

// TestEnvironment: --hub and --token default to $ENDCAP_HUB and
// $ENDCAP_HUB_TOKEN; with neither token, a 401 says none was given.
// The multi-peer table is checked here too, against a canned status.
func TestEnvironment(t *testing.T) {
	st := hub.Status{ID: "h2", State: "Follower", Term: 3, CommitIndex: 10, AppliedIndex: 10, LastLogIndex: 10, HubSeq: 7,
		Leader: hub.Member{ID: "h1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080"},
		Peers: []hub.Peer{
			{Member: hub.Member{ID: "h1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080"}, Suffrage: "Voter", Leader: true},
			{Member: hub.Member{ID: "h2", RaftAddr: "10.0.0.2:7000", HTTPAddr: "10.0.0.2:8080"}, Suffrage: "Voter"},
			{Member: hub.Member{ID: "h3", RaftAddr: "10.0.0.3:7000"}, Suffrage: "Nonvoter"},
		}, Consistency: "local"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer from-env" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	t.Setenv("ENDCAP_HUB", strings.TrimPrefix(srv.URL, "http://"))
	t.Setenv("ENDCAP_HUB_TOKEN", "from-env")

	var out bytes.Buffer
	if err := run(t.Context(), []string{"status"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	want := `node            h2
state           Follower
term            3
commit index    10
applied index   10
last log index  10
hub seq         7
leader          h1 (raft 10.0.0.1:7000, http 10.0.0.1:8080)

ID  ROLE                RAFT ADDR      HTTP ADDR
h1  leader, voter       10.0.0.1:7000  10.0.0.1:8080
h2  follower, voter     10.0.0.2:7000  10.0.0.2:8080
h3  follower, nonvoter  10.0.0.3:7000  -
`
	if out.String() != want {
		t.Errorf("status:\n%s\nwant:\n%s", &out, want)
	}

	t.Setenv("ENDCAP_HUB_TOKEN", "")
	err := run(t.Context(), []string{"status"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || err.Error() != "unauthorized: no token given; set --token or $ENDCAP_HUB_TOKEN" {
		t.Errorf("no token: %v", err)
	}
	// --token wins over the environment.
	if err := run(t.Context(), []string{"--token", "from-env", "leader"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Errorf("--token: %v", err)
	}
}
