// Command edge runs a headless Endcap store node: the region replica, the
// sync worker (uploads, change feed, catch-up, presence) and the local
// HTTP API. Stores without a screen, scripts and tests use it; the kiosk
// and clerk apps embed the same node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/endcap/endcap/edge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg       edge.Config
		hubs      = fs.String("hub", "", "hub nodes' HTTP API URLs, comma-separated, for snapshot bootstrap (e.g. http://127.0.0.1:8101)")
		passFile  = fs.String("password-file", "", "read the edge's broker password from this file (default $ENDCAP_EDGE_PASSWORD)")
		caFile    = fs.String("mqtt-ca", "", "CA certificate (PEM) to verify the broker's TLS certificate (ssl:// URLs)")
		couponKey = fs.String("coupon-key-file", "", "the region's coupon signing key (any bytes, at least 16; the same file at every store); without it the store operations are off and only sync runs")
		bootstrap = fs.Bool("bootstrap", false, "download the hub's snapshot before following the feed when the replica is new")
		logLevel  = fs.String("log-level", "info", "debug, info, warn or error")
	)
	fs.StringVar(&cfg.ID, "id", "", "this edge's id, e.g. the store id S001 (required; also its broker user)")
	fs.StringVar(&cfg.Region, "region", "demo", "the region")
	fs.StringVar(&cfg.StoreID, "store", "", "the store this edge serves (default: the edge id)")
	fs.StringVar(&cfg.DataDir, "data", "", "data directory for replica.db (required)")
	fs.StringVar(&cfg.MQTT.URL, "mqtt", "", "the region's MQTT broker, tcp://host:port, ssl://host:port or ws://host:port; empty: offline only")
	fs.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:8201", "local API address; empty: none")
	fs.DurationVar(&cfg.AckTimeout, "ack-timeout", 5*time.Second, "resend an upload the hub has not acknowledged in this time")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: edge --id EDGE --data DIR [flags]

Runs a store's node without a screen: the replica of the region (SQLite,
durable), the sync with the hub over MQTT, and the local HTTP API
(GET /v1/status, POST /v1/mutations, GET /v1/pending, GET /v1/attention,
GET /v1/checksum; see docs/api.md). Sales and returns written here are
kept in the outbox until the hub has them, across restarts and days
offline.

With --coupon-key-file the API also runs the store's operations: shopper
sign-in and coupons, customer 360, sales, returns, endless aisle, wish
lists. A clerk signs in with her PIN (POST /v1/clerks/signin) and sends
the session it returns as "Authorization: Bearer TOKEN"; sessions end
after 30 minutes idle or 12 hours.

Example:
  ENDCAP_EDGE_PASSWORD=... edge --id S001 --data /var/lib/endcap/S001 \
      --mqtt tcp://127.0.0.1:1883 --hub http://127.0.0.1:8101 --bootstrap

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.ID == "" || cfg.DataDir == "" {
		fs.Usage()
		return errors.New("--id and --data are required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := cfg.MQTT.LoadSecrets("ENDCAP_EDGE_PASSWORD", *passFile, *caFile); err != nil {
		return err
	}
	if *couponKey != "" {
		b, err := os.ReadFile(*couponKey)
		if err != nil {
			return err
		}
		cfg.CouponKey = []byte(strings.TrimSpace(string(b)))
	}
	if *hubs != "" {
		cfg.HubURLs = strings.Split(*hubs, ",")
	}
	cfg.Progress = func(done, total int64) {
		if total > 0 {
			fmt.Fprintf(stderr, "edge: snapshot %d/%d MiB (%d%%)\n", done>>20, total>>20, done*100/total)
		} else {
			fmt.Fprintf(stderr, "edge: snapshot %d MiB\n", done>>20)
		}
	}
	node, err := edge.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	if *bootstrap {
		st, err := node.Replica().Status(ctx)
		if err != nil {
			return err
		}
		if st.AppliedSeq == 0 {
			start := time.Now()
			if err := node.Bootstrap(ctx); err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
			fmt.Fprintf(stderr, "edge: bootstrapped from snapshot in %s\n", time.Since(start).Round(time.Millisecond))
		}
	}
	// One line tools and tests wait for.
	fmt.Fprintf(stderr, "edge: %s ready: http %s\n", cfg.ID, node.HTTPAddr())
	<-ctx.Done()
	fmt.Fprintf(stderr, "edge: %s stopping\n", cfg.ID)
	return nil
}
