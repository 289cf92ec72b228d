// Command hub runs one node of an Endcap regional hub: a raft group whose
// state is the region's SQLite database, with the operator HTTP API.
//
// Start the first node with --bootstrap, then the others without it, and
// add them with `hubctl join`. See docs/hub.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/endcap/endcap/hub"
	"github.com/endcap/endcap/replication"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "hub:", strings.TrimPrefix(err.Error(), "hub: "))
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg       hub.Config
		tokenFile = fs.String("token-file", "", "read the operator token from this file (instead of --token or $ENDCAP_HUB_TOKEN)")
		edgeFile  = fs.String("edge-credentials", "", "file of edge credentials, one \"edge-id secret\" per line, for snapshot downloads")
		logLevel  = fs.String("log-level", "info", "debug, info, warn or error")
		raftLogs  = fs.Bool("raft-logs", false, "print raft's own logs too")
		pprofAddr = fs.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060), without auth; for profiling only")
		mqttPass  = fs.String("mqtt-password-file", "", "read the broker password from this file (default $ENDCAP_MQTT_PASSWORD)")
		passwords = fs.String("passwords", "", "the region's broker password file (mosquitto format, from 'hubctl credentials'); an edge's password in it also lets the edge download the snapshot")
		mqttCA    = fs.String("mqtt-ca", "", "CA certificate (PEM) to verify the broker's TLS certificate (ssl:// URLs)")
	)
	fs.StringVar(&cfg.Region, "region", "demo", "the region this hub serves (its topics are endcap/REGION/...)")
	fs.StringVar(&cfg.MQTT.URL, "mqtt", "", "the region's MQTT broker, tcp://host:port or ssl://host:port; empty: no edge sync")
	fs.StringVar(&cfg.MQTT.Username, "mqtt-user", "hub", "broker user of the hub")
	fs.StringVar(&cfg.ID, "id", "", "this node's id, unique in the cluster (required)")
	fs.StringVar(&cfg.DataDir, "data", "", "data directory: raft log, snapshots, state database (required)")
	fs.StringVar(&cfg.RaftAddr, "raft", "127.0.0.1:7000", "raft TCP address (host:port other nodes can reach)")
	fs.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:8080", "operator HTTP API address")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start a new one-node cluster if this node has no state (first node only)")
	fs.StringVar(&cfg.Token, "token", "", "operator API bearer token (default $ENDCAP_HUB_TOKEN)")
	fs.BoolVar(&cfg.OpenMetrics, "open-metrics", false, "serve /metrics without the token")
	fs.Uint64Var(&cfg.RetainChanges, "retain-changes", 1_000_000, "change-log entries kept for edges to catch up from")
	fs.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 8192, "raft log entries between snapshots")
	fs.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", 2*time.Minute, "how often to check whether a snapshot is due")
	fs.Uint64Var(&cfg.TrailingLogs, "trailing-logs", 10240, "raft log entries kept after a snapshot for followers to catch up from")
	fs.IntVar(&cfg.WALSegmentSize, "wal-segment-size", 0, "raft log segment size in bytes (0: 64 MiB); small only for tests")
	fs.IntVar(&cfg.BatchMax, "batch-max", 1000, "most mutations in one raft entry (group commit)")
	fs.DurationVar(&cfg.BatchWait, "batch-wait", 2*time.Millisecond, "longest a write waits for company while others are committing (0: the default, 2ms; negative: never)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: hub --id ID --data DIR [flags]

Runs one node of an Endcap regional hub (3 or 5 nodes). The first node
starts with --bootstrap; the others start without it and are added with
'hubctl join'. The operator API (status, mutations, changes, snapshot,
membership, /metrics) needs the bearer token.

Example, three nodes on one machine:
  export ENDCAP_HUB_TOKEN=secret
  hub --id h1 --data /var/lib/endcap/h1 --raft 127.0.0.1:7001 --http 127.0.0.1:8001 --bootstrap &
  hub --id h2 --data /var/lib/endcap/h2 --raft 127.0.0.1:7002 --http 127.0.0.1:8002 &
  hub --id h3 --data /var/lib/endcap/h3 --raft 127.0.0.1:7003 --http 127.0.0.1:8003 &
  hubctl --hub 127.0.0.1:8001 join --id h2 --raft 127.0.0.1:7002 --http 127.0.0.1:8002
  hubctl --hub 127.0.0.1:8001 join --id h3 --raft 127.0.0.1:7003 --http 127.0.0.1:8003

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Token == "" {
		cfg.Token = os.Getenv("ENDCAP_HUB_TOKEN")
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return err
		}
		cfg.Token = strings.TrimSpace(string(b))
	}
	if *edgeFile != "" {
		creds, err := readCredentials(*edgeFile)
		if err != nil {
			return err
		}
		cfg.EdgeCredentials = creds
	}
	if *passwords != "" {
		p, err := replication.LoadPasswords(*passwords)
		if err != nil {
			return fmt.Errorf("--passwords: %w", err)
		}
		cfg.EdgeAuth = func(user, password string) bool {
			p.Reload() // picks up credentials added since start
			return user != cfg.MQTT.Username && p.Verify(user, password)
		}
	}
	if cfg.MQTT.URL != "" {
		if err := cfg.MQTT.LoadSecrets("ENDCAP_MQTT_PASSWORD", *mqttPass, *mqttCA); err != nil {
			return err
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *raftLogs {
		cfg.RaftLogOutput = stderr
	}
	if *pprofAddr != "" {
		srv, err := servePprof(*pprofAddr)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	node, err := hub.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	// One line tools and tests wait for.
	fmt.Fprintf(stderr, "hub: node %s ready: raft %s http %s\n", cfg.ID, node.RaftAddr(), node.HTTPAddr())
	<-ctx.Done()
	fmt.Fprintf(stderr, "hub: node %s stopping\n", cfg.ID)
	return nil
}

// servePprof serves the runtime profiles on addr, on a mux of its own (the
// operator API never serves them).
func servePprof(addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}

func readCredentials(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	creds := map[string]string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		id, secret, ok := strings.Cut(text, " ")
		if !ok || strings.TrimSpace(secret) == "" {
			return nil, fmt.Errorf("%s:%d: want \"edge-id secret\"", path, line)
		}
		creds[id] = strings.TrimSpace(secret)
	}
	return creds, sc.Err()
}
