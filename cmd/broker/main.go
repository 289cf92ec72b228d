// Command broker runs Endcap's embedded MQTT broker (mochi-mqtt) for one
// region: MQTT over TCP (optionally TLS) for edges and hubs, MQTT over
// WebSocket for phones' wallet pages, every client authenticated from a
// mosquitto-format password file and held to the region's ACL.
//
// Run 'broker --help' for the flags. See docs/broker.md.
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

	"github.com/endcap/endcap/replication"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format+"; run 'broker --help'", append([]any{errUsage}, args...)...)
}

const usage = `Usage: broker [flags]

broker runs Endcap's embedded MQTT broker for one region until SIGINT or
SIGTERM: MQTT 3.1.1/5 over TCP for edges and hub nodes (TLS with --tls-cert
and --tls-key), and over WebSocket for the phones' wallet pages. It prints
the URLs it listens on, then logs refused connects and denied publishes
and subscriptions to stderr.

Every client logs in with a user and password from the --passwords file
(mosquitto's password_file format; 'hubctl credentials add' writes it). The
file is read again when it changes, at the next connect: no restart to add
an edge. The user named by --hub-user reads and writes the whole region;
"wallet" and "wallet-*" users read wallet topics; any other user is the edge
of that id and may publish only its upload and presence topics (and
wallets) and read only the feed and its own down topic. See docs/broker.md.

Flags:
`

const examples = `
Examples:
  hubctl credentials add --file passwords hub
  hubctl credentials add --file passwords store-1
  broker --region demo --passwords passwords

  hubctl certs --dir tls --hosts 127.0.0.1,localhost
  broker --region demo --passwords passwords --listen 127.0.0.1:8883 \
      --tls-cert tls/server.pem --tls-key tls/server-key.pem

  broker --region demo --allow-anonymous      # a local demo, no passwords
`

// run is the broker command: it parses args, starts the broker, prints its
// URLs to stdout and serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg replication.BrokerConfig
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Region, "region", "demo", "the `REGION` whose topics (endcap/REGION/...) the ACL grants")
	fs.StringVar(&cfg.TCPAddr, "listen", "127.0.0.1:1883", "MQTT TCP listener `ADDR`, host:port (port 0: any free port)")
	fs.StringVar(&cfg.WSAddr, "ws-listen", "127.0.0.1:1884", "MQTT-over-WebSocket listener `ADDR`; empty: none")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "serve TLS on the TCP listener with this certificate `FILE` (PEM)")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "the TLS certificate's key `FILE` (PEM)")
	fs.StringVar(&cfg.PasswordFile, "passwords", "", "the password `FILE` (mosquitto format; required unless --allow-anonymous)")
	fs.StringVar(&cfg.HubUser, "hub-user", replication.DefaultHubUser, "the hub's `USER` name")
	fs.BoolVar(&cfg.AllowAnonymous, "allow-anonymous", false, "let clients without a user name in, with the hub's rights (local demos only)")
	level := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var b strings.Builder
			b.WriteString(usage)
			writeFlags(&b, fs)
			b.WriteString(examples)
			_, err := io.WriteString(stdout, b.String())
			return err
		}
		return usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if cfg.PasswordFile == "" && !cfg.AllowAnonymous {
		return usageErr("--passwords FILE is required (or --allow-anonymous for a local demo)")
	}
	if cfg.TCPAddr == "" && cfg.WSAddr == "" {
		return usageErr("--listen and --ws-listen are both empty: nothing to listen on")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return usageErr("--log-level %q: want debug, info, warn or error", *level)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	b, err := replication.StartBroker(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "endcap broker for region %s\n", cfg.Region)
	if u := b.URL(); u != "" {
		fmt.Fprintf(stdout, "mqtt      %s\n", u)
	}
	if u := b.WSURL(); u != "" {
		fmt.Fprintf(stdout, "websocket %s\n", u)
	}
	if cfg.AllowAnonymous {
		fmt.Fprintln(stdout, "warning: --allow-anonymous: anyone who can reach the broker may read and write the whole region")
	}
	<-ctx.Done()
	st := b.Stats()
	cfg.Logger.Info("shutting down", "connects_refused", st.ConnectsRefused, "publishes_denied", st.PublishesDenied,
		"subscribes_denied", st.SubscribesDenied, "clients", st.Clients)
	return b.Close()
}

// writeFlags prints fs's flags one a line, GNU style, with their defaults.
func writeFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, help := flag.UnquoteUsage(f)
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			arg = ""
		}
		left := "--" + f.Name
		if arg != "" {
			left += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" {
			help += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  %-22s %s\n", left, help)
	})
}
