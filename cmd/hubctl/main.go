// Command hubctl is the operator CLI of an Endcap regional hub. It talks
// to one hub node's operator API (package hub): status, membership (join,
// remove, leader transfer), snapshots, checksums and the change log.
//
// Run 'hubctl --help' for the commands. See docs/hub.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/endcap/endcap/hub"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hubctl:", err)
		var u *usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

const (
	defaultHub = "127.0.0.1:8080"
	envHub     = "ENDCAP_HUB"
	envToken   = "ENDCAP_HUB_TOKEN"
	envSecret  = "ENDCAP_EDGE_SECRET"
)

// usageError is a mistake in the command line; main exits 2 for it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// cli is one invocation: the global flags, the outputs and the client.
type cli struct {
	hub     string
	token   string
	json    bool
	timeout time.Duration
	stdout  io.Writer
	stderr  io.Writer
	stdin   io.Reader
	args    []string // the command's positional arguments (command.args)
	client  *hub.Client
}

// globalFlags registers the global flags on fs, defaulting to their
// current values, so they are accepted before and after the command.
func (c *cli) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.hub, "hub", c.hub, "the `ADDR` of the hub node to ask, host:port (default $"+envHub+" or "+defaultHub+")")
	fs.StringVar(&c.token, "token", c.token, "the operator API's bearer `TOKEN` (default $"+envToken+")")
	fs.BoolVar(&c.json, "json", c.json, "print the API's JSON (indented) instead of tables")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "give up on the hub after this `DURATION`; 0: never")
}

func isGlobal(name string) bool {
	switch name {
	case "hub", "token", "json", "timeout":
		return true
	}
	return false
}

// newFlagSet returns a flag set that prints nothing itself: run reports
// parse errors and prints the help.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// run is hubctl: it parses args, runs the command and returns its error,
// already phrased for the operator. Help goes to stdout and is no error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runIO(ctx, args, os.Stdin, stdout, stderr)
}

// runIO is run reading stdin from the given reader.
func runIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{stdout: stdout, stderr: stderr, stdin: stdin, timeout: 30 * time.Second}
	cmds := append(commands(), localCommands()...) // localCommands: creds.go
	fs := newFlagSet("hubctl")
	c.globalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return mainUsage(stdout, fs, cmds)
		}
		return usagef("%v; run 'hubctl --help'", err)
	}
	if fs.NArg() == 0 {
		return usagef("no command given; run 'hubctl --help' for the list")
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	help := name == "help"
	if help {
		if len(rest) == 0 {
			return mainUsage(stdout, fs, cmds)
		}
		name, rest = rest[0], rest[1:]
	}
	cmd, rest := findCommand(cmds, name, rest)
	if cmd == nil {
		return groupUsage(stdout, cmds, name, help || slices.Contains(rest, "--help") || slices.Contains(rest, "-h"))
	}
	name = cmd.name
	if help {
		rest = []string{"--help"}
	}

	cfs := newFlagSet(name)
	runCmd := cmd.setup(cfs)
	c.globalFlags(cfs)
	for { // flags may come before and after the positional arguments
		if err := cfs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return cmd.usage(stdout, cfs)
			}
			return usagef("%s: %v; run 'hubctl %s --help'", name, err, name)
		}
		if cfs.NArg() == 0 || len(c.args) >= cmd.args {
			break
		}
		c.args, rest = append(c.args, cfs.Arg(0)), cfs.Args()[1:]
	}
	if cfs.NArg() > 0 {
		return usagef("%s: unexpected argument %q; run 'hubctl %s --help'", name, cfs.Arg(0), name)
	}
	if c.timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	if cmd.local {
		return runCmd(ctx, c) // no hub to ask, nothing to explain
	}
	if c.hub == "" {
		c.hub = os.Getenv(envHub)
	}
	if c.hub == "" {
		c.hub = defaultHub
	}
	if c.token == "" {
		c.token = os.Getenv(envToken)
	}
	c.client = &hub.Client{Addr: c.hub, Token: c.token, HTTP: &http.Client{}}
	if c.timeout > 0 && !cmd.ownTimeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	return c.explain(runCmd(ctx, c))
}

// explain turns an error from the hub or the network into one line an
// operator can act on.
func (c *cli) explain(err error) error {
	if err == nil {
		return nil
	}
	var u *usageError
	if errors.As(err, &u) {
		return err
	}
	var api *hub.APIError
	if errors.As(err, &api) {
		switch {
		case api.Code == http.StatusUnauthorized && c.token == "":
			return fmt.Errorf("unauthorized: no token given; set --token or $%s", envToken)
		case api.Code == http.StatusUnauthorized:
			return fmt.Errorf("unauthorized: check --token or $%s", envToken)
		case api.Leader != "":
			return fmt.Errorf("not the leader; the leader is at %s (try --hub %s)", api.Leader, api.Leader)
		case errors.Is(err, hub.ErrNotLeader):
			return fmt.Errorf("not the leader, and %s knows of no leader (an election may be under way); retry shortly", c.hub)
		case errors.Is(err, hub.ErrCompacted):
			return fmt.Errorf("%s: the change log no longer holds that sequence (410 Gone); download a snapshot and follow on from its hub seq", api.Msg)
		}
		msg := api.Msg
		if msg == "" {
			msg = "no details"
		}
		return fmt.Errorf("%s (hub %s answered %d %s)", msg, c.hub, api.Code, http.StatusText(api.Code))
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to the hub at %s: connection refused (is the node running? check --hub or $%s)", c.hub, envHub)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from the hub at %s within %s (raise --timeout); a change may still complete there", c.hub, c.timeout)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("cannot reach the hub at %s: %v", c.hub, ue.Err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("hub at %s: %v", c.hub, err)
	}
	return err
}

// command is one hubctl command.
type command struct {
	name     string
	synopsis string // the flags after the name, for the usage line
	summary  string // one line for 'hubctl --help'
	about    string // what it does, for 'hubctl NAME --help'
	example  string
	// ownTimeout: the command applies --timeout itself rather than as a
	// deadline on the whole command.
	ownTimeout bool
	// args is how many positional arguments it takes, at most (cli.args).
	args int
	// local: it works on local files, not with a hub.
	local bool
	// setup defines the command's flags on fs and returns the command.
	setup func(fs *flag.FlagSet) func(ctx context.Context, c *cli) error
}

func mainUsage(w io.Writer, fs *flag.FlagSet, cmds []command) error {
	var b strings.Builder
	b.WriteString(`Usage: hubctl [global flags] COMMAND [flags]

hubctl operates an Endcap regional hub through one node's operator API.
Reads (status, leader, checksum, changes) show the named node's own view;
membership changes go to the leader (any member forwards them).

Commands:
`)
	width := 0
	for _, cmd := range cmds {
		width = max(width, len(cmd.name))
	}
	for _, cmd := range cmds {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, cmd.name, cmd.summary)
	}
	b.WriteString("\nGlobal flags (before or after the command):\n")
	writeFlags(&b, fs, isGlobal)
	b.WriteString(`
Examples:
  export ENDCAP_HUB=127.0.0.1:8001 ENDCAP_HUB_TOKEN=secret
  hubctl status
  hubctl join --id h2 --raft 127.0.0.1:7002 --http 127.0.0.1:8002
  hubctl --hub 127.0.0.1:8002 leader
  hubctl leader-transfer --id h2
  hubctl changes --from 1 --limit 20
  hubctl --json checksum
  hubctl download-snapshot --out region.db

Run 'hubctl COMMAND --help' for a command's flags.
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func (cmd *command) usage(w io.Writer, fs *flag.FlagSet) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: hubctl [global flags] %s", cmd.name)
	if cmd.synopsis != "" {
		b.WriteString(" " + cmd.synopsis)
	}
	b.WriteString("\n\n" + strings.TrimSpace(cmd.about) + "\n")
	local := func(name string) bool { return !isGlobal(name) }
	has := false
	fs.VisitAll(func(f *flag.Flag) { has = has || local(f.Name) })
	if has {
		b.WriteString("\nFlags:\n")
		writeFlags(&b, fs, local)
	}
	if cmd.example != "" {
		b.WriteString("\nExample:\n")
		for line := range strings.SplitSeq(strings.TrimSpace(cmd.example), "\n") {
			b.WriteString("  " + line + "\n")
		}
	}
	b.WriteString("\nGlobal flags: --hub ADDR, --token TOKEN, --json, --timeout DURATION (see 'hubctl --help').\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFlags prints the flags of fs that pass keep, one a line, with
// their defaults unless zero.
func writeFlags(w io.Writer, fs *flag.FlagSet, keep func(name string) bool) {
	fs.VisitAll(func(f *flag.Flag) {
		if !keep(f.Name) {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			arg = ""
		}
		left := "--" + f.Name
		if arg != "" {
			left += " " + arg
		}
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			if !isGlobal(f.Name) || f.Name == "timeout" {
				usage += " (default " + f.DefValue + ")"
			}
		}
		fmt.Fprintf(w, "  %-20s %s\n", left, usage)
	})
}
