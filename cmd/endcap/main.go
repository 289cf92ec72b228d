// Command endcap runs the whole store on one machine, for a demo and for
// development: a regional hub of three nodes on loopback ports, seeded
// with a generated demo region; the embedded MQTT broker (TCP and
// WebSocket); and store S01's edge node, bootstrapped from the hub's
// snapshot and following the change feed. Later parts (simulated devices,
// the apps) join it as they are built.
//
//	endcap --data var/run
//
// It prints the operator's token and addresses; Ctrl-C stops it. Run it
// again with the same --data and it picks up where it was.
package main

import (
	"bufio"
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
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/endcap/endcap/devices"
	"github.com/endcap/endcap/devices/sim"
	"github.com/endcap/endcap/edge"
	"github.com/endcap/endcap/hub"
	"github.com/endcap/endcap/replication"
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
	mqttPort  int
	wsPort    int
	edgePort  int
	edgeID    string
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
	fs.IntVar(&o.mqttPort, "mqtt-port", 1883, "the embedded broker's MQTT port (a taken port is replaced by a free one; 0: any)")
	fs.IntVar(&o.wsPort, "ws-port", 1884, "the embedded broker's WebSocket port (likewise)")
	fs.IntVar(&o.edgePort, "edge-port", 8201, "the store edge's local API port (likewise)")
	fs.StringVar(&o.edgeID, "edge", "S01", "the store whose edge node runs here")
	fs.BoolVar(&o.exitAfter, "exit", false, "start, seed, print the summary and stop (for scripts and tests)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: endcap [flags]

Runs the Endcap store on one machine: a regional hub of three raft nodes on
loopback ports, seeded on its first run with a generated demo region
(stores, customers with histories in every channel, offers, returns); the
embedded MQTT broker; and store S01's edge node, which downloads the hub's
snapshot and then follows the change feed. Credentials are made on the
first run (DATA/passwords, DATA/*.password). It prints the operator token
and the commands to look at it all.
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

	pw, err := loadPasswords(o.data, "hub", o.edgeID)
	if err != nil {
		return err
	}
	mqttAddr, err := port(o.data, "mqtt", o.mqttPort)
	if err != nil {
		return err
	}
	wsAddr, err := port(o.data, "ws", o.wsPort)
	if err != nil {
		return err
	}
	broker, err := replication.StartBroker(ctx, replication.BrokerConfig{Region: demoRegion, TCPAddr: mqttAddr, WSAddr: wsAddr,
		PasswordFile: filepath.Join(o.data, "passwords"), Logger: log.With("part", "broker")})
	if err != nil {
		return err
	}
	defer broker.Close()
	hubMQTT := replication.MQTTConfig{URL: broker.URL(), Username: "hub", Password: pw["hub"]}

	nodes, err := startHub(ctx, o, token, hubMQTT, log)
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
	edgeNode, err := startEdge(ctx, o, broker.URL(), pw[o.edgeID], nodes, stderr, log)
	if err != nil {
		return fmt.Errorf("edge %s: %w", o.edgeID, err)
	}
	defer edgeNode.Close()
	if err := report(ctx, stdout, nodes, token); err != nil {
		return err
	}
	if err := reportEdge(ctx, stdout, edgeNode, broker, nodes[0]); err != nil {
		return err
	}
	kiosk, err := startDevices(ctx, o, edgeNode, stdout)
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	defer kiosk.close()
	if o.exitAfter {
		return nil
	}
	fmt.Fprintln(stdout, "\nRunning. Ctrl-C stops it.")
	go kiosk.readScans(ctx, os.Stdin, stdout)
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

const demoRegion = "demo"

// loadPasswords reads DATA/passwords (the broker's, mosquitto format) and
// each user's DATA/USER.password, making them on the first run.
func loadPasswords(dir string, users ...string) (map[string]string, error) {
	path := filepath.Join(dir, "passwords")
	p := &replication.Passwords{}
	if _, err := os.Stat(path); err == nil {
		if p, err = replication.LoadPasswords(path); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	changed := false
	for _, u := range users {
		file := filepath.Join(dir, u+".password")
		if b, err := os.ReadFile(file); err == nil && p.Has(u) {
			out[u] = strings.TrimSpace(string(b))
			continue
		}
		pw := replication.GeneratePassword()
		if err := p.Set(u, pw); err != nil {
			return nil, err
		}
		if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
			return nil, err
		}
		out[u], changed = pw, true
	}
	if changed {
		if err := p.Save(path); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// startEdge starts the store's edge node; on its first run it bootstraps
// from the hub's snapshot.
func startEdge(ctx context.Context, o options, brokerURL, password string, nodes []*hub.Node, stderr io.Writer, log *slog.Logger) (*edge.Node, error) {
	httpAddr, err := port(o.data, "edge", o.edgePort)
	if err != nil {
		return nil, err
	}
	var hubs []string
	for _, n := range nodes {
		hubs = append(hubs, "http://"+n.HTTPAddr())
	}
	key, err := loadToken(filepath.Join(o.data, "coupon-key"))
	if err != nil {
		return nil, err
	}
	n, err := edge.Start(ctx, edge.Config{Region: demoRegion, ID: o.edgeID, DataDir: filepath.Join(o.data, "edge", o.edgeID), CouponKey: []byte(key),
		MQTT: replication.MQTTConfig{URL: brokerURL, Password: password}, HubURLs: hubs, HTTPAddr: httpAddr, Logger: log.With("edge", o.edgeID)})
	if err != nil {
		return nil, err
	}
	st, err := n.Replica().Status(ctx)
	if err == nil && st.AppliedSeq == 0 {
		start := time.Now()
		fmt.Fprintf(stderr, "endcap: edge %s: downloading the region from the hub\n", o.edgeID)
		if err = n.Bootstrap(ctx); err == nil {
			fmt.Fprintf(stderr, "endcap: edge %s: bootstrapped in %s\n", o.edgeID, time.Since(start).Round(time.Millisecond))
		}
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// reportEdge waits (a little) for the edge to catch up with the hub and
// prints where everything listens.
func reportEdge(ctx context.Context, w io.Writer, n *edge.Node, b *replication.Broker, h *hub.Node) error {
	deadline := time.Now().Add(60 * time.Second)
	var st replication.ReplicaStatus
	for {
		var err error
		if st, err = n.Replica().Status(ctx); err != nil {
			return err
		}
		if st.AppliedSeq >= h.FSM().HubSeq() || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Fprintf(w, "\nMQTT broker: %s (WebSocket %s), region %q\n", b.URL(), b.WSURL(), demoRegion)
	fmt.Fprintf(w, "Edge %s: applied hub sequence %d of %d, %d pending; local API http://%s\n", st.Edge, st.AppliedSeq, h.FSM().HubSeq(), st.Pending, n.HTTPAddr())
	fmt.Fprintf(w, "  curl http://%s/v1/status\n  bin/hubctl stores\n", n.HTTPAddr())
	fmt.Fprintf(w, "A clerk signs in with her PIN (every demo PIN is 1234; clerk-%s-01 is the store's manager) and sends the session it returns:\n", st.Edge)
	fmt.Fprintf(w, "  curl -X POST http://%s/v1/clerks/signin -d '{\"clerk_id\":\"clerk-%s-01\",\"pin\":\"1234\"}'\n", n.HTTPAddr(), st.Edge)
	fmt.Fprintf(w, "  curl -H 'Authorization: Bearer SESSION' http://%s/v1/customers/CUSTOMER-ID/360\n", n.HTTPAddr())
	return nil
}

func startHub(ctx context.Context, o options, token string, mqtt replication.MQTTConfig, log *slog.Logger) ([]*hub.Node, error) {
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
			Bootstrap: i == 0, Token: token, Logger: log.With("hub", id), Region: demoRegion, MQTT: mqtt,
			EdgeAuth: func(user, password string) bool { return user != mqtt.Username && pwCheck(o.data, user, password) }})
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
// submit sends one batch to the hub, again while the cluster has no
// leader (an election, which a busy machine can set off) for up to a
// minute: the mutations' ids make a resent batch apply once.
func submit(ctx context.Context, client *hub.Client, batch []json.RawMessage) error {
	deadline := time.Now().Add(time.Minute)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		_, err := client.Submit(ctx, batch)
		var ae *hub.APIError
		if err == nil || time.Now().After(deadline) || (errors.As(err, &ae) && ae.Code != http.StatusServiceUnavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

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
				if err = submit(ctx, client, b); err == nil {
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

// pwCheck verifies an edge's password against DATA/passwords.
func pwCheck(dir, user, password string) bool {
	p, err := replication.LoadPasswords(filepath.Join(dir, "passwords"))
	return err == nil && p.Verify(user, password)
}

// kiosk is the store's simulated hardware: a barcode scanner and a
// receipt printer on pseudo-terminals (devices/sim), which the edge opens
// through the same serial code as /dev/ttyUSB0 in a store.
type kiosk struct {
	scanner *sim.Scanner
	printer *sim.Printer
	stop    context.CancelFunc
	devices *edge.Devices
}

func startDevices(ctx context.Context, o options, n *edge.Node, stdout io.Writer) (*kiosk, error) {
	dir := filepath.Join(o.data, "devices")
	receipts := filepath.Join(dir, "receipts")
	if err := os.MkdirAll(receipts, 0o755); err != nil {
		return nil, err
	}
	framing := devices.Framing{Suffix: devices.SuffixCR}
	k := &kiosk{}
	var err error
	if k.scanner, err = sim.NewScanner(sim.ScannerOptions{Link: filepath.Join(dir, "scanner"), Framing: framing}); err != nil {
		return nil, err
	}
	count := 0
	if k.printer, err = sim.NewPrinter(sim.PrinterOptions{Link: filepath.Join(dir, "printer"), OnReceipt: func(r *sim.Receipt) {
		count++
		name := filepath.Join(receipts, fmt.Sprintf("%s-%03d", time.Now().Format("20060102-150405"), count))
		os.WriteFile(name+".txt", []byte(r.Text(48)), 0o644)
		if f, err := os.Create(name + ".png"); err == nil {
			r.WritePNG(f, 48)
			f.Close()
		}
	}}); err != nil {
		k.scanner.Close()
		return nil, err
	}
	dctx, stop := context.WithCancel(ctx)
	k.stop = stop
	serial := func(path string) devices.SerialConfig {
		return devices.SerialConfig{Path: path, ReadTimeout: 100 * time.Millisecond}
	}
	k.devices, err = n.StartDevices(dctx, edge.DevicesConfig{
		Scanner: &devices.ScannerConfig{Serial: serial(k.scanner.Path()), Framing: framing},
		Printer: &devices.PrinterConfig{Serial: serial(k.printer.Path()), QueueDir: filepath.Join(dir, "print-queue")},
		Header:  devices.Store{Name: "Endcap " + o.edgeID, Register: "Kiosk 1"},
	})
	if err != nil {
		k.close()
		return nil, err
	}
	card, who := exampleCard(ctx, n)
	fmt.Fprintf(stdout, "\nKiosk devices (simulated): scanner %s, printer %s; receipts go to %s\n", k.scanner.Path(), k.printer.Path(), receipts)
	fmt.Fprintf(stdout, "Type a loyalty card number and Enter to scan it at the kiosk (e.g. %s, %s's card):\n", card, who)
	fmt.Fprintf(stdout, "she is signed in, her coupons go to her wallet topic and print. curl http://%s/v1/devices shows the scans.\n", n.HTTPAddr())
	return k, nil
}

// readScans scans each line typed on in with the kiosk's scanner.
func (k *kiosk) readScans(ctx context.Context, in io.Reader, out io.Writer) {
	sc := bufio.NewScanner(in)
	for sc.Scan() && ctx.Err() == nil {
		code := strings.TrimSpace(sc.Text())
		if code == "" {
			continue
		}
		if err := k.scanner.Scan(code); err != nil {
			fmt.Fprintln(out, "scan:", err)
			continue
		}
		// Say what the kiosk made of it once it has.
		for range 50 {
			time.Sleep(100 * time.Millisecond)
			if s := k.devices.Status().Scans; len(s) > 0 && s[0].Code == code {
				fmt.Fprintf(out, "kiosk: %s: %s\n", code, s[0].Result)
				break
			}
		}
	}
}

func (k *kiosk) close() {
	if k.stop != nil {
		k.stop()
	}
	if k.devices != nil {
		<-k.devices.Done()
	}
	k.printer.Close()
	k.scanner.Close()
}

// exampleCard is a demo customer's loyalty card, to try the kiosk with.
func exampleCard(ctx context.Context, n *edge.Node) (card, name string) {
	db, done := n.Replica().DB()
	defer done()
	if err := db.QueryRowContext(ctx, "SELECT loyalty_card, name FROM customers WHERE loyalty_card IS NOT NULL ORDER BY id LIMIT 1").Scan(&card, &name); err != nil {
		return "LC0000000034", "a demo customer"
	}
	return card, name
}
