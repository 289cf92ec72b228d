package mqtttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/endcap/endcap/replication"
)

// MosquittoConfig configures a mosquitto process for a test.
type MosquittoConfig struct {
	// Region and HubUser feed the ACL (replication.MosquittoACL); Region
	// is required with a PasswordFile, HubUser "" means the default.
	Region, HubUser string
	// PasswordFile, in mosquitto's format (replication.Passwords.Save),
	// turns authentication on, with an acl_file rendered for the users in
	// it at start. "" allows anonymous clients everything (no ACL).
	PasswordFile string
	// TLSCertFile and TLSKeyFile, when set, make the TCP listener TLS only.
	TLSCertFile, TLSKeyFile string
	// WebSockets adds a WebSocket listener (WSURL).
	WebSockets bool
}

// Mosquitto is a mosquitto process listening on loopback ports.
type Mosquitto struct {
	t       testing.TB
	bin     string
	dir     string
	conf    string
	logFile string
	outFile string
	addr    string
	wsAddr  string
	tls     bool
	cfg     *MosquittoConfig // nil for StartMosquittoConf

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// mosquittoBin finds the mosquitto binary, or skips the test: only its
// absence is a reason to skip (make deps installs it, so CI has it).
func mosquittoBin(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	t.Skip("mosquitto is not installed (/usr/sbin/mosquitto): run 'make deps' or apt-get install mosquitto")
	return ""
}

// StartMosquitto starts mosquitto with cfg on free loopback ports, waits
// until it accepts connections, and stops it at the end of the test. Its
// configuration, ACL, log and any persistence live in a t.TempDir. It
// skips the test only when mosquitto is not installed.
func StartMosquitto(t testing.TB, cfg MosquittoConfig) *Mosquitto {
	t.Helper()
	bin := mosquittoBin(t)
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		addr, wsAddr := FreeAddr(t), ""
		if cfg.WebSockets {
			wsAddr = FreeAddr(t)
		}
		m, err := newMosquitto(t, bin, dir, mosquittoConf(t, cfg, dir, addr, wsAddr), addr, wsAddr, cfg.TLSCertFile != "")
		if err == nil {
			m.cfg = &cfg
			return m
		}
		// Another process may have taken a free port in the meantime.
		if attempt == 3 || !strings.Contains(m.Log(), "Address already in use") {
			t.Fatalf("%v\n%s", err, m.Log())
		}
		m.Stop()
		os.Remove(m.outFile)
		os.Remove(m.logFile)
	}
}

func mosquittoConf(t testing.TB, cfg MosquittoConfig, dir, addr, wsAddr string) string {
	t.Helper()
	var conf strings.Builder
	conf.WriteString("# mqtttest.StartMosquitto\n")
	if os.Geteuid() == 0 {
		// As root, mosquitto drops to the mosquitto user, which cannot
		// read or write this root-owned temp dir.
		conf.WriteString("user root\n")
	}
	fmt.Fprintf(&conf, "log_dest file %s\n", filepath.Join(dir, "mosquitto.log")) // stdout is buffered until exit
	conf.WriteString("log_type all\nconnection_messages true\npersistence false\nset_tcp_nodelay true\nper_listener_settings false\n")
	if cfg.PasswordFile != "" {
		pw, err := replication.LoadPasswords(cfg.PasswordFile)
		if err != nil {
			t.Fatalf("mosquitto: %v", err)
		}
		aclFile := filepath.Join(dir, "mosquitto.acl")
		if err := writeACL(aclFile, cfg, pw); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "allow_anonymous false\npassword_file %s\nacl_file %s\n", cfg.PasswordFile, aclFile)
	} else {
		conf.WriteString("allow_anonymous true\n")
	}
	fmt.Fprintf(&conf, "\nlistener %s 127.0.0.1\n", portOf(addr))
	if cfg.TLSCertFile != "" {
		fmt.Fprintf(&conf, "certfile %s\nkeyfile %s\n", cfg.TLSCertFile, cfg.TLSKeyFile)
	}
	if wsAddr != "" {
		// Without socket_domain ipv4 the websocket listener ignores the
		// bind address.
		fmt.Fprintf(&conf, "\nlistener %s 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n", portOf(wsAddr))
	}
	return conf.String()
}

// StartMosquittoConf runs mosquitto with a configuration the caller wrote
// (e.g. by hubctl mosquitto-config), which must listen on addr, and on
// wsAddr unless "" (tls: addr's listener uses TLS). Its output is
// captured for Log; for a log file too, the conf should say log_dest file.
func StartMosquittoConf(t testing.TB, conf, addr, wsAddr string, tls bool) *Mosquitto {
	t.Helper()
	m, err := newMosquitto(t, mosquittoBin(t), t.TempDir(), conf, addr, wsAddr, tls)
	if err != nil {
		t.Fatalf("%v\n%s", err, m.Log())
	}
	return m
}

// newMosquitto writes conf into dir and starts mosquitto with it; on an
// error, m is still there for its Log.
func newMosquitto(t testing.TB, bin, dir, conf, addr, wsAddr string, tls bool) (*Mosquitto, error) {
	t.Helper()
	m := &Mosquitto{t: t, bin: bin, dir: dir, addr: addr, wsAddr: wsAddr, tls: tls,
		conf:    filepath.Join(dir, "mosquitto.conf"),
		logFile: filepath.Join(dir, "mosquitto.log"),
		outFile: filepath.Join(dir, "mosquitto.out")}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		return m, err
	}
	t.Cleanup(m.Stop)
	return m, m.start()
}

func writeACL(path string, cfg MosquittoConfig, pw *replication.Passwords) error {
	return os.WriteFile(path, []byte(replication.MosquittoACL(cfg.Region, cfg.HubUser, pw.Users())), 0o600)
}

// Reload makes mosquitto reread its password file, with the ACL rewritten
// for the users now in it (SIGHUP), and waits until it has. Use it after
// changing the PasswordFile of a StartMosquitto broker.
func (m *Mosquitto) Reload() {
	m.t.Helper()
	m.mu.Lock()
	cmd := m.cmd
	m.mu.Unlock()
	if cmd == nil {
		m.t.Fatal("reload: mosquitto is not running")
	}
	if m.cfg != nil && m.cfg.PasswordFile != "" {
		pw, err := replication.LoadPasswords(m.cfg.PasswordFile)
		if err != nil {
			m.t.Fatalf("reload: %v", err)
		}
		if err := writeACL(filepath.Join(m.dir, "mosquitto.acl"), *m.cfg, pw); err != nil {
			m.t.Fatal(err)
		}
	}
	before := strings.Count(m.Log(), "Reloading config")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		m.t.Fatalf("reload: %v", err)
	}
	// mosquitto is single-threaded: once it logs the reload, connections
	// that come after see the new files.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(m.Log(), "Reloading config") == before {
		if time.Now().After(deadline) {
			m.t.Fatalf("reload: mosquitto did not log it within 10s\n%s", m.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func portOf(addr string) string {
	return addr[strings.LastIndexByte(addr, ':')+1:]
}

// start runs the process and waits until its ports accept connections.
func (m *Mosquitto) start() error {
	out, err := os.OpenFile(m.outFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()

	deadline := time.Now().Add(15 * time.Second)
	for _, a := range []string{m.addr, m.wsAddr} {
		if a == "" {
			continue
		}
		for !WaitListening(a, 50*time.Millisecond) {
			select {
			case <-exited:
				return fmt.Errorf("mosquitto exited at start (%v)", cmd.ProcessState)
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("mosquitto not listening on %s after 15s", a)
			}
		}
	}
	return nil
}

// Addr is the TCP listener's host:port.
func (m *Mosquitto) Addr() string { return m.addr }

// URL is the TCP listener's URL for paho: tcp:// or ssl:// with TLS.
func (m *Mosquitto) URL() string {
	if m.tls {
		return "ssl://" + m.addr
	}
	return "tcp://" + m.addr
}

// WSAddr is the WebSocket listener's host:port, or "" if none.
func (m *Mosquitto) WSAddr() string { return m.wsAddr }

// WSURL is the WebSocket listener's URL, or "" if none.
func (m *Mosquitto) WSURL() string {
	if m.wsAddr == "" {
		return ""
	}
	return "ws://" + m.wsAddr
}

// Stop terminates mosquitto (SIGTERM, then SIGKILL after 5 s) and waits
// for it to exit. It is idempotent, and t.Cleanup calls it.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart stops mosquitto and starts it again with the same configuration
// on the same ports (it has no persistence: retained messages and sessions
// are gone), and waits until it accepts connections.
func (m *Mosquitto) Restart() {
	m.t.Helper()
	m.Stop()
	if err := m.start(); err != nil {
		m.t.Fatalf("restart: %v\n%s", err, m.Log())
	}
}

// Log returns mosquitto's log and output so far, for failure messages.
func (m *Mosquitto) Log() string {
	var b strings.Builder
	for _, f := range []string{m.outFile, m.logFile} {
		if data, err := os.ReadFile(f); err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), data)
		}
	}
	return b.String()
}
