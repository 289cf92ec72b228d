package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/endcap/endcap/internal/mqtttest"
	"github.com/endcap/endcap/replication"
)

// local runs hubctl with stdin; the local commands need no hub.
func local(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = runIO(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func mustLocal(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, stderr, err := local(t, stdin, args...)
	if err != nil {
		t.Fatalf("hubctl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file, aclFile := filepath.Join(dir, "passwords"), filepath.Join(dir, "mosquitto.acl")

	// A generated password, printed once; the file is created 0600.
	res := decodeJSON[credentialsResult](t, mustLocal(t, "", "credentials", "add", "--json", "--file", file, "store-1"))
	if res.User != "store-1" || res.Role != "edge" || !res.Created || res.Replaced || len(res.Password) != 32 {
		t.Errorf("add --json: %+v", res)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new password file: %v, %v", fi.Mode(), err)
	}
	pw, err := replication.LoadPasswords(file)
	if err != nil || !pw.Verify("store-1", res.Password) {
		t.Fatalf("the printed password does not verify: %v", err)
	}

	// Human output, flags after the user, a password from stdin, an ACL.
	out := mustLocal(t, "hub-secret\n", "credentials", "add", "hub", "--file", file, "--password-stdin", "--acl", aclFile, "--region", "demo")
	if !strings.Contains(out, "added hub (hub) to "+file) || strings.Contains(out, "password:") || !strings.Contains(out, "rewrote "+aclFile) {
		t.Errorf("add --password-stdin output:\n%s", out)
	}
	out = mustLocal(t, "", "credentials", "add", "--file", file, "store-1")
	if !strings.Contains(out, "set a new password for store-1 (edge)") || !strings.Contains(out, "password: ") {
		t.Errorf("replacing a password:\n%s", out)
	}
	pw, _ = replication.LoadPasswords(file)
	if !pw.Verify("hub", "hub-secret") || pw.Verify("store-1", res.Password) {
		t.Error("passwords after add --password-stdin and a replacement are not as set")
	}
	if acl, _ := os.ReadFile(aclFile); string(acl) != replication.MosquittoACL("demo", "hub", []string{"hub", "store-1"}) {
		t.Errorf("ACL file:\n%s", acl)
	}

	mustLocal(t, "", "credentials", "add", "--file", file, "wallet")
	out = mustLocal(t, "", "credentials", "list", "--file", file)
	if want := "USER     ROLE\nhub      hub\nstore-1  edge\nwallet   wallet\n"; out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	rows := decodeJSON[[]userRole](t, mustLocal(t, "", "--json", "credentials", "list", "--file", file))
	if len(rows) != 3 || rows[2] != (userRole{"wallet", "wallet"}) {
		t.Errorf("list --json: %+v", rows)
	}

	out = mustLocal(t, "", "credentials", "remove", "--file", file, "--acl", aclFile, "--region", "demo", "store-1")
	if !strings.Contains(out, "removed store-1 (edge)") {
		t.Errorf("remove:\n%s", out)
	}
	if acl, _ := os.ReadFile(aclFile); strings.Contains(string(acl), "store-1") {
		t.Errorf("store-1 still in the ACL:\n%s", acl)
	}
	if _, _, err := local(t, "", "credentials", "remove", "--file", file, "store-1"); err == nil || !strings.Contains(err.Error(), "has no user store-1") {
		t.Errorf("removing a missing user: %v", err)
	}
	if _, _, err := local(t, "", "credentials", "list", "--file", filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("list of a missing file: %v", err)
	}
}

func TestLocalUsageErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "pw")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"credentials"}, "credentials: name one of: add, remove, list"},
		{[]string{"credentials", "frob"}, "credentials: name one of"},
		{[]string{"credentials", "add", "store-1"}, "credentials add: --file FILE is required"},
		{[]string{"credentials", "add", "--file", file}, "credentials add: name the USER"},
		{[]string{"credentials", "add", "--file", file, "a/b"}, "credentials add: user:"},
		{[]string{"credentials", "add", "--file", file, "s1", "s2"}, `credentials add: unexpected argument "s2"`},
		{[]string{"credentials", "add", "--file", file, "--acl", "x.acl", "s1"}, "--acl needs --region"},
		{[]string{"credentials", "add", "--file", file, "--password-stdin", "s1"}, "no password on stdin"},
		{[]string{"credentials", "remove", "--file", file}, "credentials remove: name the USER"},
		{[]string{"credentials", "list"}, "credentials list: --file FILE is required"},
		{[]string{"credentials", "list", "--file", file, "extra"}, `unexpected argument "extra"`},
		{[]string{"certs"}, "certs: --dir DIR is required"},
		{[]string{"certs", "--dir", "x", "--hosts", " , "}, "--hosts names no host"},
		{[]string{"mosquitto-config", "--region", "r"}, "--region, --passwords and --out are required"},
		{[]string{"mosquitto-config", "--region", "a/b", "--passwords", file, "--out", "o"}, "--region:"},
		{[]string{"mosquitto-config", "--region", "r", "--passwords", file, "--out", "o", "--port", "1884"}, "they must differ"},
		{[]string{"mosquitto-config", "--region", "r", "--passwords", file, "--out", "o", "--tls-cert", "c"}, "--tls-cert and --tls-key go together"},
	} {
		out, stderr, err := local(t, "", tc.args...)
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a usage error with %q", tc.args, err, tc.want)
		}
		if out != "" || stderr != "" {
			t.Errorf("%q printed %q %q", tc.args, out, stderr)
		}
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Error("a usage error wrote the password file")
	}
}

// TestLocalHelp: each local command has a help, also under its two words.
func TestLocalHelp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range localCommands() {
		if !strings.Contains(out.String(), "\n  "+cmd.name+" ") {
			t.Errorf("hubctl --help does not list %s", cmd.name)
		}
		words := strings.Fields(cmd.name)
		for _, args := range [][]string{append(words, "--help"), append([]string{"help"}, words...), {cmd.name, "-h"}, {"help", cmd.name}} {
			stdout, stderr, err := local(t, "", args...)
			if want := "Usage: hubctl [global flags] " + cmd.name + " " + cmd.synopsis; err != nil || !strings.HasPrefix(stdout, want) || stderr != "" {
				t.Errorf("%q: %v, stdout %q, stderr %q", args, err, stdout, stderr)
			}
		}
	}
	stdout, _, err := local(t, "", "credentials", "--help")
	if err != nil || !strings.Contains(stdout, "hubctl credentials add --file FILE") || !strings.Contains(stdout, "hubctl credentials list") {
		t.Errorf("credentials --help: %v\n%s", err, stdout)
	}
	if _, _, err := local(t, "", "help", "credentials"); err != nil {
		t.Errorf("help credentials: %v", err)
	}
}

func TestCerts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tls")
	res := decodeJSON[certsResult](t, mustLocal(t, "", "certs", "--json", "--dir", dir, "--hosts", "127.0.0.1, localhost"))
	if !res.NewCA || len(res.Hosts) != 2 || res.Server != filepath.Join(dir, "server.pem") {
		t.Errorf("certs --json: %+v", res)
	}
	for _, f := range []string{res.CA, res.CAKey, res.Server, res.ServerKey} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	out := mustLocal(t, "", "certs", "--dir", dir)
	if !strings.Contains(out, "kept the CA") || !strings.Contains(out, "for 127.0.0.1, localhost") {
		t.Errorf("certs again:\n%s", out)
	}
}

// TestMosquittoConfigRuns provisions a region with hubctl alone, users,
// certificates and mosquitto's configuration, and runs mosquitto with it:
// the hub and an edge connect over TLS and the ACL holds.
func TestMosquittoConfigRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file, tlsDir, out := filepath.Join(dir, "passwords"), filepath.Join(dir, "tls"), filepath.Join(dir, "mosquitto")
	creds := map[string]string{}
	for _, u := range []string{"hub", "store-1", "store-2"} {
		creds[u] = decodeJSON[credentialsResult](t, mustLocal(t, "", "--json", "credentials", "add", "--file", file, u)).Password
	}
	mustLocal(t, "", "certs", "--dir", tlsDir, "--hosts", "127.0.0.1")
	port, wsPort := mqtttest.FreePort(t), mqtttest.FreePort(t)
	res := decodeJSON[mosquittoConfigResult](t, mustLocal(t, "", "--json", "mosquitto-config", "--region", "north",
		"--passwords", file, "--out", out, "--port", fmt.Sprint(port), "--ws-port", fmt.Sprint(wsPort), "--bind", "127.0.0.1",
		"--tls-cert", filepath.Join(tlsDir, "server.pem"), "--tls-key", filepath.Join(tlsDir, "server-key.pem"), "--data", filepath.Join(dir, "data")))
	if len(res.Users) != 3 {
		t.Errorf("mosquitto-config --json: %+v", res)
	}
	conf, err := os.ReadFile(res.Conf)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		conf = append([]byte("user root\n"), conf...) // the test's files are root's; see the conf's comment
	}
	addr, wsAddr := fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", wsPort)
	m := mqtttest.StartMosquittoConf(t, string(conf), addr, wsAddr, true)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(m.Log())
		}
	})

	tlsConf, err := replication.ClientTLSConfig(filepath.Join(tlsDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	connect := func(user, password string) (paho.Client, error) {
		o := paho.NewClientOptions().AddBroker(m.URL()).SetClientID(user).SetUsername(user).SetPassword(password).
			SetTLSConfig(tlsConf).SetProtocolVersion(4).SetConnectTimeout(5 * time.Second).
			SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) { got <- string(msg.Payload()) })
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return nil, errors.New("connect timed out")
		}
		if tok.Error() != nil {
			return nil, tok.Error()
		}
		t.Cleanup(func() { c.Disconnect(50) })
		return c, nil
	}
	hubc, err := connect("hub", creds["hub"])
	if err != nil {
		t.Fatalf("hub: %v", err)
	}
	if tok := hubc.Subscribe("endcap/north/edge/+/up", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	edge, err := connect("store-1", creds["store-1"])
	if err != nil {
		t.Fatalf("store-1: %v", err)
	}
	if _, err := connect("store-2", creds["store-1"]); err == nil {
		t.Error("store-2 connected with store-1's password")
	}
	for _, p := range []struct{ topic, payload string }{{"endcap/north/edge/store-2/up", "forged"}, {"endcap/north/edge/store-1/up", "marker"}} {
		if tok := edge.Publish(p.topic, 1, false, p.payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	select {
	case p := <-got:
		if p != "marker" {
			t.Errorf("the hub received %q first, want the marker only", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hub received nothing")
	}
}

// TestDeployMosquittoConf: deploy/mosquitto.conf is what mosquitto-config
// writes for the paths deploy/README.md uses (ENDCAP_UPDATE_GOLDEN=1
// rewrites it), so the sample stays true to the generator that
// TestMosquittoConfigRuns runs.
func TestDeployMosquittoConf(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "deploy", "mosquitto.conf")
	want := mosquittoConf(mosquittoSettings{region: "demo", passwords: "/etc/endcap/passwords",
		acl: "/etc/endcap/mosquitto.acl", conf: "/etc/endcap/mosquitto.conf", port: 8883, wsPort: 1884,
		cert: "/etc/endcap/tls/server.pem", key: "/etc/endcap/tls/server-key.pem", data: "/var/lib/mosquitto/"})
	if os.Getenv("ENDCAP_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is not what mosquitto-config writes; run with ENDCAP_UPDATE_GOLDEN=1 to rewrite it.\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
