// Command endcap runs the whole store on one machine, for a demo and for
// development: today a regional hub of three nodes on loopback ports,
// seeded with a generated demo region. Later parts (the MQTT broker, an
// edge with simulated devices, the apps) join it as they are built.
//
//	endcap --data var/run
//
// It prints the operator's token and addresses; Ctrl-C stops it. Run it
// again with the same --data and it picks up where it was.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/endcap/endcap/hub"
	"github.com/endcap/endcap/retail"
	"github.com/endcap/endcap/retail/demodata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "endcap:", err)
		os.Exit(1)
	}
}

type options struct {
	data      string
	nodes     int
	customers int
	seed      int64
	raftBase  int
	httpBase  int
	exitAfter bool // start, seed, report, stop: for tests and scripts
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("endcap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.data, "data", "var/run", "directory for every node's data; reused on the next run")
	fs.IntVar(&o.nodes, "hub-nodes", 3, "hub nodes to run (3 or 5)")
	fs.IntVar(&o.customers, "customers", 2000, "customers in the demo region generated on the first run")
	fs.Int64Var(&o.seed, "seed", 1, "demo region seed")
	fs.IntVar(&o.raftBase, "raft-port", 7101, "first hub node's raft port; the next nodes take the next ports, a taken port is replaced by a free one, 0 means any free ports")
	fs.IntVar(&o.httpBase, "http-port", 8101, "first hub node's API port (likewise)")
	fs.BoolVar(&o.exitAfter, "exit", false, "start, seed, print the summary and stop (for scripts and tests)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: endcap [flags]

Runs the Endcap store on one machine: a regional hub of three raft nodes on
loopback ports, seeded on its first run with a generated demo region
(stores, customers with histories in every channel, offers, returns).
It prints the operator token and the hubctl commands to look at it.
Ctrl-C stops it; the next run with the same --data picks up where it was.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.nodes < 1 {
		return fmt.Errorf("--hub-nodes must be 1 or more")
	}
	if err := os.MkdirAll(o.data, 0o755); err != nil {
		return err
	}
	token, err := loadToken(filepath.Join(o.data, "operator-token"))
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	nodes, err := startHub(ctx, o, token, log)
	for _, n := range nodes {
		defer n.Close()
	}
	if err != nil {
		return err
	}
	client := &hub.Client{Addr: nodes[0].HTTPAddr(), Token: token}
	st, err := waitLeader(ctx, client)
	if err != nil {
		return err
	}
	if st.HubSeq == 0 {
		if err := seed(ctx, o, client, stderr); err != nil {
			return fmt.Errorf("seed the demo region: %w", err)
		}
	}
	if err := report(ctx, stdout, nodes, token); err != nil {
		return err
	}
	if o.exitAfter {
		return nil
	}
	fmt.Fprintln(stdout, "\nRunning. Ctrl-C stops it.")
	<-ctx.Done()
	fmt.Fprintln(stdout, "endcap: stopping")
	return nil
}

// loadToken reads the operator token, making one on the first run.
func loadToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 16)
	rand.Read(buf)
	tok := hex.EncodeToString(buf)
	return tok, os.WriteFile(path, []byte(tok+"\n"), 0o600)
}

// port returns 127.0.0.1:want if it is free, else a free port; the choice
// is remembered in dir so a restarted node keeps its address.
func port(dir, name string, want int) (string, error) {
	file := filepath.Join(dir, name+".addr")
	if b, err := os.ReadFile(file); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	addr := fmt.Sprintf("127.0.0.1:%d", want)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return "", err
		}
	}
	addr = ln.Addr().String()
	ln.Close()
	return addr, os.WriteFile(file, []byte(addr+"\n"), 0o644)
}

// next is the i-th port from base; base 0 means any free port for all.
func next(base, i int) int {
	if base == 0 {
		return 0
	}
	return base + i
}

func startHub(ctx context.Context, o options, token string, log *slog.Logger) ([]*hub.Node, error) {
	var nodes []*hub.Node
	for i := range o.nodes {
		id := fmt.Sprintf("h%d", i+1)
		dir := filepath.Join(o.data, "hub", id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nodes, err
		}
		_, statErr := os.Stat(filepath.Join(dir, "raft-wal"))
		fresh := os.IsNotExist(statErr)
		raftAddr, err := port(dir, "raft", next(o.raftBase, i))
		if err != nil {
			return nodes, err
		}
		httpAddr, err := port(dir, "http", next(o.httpBase, i))
		if err != nil {
			return nodes, err
		}
		n, err := hub.Start(ctx, hub.Config{ID: id, DataDir: dir, RaftAddr: raftAddr, HTTPAddr: httpAddr,
			Bootstrap: i == 0, Token: token, Logger: log.With("hub", id)})
		if err != nil {
			return nodes, fmt.Errorf("hub node %s: %w", id, err)
		}
		nodes = append(nodes, n)
		if i > 0 && fresh {
			leader := &hub.Client{Addr: nodes[0].HTTPAddr(), Token: token}
			if _, err := waitLeader(ctx, leader); err != nil {
				return nodes, err
			}
			if _, err := leader.Join(ctx, hub.Member{ID: id, RaftAddr: n.RaftAddr(), HTTPAddr: n.HTTPAddr()}); err != nil {
				return nodes, fmt.Errorf("join %s: %w", id, err)
			}
		}
	}
	return nodes, nil
}

// waitLeader polls until the cluster has a leader whose address is known.
func waitLeader(ctx context.Context, c *hub.Client) (hub.Status, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := c.Status(ctx)
		if err == nil && st.Leader.HTTPAddr != "" {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("no hub leader within 60s (last: %v)", err)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// seed generates the demo region and submits every mutation to the hub,
// so the region enters through the raft log like any other write and
// every node, including ones that join later, holds the same data.
func seed(ctx context.Context, o options, client *hub.Client, stderr io.Writer) error {
	scratch := filepath.Join(o.data, "demo-scratch.db")
	for _, s := range []string{"", "-wal", "-shm"} {
		os.Remove(scratch + s)
	}
	defer func() {
		for _, s := range []string{"", "-wal", "-shm"} {
			os.Remove(scratch + s)
		}
	}()
	db, err := retail.Open(ctx, scratch, retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		return err
	}
	defer db.Close()
	// One sender, in order: the hub must apply the region's mutations in
	// the order they were generated. Generation goes on while a batch commits.
	batches := make(chan []json.RawMessage, 4)
	sendErr := make(chan error, 1)
	var sent atomic.Int64
	go func() {
		var err error
		for b := range batches {
			if err == nil {
				if _, err = client.Submit(ctx, b); err == nil {
					sent.Add(int64(len(b)))
				}
			}
		}
		sendErr <- err
	}()
	var batch []json.RawMessage
	start := time.Now()
	tty := isTerminal(stderr)
	lastPrint := time.Time{}
	cfg := demodata.Config{Seed: o.seed, Customers: o.customers,
		OnMutation: func(m retail.Mutation) {
			raw, err := retail.Encode(m)
			if err != nil {
				return // the generator made an invalid one on purpose: the hub would reject it too
			}
			batch = append(batch, raw)
			if len(batch) >= 1000 {
				batches <- batch
				batch = nil
			}
		}}
	_, err = demodata.Generate(ctx, db, cfg, func(done, total int) {
		if time.Since(lastPrint) < 2*time.Second && done != total {
			return
		}
		lastPrint = time.Now()
		line := fmt.Sprintf("endcap: seeding the demo region: %d/%d customers, %d mutations committed at the hub", done, total, sent.Load())
		if tty {
			fmt.Fprint(stderr, "\r"+line)
		} else {
			fmt.Fprintln(stderr, line)
		}
	})
	if len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	if serr := <-sendErr; err == nil {
		err = serr
	}
	if tty {
		fmt.Fprintln(stderr)
	}
	fmt.Fprintf(stderr, "endcap: seeded the demo region: %d customers, %d mutations in %s\n", o.customers, sent.Load(), time.Since(start).Round(time.Millisecond))
	return err
}

// isTerminal reports whether w is a terminal (for a progress line that
// rewrites itself).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func report(ctx context.Context, w io.Writer, nodes []*hub.Node, token string) error {
	first := &hub.Client{Addr: nodes[0].HTTPAddr(), Token: token}
	st, err := first.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Endcap hub: %d nodes, leader %s, hub sequence %d\n\n", len(nodes), st.Leader.ID, st.HubSeq)
	fmt.Fprintf(w, "  %-4s %-10s %-17s %-17s %s\n", "NODE", "STATE", "RAFT", "API", "STATE CHECKSUM")
	// Checksums are comparable at one applied index: wait (a little) until
	// every node has applied the same entries.
	clients := make([]*hub.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = &hub.Client{Addr: n.HTTPAddr(), Token: token}
	}
	var sums []hub.ChecksumResponse
	deadline := time.Now().Add(30 * time.Second)
	for {
		if sums, err = hub.CheckConverged(ctx, clients...); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, n := range nodes {
		nst, _ := clients[i].Status(ctx)
		fmt.Fprintf(w, "  %-4s %-10s %-17s %-17s %.16s… (index %d)\n", nst.ID, nst.State, n.RaftAddr(), n.HTTPAddr(), sums[i].Checksum, sums[i].AppliedIndex)
	}
	fmt.Fprintf(w, "\nOperator token: %s\n", token)
	fmt.Fprintf(w, "Try:\n  export ENDCAP_HUB=%s ENDCAP_HUB_TOKEN=%s\n  bin/hubctl status\n  bin/hubctl changes --from 1 --limit 5\n  curl -H \"Authorization: Bearer $ENDCAP_HUB_TOKEN\" http://%s/metrics\n",
		nodes[0].HTTPAddr(), token, nodes[0].HTTPAddr())
	return nil
}
