// Package mqtttest starts real MQTT brokers for tests: the embedded broker
// (replication.StartBroker) and a mosquitto process, each on free loopback
// ports and stopped by t.Cleanup.
//
// It imports replication, so tests inside package replication that use it
// must be written as package replication_test. It is for tests only:
// nothing outside _test.go files may import it.
package mqtttest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/endcap/endcap/replication"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// chosen below the kernel's ephemeral range. A port in that range ("port
// 0") can be taken, while a broker restarts, as the local port of any
// outgoing connection on the machine (even a client's reconnect to that
// very port), and the restart then fails with "address already in use".
// Use FreePort, not "127.0.0.1:0", for a broker a test restarts.
func FreePort(t testing.TB) int {
	t.Helper()
	if low := ephemeralLow(); low > minPort+100 {
		for range 200 {
			port := minPort + rand.IntN(low-minPort)
			if !reserve(port) {
				continue
			}
			if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				ln.Close()
				return port
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// handedOut holds the ports FreePort returned in this process, so that
// it never returns one twice (tests keep them for brokers they restart).
// It is the package's only state, and process-wide by nature.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

func reserve(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[port] {
		return false
	}
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	handedOut.ports[port] = true
	return true
}

// minPort is the lowest port FreePort picks, above most services' ports.
const minPort = 10000

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768 // Linux's default; elsewhere the ranges start higher
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return low
}

// FreeAddr returns "127.0.0.1:PORT" for a FreePort.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// StartEmbedded starts the embedded broker with cfg and closes it at the
// end of the test. Empty TCPAddr and WSAddr default to a FreeAddr and ""
// (no WebSocket listener); a nil Logger logs to t. To restart it, Close it
// and StartBroker again with TCPAddr and WSAddr set to its addresses.
func StartEmbedded(t testing.TB, cfg replication.BrokerConfig) *replication.Broker {
	t.Helper()
	if cfg.TCPAddr == "" && cfg.WSAddr == "" {
		cfg.TCPAddr = FreeAddr(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = TestLogger(t)
	}
	b, err := replication.StartBroker(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// WaitListening polls until addr accepts a TCP connection, for up to
// timeout; it reports whether it did.
func WaitListening(addr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
