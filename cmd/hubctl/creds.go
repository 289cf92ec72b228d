package main

// Commands that work on local files, not on a hub: broker credentials,
// demo TLS certificates and a mosquitto configuration. See docs/broker.md.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/endcap/endcap/replication"
)

// localCommands returns the commands on local files, in the order
// 'hubctl --help' lists them (after the hub's).
func localCommands() []command {
	return []command{
		{
			name:     "credentials add",
			synopsis: "--file FILE [--password-stdin] [--acl FILE --region REGION] USER",
			summary:  "add a broker user, or give it a new password (local password file)",
			args:     1,
			local:    true,
			about: `Adds USER to the broker password file FILE (created, mode 0600, if
missing), or replaces its password. Without --password-stdin it generates a
random password and prints it once: the file keeps only a hash (mosquitto's
PBKDF2-SHA512 "$7$" format), so give the password to the edge or hub node
now. The file works as mosquitto's password_file and as the embedded
broker's (broker --passwords), which reloads it by itself.

USER decides the rights: the hub user (--hub-user, default hub) reads and
writes the whole region; "wallet" and "wallet-*" read wallets; any other
user is the edge with that id (its edge id must equal its user name).

With --acl, also rewrites that mosquitto ACL file for the file's users:
then send mosquitto SIGHUP to reload both.`,
			example: `hubctl credentials add --file /etc/endcap/passwords store-7
printf '%s\n' "$HUB_PASSWORD" | hubctl credentials add --file passwords --password-stdin hub
hubctl credentials add --file passwords --acl /etc/mosquitto/endcap.acl --region north store-8`,
			setup: credAddCmd,
		},
		{
			name:     "credentials remove",
			synopsis: "--file FILE [--acl FILE --region REGION] USER",
			summary:  "remove a broker user (local password file)",
			args:     1,
			local:    true,
			about: `Removes USER from the broker password file FILE: it can no longer connect
(clients already connected stay until they reconnect). With --acl, also
rewrites that mosquitto ACL file; send mosquitto SIGHUP to reload.`,
			example: "hubctl credentials remove --file passwords store-7",
			setup:   credRemoveCmd,
		},
		{
			name:     "credentials list",
			synopsis: "--file FILE",
			local:    true,
			summary:  "list the users of a broker password file and their roles",
			about: `Lists the users of the broker password file FILE with their role: hub,
wallet (reads wallets) or edge.`,
			example: "hubctl credentials list --file passwords",
			setup:   credListCmd,
		},
		{
			name:     "certs",
			synopsis: "--dir DIR [--hosts HOST,...]",
			local:    true,
			summary:  "mint a demo CA and a TLS certificate for the broker (local files)",
			about: `Writes a demo certificate authority (ca.pem, ca-key.pem, valid 10 years)
and a broker certificate signed by it (server.pem, server-key.pem, 825
days) into DIR, ECDSA P-256. The certificate names every --hosts entry: IP
addresses and DNS names that edges will dial. An existing CA in DIR is
kept and signs the new certificate, so edges keep trusting it.

Give the broker server.pem and server-key.pem (broker --tls-cert/--tls-key,
or mosquitto's certfile/keyfile), and edges ca.pem. Keep ca-key.pem off the
network. For production, use certificates from your own CA.`,
			example: "hubctl certs --dir /etc/endcap/tls --hosts 127.0.0.1,localhost,broker.store.example",
			setup:   certsCmd,
		},
		{
			name:     "mosquitto-config",
			synopsis: "--region REGION --passwords FILE --out DIR [--port N] [--ws-port N] [--tls-cert FILE --tls-key FILE]",
			local:    true,
			summary:  "write a mosquitto.conf and ACL file for a region (local files)",
			about: `Writes DIR/mosquitto.conf and DIR/mosquitto.acl to run mosquitto 2.0 as the
region's broker: no anonymous clients, users from the password file
FILE, the region's ACL for each of them (as the embedded broker enforces
it), an MQTT listener (TLS with --tls-cert and --tls-key) and a WebSocket
listener for wallet pages, persistence, TCP_NODELAY.

mosquitto started as root switches to the mosquitto user before reading
the password, ACL and key files: make them readable to it. The ACL lists
each user: after adding or removing users, rewrite it (credentials add
--acl, or run this again) and send mosquitto SIGHUP.`,
			example: `hubctl mosquitto-config --region north --passwords /etc/endcap/passwords --out /etc/mosquitto/conf.d/endcap
mosquitto -c /etc/mosquitto/conf.d/endcap/mosquitto.conf`,
			setup: mosquittoConfigCmd,
		},
	}
}

// findCommand finds the command name, or name followed by the first of
// rest ("credentials add"), and returns it with the arguments left.
func findCommand(cmds []command, name string, rest []string) (*command, []string) {
	for i := range cmds {
		if cmds[i].name == name {
			return &cmds[i], rest
		}
	}
	if len(rest) > 0 {
		for i := range cmds {
			if cmds[i].name == name+" "+rest[0] {
				return &cmds[i], rest[1:]
			}
		}
	}
	return nil, rest
}

// groupUsage answers a command name that is only the first word of some
// commands ("credentials"): their list, on stdout for help, else a usage
// error. Any other name is an unknown command.
func groupUsage(w io.Writer, cmds []command, name string, help bool) error {
	var subs []string
	var b strings.Builder
	for _, cmd := range cmds {
		if sub, ok := strings.CutPrefix(cmd.name, name+" "); ok && name != "" {
			subs = append(subs, sub)
			fmt.Fprintf(&b, "  hubctl %s %s\n      %s\n", cmd.name, cmd.synopsis, cmd.summary)
		}
	}
	switch {
	case len(subs) == 0:
		return usagef("unknown command %q; run 'hubctl --help' for the list", name)
	case help:
		_, err := fmt.Fprintf(w, "Usage:\n%s\nRun 'hubctl %s %s --help' for one's flags.\n", &b, name, subs[0])
		return err
	}
	return usagef("%s: name one of: %s; run 'hubctl %s --help'", name, strings.Join(subs, ", "), name)
}

// credentialsResult is what credentials add and remove print with --json.
type credentialsResult struct {
	User     string `json:"user"`
	Role     string `json:"role"`
	File     string `json:"file"`
	Created  bool   `json:"created,omitempty"`  // the file was new
	Replaced bool   `json:"replaced,omitempty"` // add: the user had a password
	Removed  bool   `json:"removed,omitempty"`
	Password string `json:"password,omitempty"` // add: a generated password
	ACL      string `json:"acl,omitempty"`      // the ACL file rewritten
}

// aclFlags are the flags with which add and remove rewrite a mosquitto ACL.
type aclFlags struct{ file, region, hubUser *string }

func addACLFlags(fs *flag.FlagSet) aclFlags {
	return aclFlags{
		file:    fs.String("acl", "", "also rewrite this mosquitto ACL `FILE` for the file's users"),
		region:  fs.String("region", "", "the `REGION` of the ACL (with --acl)"),
		hubUser: fs.String("hub-user", replication.DefaultHubUser, "the hub's `USER` name"),
	}
}

func (a aclFlags) check(cmd string) error {
	if *a.file != "" && *a.region == "" {
		return usagef("%s: --acl needs --region", cmd)
	}
	if *a.region != "" {
		if err := replication.ValidID(*a.region); err != nil {
			return usagef("%s: --region: %v", cmd, err)
		}
	}
	if err := replication.ValidID(*a.hubUser); err != nil {
		return usagef("%s: --hub-user: %v", cmd, err)
	}
	return nil
}

// write rewrites the ACL file, if asked to.
func (a aclFlags) write(pw *replication.Passwords) error {
	if *a.file == "" {
		return nil
	}
	return writeFileAtomic(*a.file, []byte(replication.MosquittoACL(*a.region, *a.hubUser, pw.Users())), 0o644)
}

func role(user, hubUser string) string {
	return replication.ACL{Region: "any", HubUser: hubUser}.RoleOf(user).String()
}

// oneUser checks the USER argument.
func oneUser(c *cli, cmd string) (string, error) {
	if len(c.args) != 1 {
		return "", usagef("%s: name the USER; run 'hubctl %s --help'", cmd, cmd)
	}
	if err := replication.ValidID(c.args[0]); err != nil {
		return "", usagef("%s: user: %v", cmd, err)
	}
	return c.args[0], nil
}

// loadOrNew loads the password file, or starts an empty one if missing.
func loadOrNew(path string) (pw *replication.Passwords, created bool, err error) {
	pw, err = replication.LoadPasswords(path)
	if errors.Is(err, os.ErrNotExist) {
		return &replication.Passwords{}, true, nil
	}
	return pw, false, err
}

func credAddCmd(fs *flag.FlagSet) func(context.Context, *cli) error {
	file := fs.String("file", "", "the broker password `FILE` (required; created if missing)")
	stdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin instead of generating one")
	acl := addACLFlags(fs)
	return func(_ context.Context, c *cli) error {
		const cmd = "credentials add"
		if *file == "" {
			return usagef("%s: --file FILE is required; run 'hubctl %s --help'", cmd, cmd)
		}
		user, err := oneUser(c, cmd)
		if err != nil {
			return err
		}
		if err := acl.check(cmd); err != nil {
			return err
		}
		password, generated := replication.GeneratePassword(), true
		if *stdin {
			line, err := bufio.NewReader(c.stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read the password from stdin: %w", err)
			}
			password, generated = strings.TrimRight(line, "\r\n"), false
			if password == "" {
				return usagef("%s: --password-stdin: no password on stdin", cmd)
			}
		}
		pw, created, err := loadOrNew(*file)
		if err != nil {
			return err
		}
		res := credentialsResult{User: user, Role: role(user, *acl.hubUser), File: *file, Created: created, Replaced: pw.Has(user), ACL: *acl.file}
		if err := pw.Set(user, password); err != nil {
			return err
		}
		if err := pw.Save(*file); err != nil {
			return err
		}
		if err := acl.write(pw); err != nil {
			return err
		}
		if generated {
			res.Password = password
		}
		if c.json {
			return c.printJSON(res)
		}
		if res.Replaced {
			fmt.Fprintf(c.stdout, "set a new password for %s (%s) in %s\n", user, res.Role, *file)
		} else {
			fmt.Fprintf(c.stdout, "added %s (%s) to %s\n", user, res.Role, *file)
		}
		if generated {
			fmt.Fprintf(c.stdout, "password: %s\n", password)
			fmt.Fprintln(c.stdout, "It is shown this once and stored only as a hash: give it to the node now.")
		}
		c.printACLHint(*acl.file)
		return nil
	}
}

func (c *cli) printACLHint(aclFile string) {
	if aclFile != "" {
		fmt.Fprintf(c.stdout, "rewrote %s: send mosquitto SIGHUP to reload it and the passwords\n", aclFile)
		return
	}
	fmt.Fprintln(c.stdout, "The embedded broker rereads the file by itself; mosquitto needs its ACL rewritten (--acl) and SIGHUP.")
}

func credRemoveCmd(fs *flag.FlagSet) func(context.Context, *cli) error {
	file := fs.String("file", "", "the broker password `FILE` (required)")
	acl := addACLFlags(fs)
	return func(_ context.Context, c *cli) error {
		const cmd = "credentials remove"
		if *file == "" {
			return usagef("%s: --file FILE is required; run 'hubctl %s --help'", cmd, cmd)
		}
		user, err := oneUser(c, cmd)
		if err != nil {
			return err
		}
		if err := acl.check(cmd); err != nil {
			return err
		}
		pw, err := replication.LoadPasswords(*file)
		if err != nil {
			return err
		}
		if !pw.Remove(user) {
			return fmt.Errorf("%s has no user %s (see 'hubctl credentials list --file %s')", *file, user, *file)
		}
		if err := pw.Save(*file); err != nil {
			return err
		}
		if err := acl.write(pw); err != nil {
			return err
		}
		res := credentialsResult{User: user, Role: role(user, *acl.hubUser), File: *file, Removed: true, ACL: *acl.file}
		if c.json {
			return c.printJSON(res)
		}
		fmt.Fprintf(c.stdout, "removed %s (%s) from %s; clients connected as %s stay until they reconnect\n", user, res.Role, *file, user)
		c.printACLHint(*acl.file)
		return nil
	}
}

// userRole is one row of credentials list --json.
type userRole struct {
	User string `json:"user"`
	Role string `json:"role"`
}

func credListCmd(fs *flag.FlagSet) func(context.Context, *cli) error {
	file := fs.String("file", "", "the broker password `FILE` (required)")
	hubUser := fs.String("hub-user", replication.DefaultHubUser, "the hub's `USER` name")
	return func(_ context.Context, c *cli) error {
		if *file == "" {
			return usagef("credentials list: --file FILE is required; run 'hubctl credentials list --help'")
		}
		pw, err := replication.LoadPasswords(*file)
		if err != nil {
			return err
		}
		rows := []userRole{}
		for _, u := range pw.Users() {
			rows = append(rows, userRole{u, role(u, *hubUser)})
		}
		if c.json {
			return c.printJSON(rows)
		}
		if len(rows) == 0 {
			fmt.Fprintf(c.stdout, "%s has no users: add one with 'hubctl credentials add'\n", *file)
			return nil
		}
		t := c.table()
		t.row("USER", "ROLE")
		for _, r := range rows {
			t.row(r.User, r.Role)
		}
		return t.flush()
	}
}

// certsResult is what certs prints with --json.
type certsResult struct {
	Dir       string   `json:"dir"`
	Hosts     []string `json:"hosts"`
	NewCA     bool     `json:"new_ca"`
	CA        string   `json:"ca"`
	CAKey     string   `json:"ca_key"`
	Server    string   `json:"server"`
	ServerKey string   `json:"server_key"`
}

func certsCmd(fs *flag.FlagSet) func(context.Context, *cli) error {
	dir := fs.String("dir", "", "write the files into `DIR` (required; created if missing)")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "the `HOSTS` (IP addresses and DNS names, comma-separated) the certificate names")
	return func(_ context.Context, c *cli) error {
		if *dir == "" {
			return usagef("certs: --dir DIR is required; run 'hubctl certs --help'")
		}
		var hs []string
		for h := range strings.SplitSeq(*hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hs = append(hs, h)
			}
		}
		if len(hs) == 0 {
			return usagef("certs: --hosts names no host")
		}
		_, err := os.Stat(filepath.Join(*dir, replication.CAFile))
		newCA := errors.Is(err, os.ErrNotExist)
		if err := replication.MintCerts(*dir, hs); err != nil {
			return err
		}
		j := func(name string) string { return filepath.Join(*dir, name) }
		res := certsResult{Dir: *dir, Hosts: hs, NewCA: newCA, CA: j(replication.CAFile), CAKey: j(replication.CAKeyFile),
			Server: j(replication.ServerFile), ServerKey: j(replication.ServerKeyFile)}
		if c.json {
			return c.printJSON(res)
		}
		if newCA {
			fmt.Fprintf(c.stdout, "new CA:             %s (key %s: keep it off the network)\n", res.CA, res.CAKey)
		} else {
			fmt.Fprintf(c.stdout, "kept the CA:        %s\n", res.CA)
		}
		fmt.Fprintf(c.stdout, "broker certificate: %s (key %s) for %s\n", res.Server, res.ServerKey, strings.Join(hs, ", "))
		fmt.Fprintf(c.stdout, "Give edges %s to verify the broker; start it with --tls-cert %s --tls-key %s.\n", res.CA, res.Server, res.ServerKey)
		return nil
	}
}

// mosquittoConfigResult is what mosquitto-config prints with --json.
type mosquittoConfigResult struct {
	Conf  string   `json:"conf"`
	ACL   string   `json:"acl"`
	Users []string `json:"users"`
}

func mosquittoConfigCmd(fs *flag.FlagSet) func(context.Context, *cli) error {
	region := fs.String("region", "", "the `REGION` (required)")
	passwords := fs.String("passwords", "", "the broker password `FILE` (required; see credentials add)")
	out := fs.String("out", "", "write mosquitto.conf and mosquitto.acl into `DIR` (required; created if missing)")
	port := fs.Int("port", 1883, "the MQTT listener's `PORT`")
	wsPort := fs.Int("ws-port", 1884, "the WebSocket listener's `PORT`; 0: none")
	bind := fs.String("bind", "", "listen on this `ADDR` only (an IPv4 address for the WebSocket listener); default all")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `FILE` for the MQTT listener (see certs)")
	tlsKey := fs.String("tls-key", "", "the TLS certificate's key `FILE`")
	hubUser := fs.String("hub-user", replication.DefaultHubUser, "the hub's `USER` name")
	data := fs.String("data", "/var/lib/mosquitto/", "mosquitto's persistence `DIR` (retained presence survives restarts)")
	return func(_ context.Context, c *cli) error {
		const cmd = "mosquitto-config"
		switch {
		case *region == "" || *passwords == "" || *out == "":
			return usagef("%s: --region, --passwords and --out are required; run 'hubctl %s --help'", cmd, cmd)
		case replication.ValidID(*region) != nil:
			return usagef("%s: --region: %v", cmd, replication.ValidID(*region))
		case replication.ValidID(*hubUser) != nil:
			return usagef("%s: --hub-user: %v", cmd, replication.ValidID(*hubUser))
		case *port < 1 || *port > 65535 || *wsPort < 0 || *wsPort > 65535 || *port == *wsPort:
			return usagef("%s: --port must be 1..65535 and --ws-port 0..65535, and they must differ", cmd)
		case (*tlsCert == "") != (*tlsKey == ""):
			return usagef("%s: --tls-cert and --tls-key go together", cmd)
		}
		pw, err := replication.LoadPasswords(*passwords)
		if err != nil {
			return err
		}
		abs := func(p string) (string, error) {
			if p == "" {
				return "", nil
			}
			return filepath.Abs(p)
		}
		var paths [4]string
		for i, p := range []string{*passwords, *out, *tlsCert, *tlsKey} {
			if paths[i], err = abs(p); err != nil {
				return err
			}
		}
		pwFile, outDir, cert, key := paths[0], paths[1], paths[2], paths[3]
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return err
		}
		res := mosquittoConfigResult{Conf: filepath.Join(outDir, "mosquitto.conf"), ACL: filepath.Join(outDir, "mosquitto.acl"), Users: pw.Users()}
		if !strings.HasSuffix(*data, "/") {
			*data += "/" // mosquitto wants it
		}
		conf := mosquittoConf(mosquittoSettings{region: *region, passwords: pwFile, acl: res.ACL, conf: res.Conf,
			port: *port, wsPort: *wsPort, bind: *bind, cert: cert, key: key, data: *data})
		if err := writeFileAtomic(res.ACL, []byte(replication.MosquittoACL(*region, *hubUser, res.Users)), 0o644); err != nil {
			return err
		}
		if err := writeFileAtomic(res.Conf, []byte(conf), 0o644); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(res)
		}
		fmt.Fprintf(c.stdout, "wrote %s and %s (%d users)\n", res.Conf, res.ACL, len(res.Users))
		fmt.Fprintf(c.stdout, "run: mosquitto -c %s\n", res.Conf)
		return nil
	}
}

type mosquittoSettings struct {
	region, passwords, acl, conf string
	port, wsPort                 int
	bind, cert, key, data        string
}

func mosquittoConf(s mosquittoSettings) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Mosquitto 2.0 configuration for Endcap region %q, written by
# hubctl mosquitto-config. Run: mosquitto -c %s
#
# Started as root, mosquitto switches to the mosquitto user before it reads
# the password, ACL and key files below: make them readable to that user
# (e.g. chgrp mosquitto FILE; chmod 0640 FILE). After adding or removing
# users (hubctl credentials add/remove --acl %s), send
# mosquitto SIGHUP to reload the passwords and the ACL.

per_listener_settings false
allow_anonymous false
password_file %s
acl_file %s

persistence true
persistence_location %s

log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true

# Without it a QoS 1 round trip takes ~40 ms (Nagle's algorithm).
set_tcp_nodelay true
`, s.region, s.conf, s.acl, s.passwords, s.acl, s.data)
	listen := strconv.Itoa(s.port)
	if s.bind != "" {
		listen += " " + s.bind
	}
	fmt.Fprintf(&b, "\n# MQTT over TCP for edges and hub nodes\nlistener %s\n", listen)
	if s.cert != "" {
		fmt.Fprintf(&b, "certfile %s\nkeyfile %s\n", s.cert, s.key)
	}
	if s.wsPort > 0 {
		listen := strconv.Itoa(s.wsPort)
		if s.bind != "" {
			listen += " " + s.bind
		}
		fmt.Fprintf(&b, "\n# MQTT over WebSocket for the phones' wallet pages (plain ws://: put a\n# TLS-ending proxy in front for wss://)\nlistener %s\nprotocol websockets\n", listen)
		if s.bind != "" {
			b.WriteString("# without it the websocket listener ignores the bind address\nsocket_domain ipv4\n")
		}
	}
	return b.String()
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it into place.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
