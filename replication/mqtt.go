package replication

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// MQTTConfig configures a connection to the region's broker.
type MQTTConfig struct {
	// URL is tcp://host:port, ssl://host:port (TLS) or ws://host:port/path.
	URL      string
	ClientID string
	Username string
	Password string
	// TLS verifies the broker's certificate for ssl:// URLs (see
	// ClientTLSConfig); nil uses the system roots.
	TLS *tls.Config
	// Will is published by the broker, retained, when the connection
	// drops without a clean disconnect.
	WillTopic   string
	WillPayload []byte
	// OnConnect runs after every (re)connect, once the subscriptions are
	// back in place. It must not block for long.
	OnConnect func()
	// KeepAlive; 0 means 10 s, so a dead link is noticed quickly.
	KeepAlive time.Duration
	Logger    *slog.Logger
}

// LoadSecrets fills in what a command line gives of the connection's
// secrets: the password from passwordFile (trimmed) or else the
// environment variable env, and the CA certificate that verifies the
// broker (caFile, for ssl:// URLs). Empty names are skipped.
func (c *MQTTConfig) LoadSecrets(env, passwordFile, caFile string) error {
	c.Password = os.Getenv(env)
	if passwordFile != "" {
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return err
		}
		c.Password = strings.TrimSpace(string(b))
	}
	if caFile != "" {
		tc, err := ClientTLSConfig(caFile)
		if err != nil {
			return fmt.Errorf("broker CA: %w", err)
		}
		c.TLS = tc
	}
	return nil
}

// ErrOffline: not connected to the broker now. Callers keep their data
// and try again later; nothing is lost.
var ErrOffline = errors.New("not connected to the broker")

// Conn is a QoS 1 MQTT connection with clean sessions: it reconnects
// with backoff forever, and on every connect it re-subscribes and calls
// OnConnect, where the protocol resends what is unacknowledged. Handlers
// run on paho's delivery goroutine, in order, and must not block.
type Conn struct {
	cfg    MQTTConfig
	client mqtt.Client
	log    *slog.Logger

	mu      sync.Mutex
	subs    map[string]func(topic string, payload []byte)
	lastErr error

	connects atomic.Int64
	cancel   context.CancelFunc
	done     chan struct{}
}

// Dial starts connecting to the broker in the background and returns at
// once: an edge works offline, so a broker that is down is not an error.
// Use WaitConnected to wait, Status to show how it is going.
func Dial(ctx context.Context, cfg MQTTConfig) *Conn {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 10 * time.Second
	}
	c := &Conn{cfg: cfg, log: cfg.Logger, subs: map[string]func(string, []byte){}, done: make(chan struct{})}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(2 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetWriteTimeout(5 * time.Second).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(cfg.KeepAlive).
		SetOrderMatters(true).
		SetStore(mqtt.NewOrderedMemoryStore()).
		SetOnConnectHandler(func(mqtt.Client) { go c.onConnect() }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.setErr(err)
			c.log.Warn("mqtt connection lost", "broker", cfg.URL, "err", err)
		}).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { c.deliver(m.Topic(), m.Payload()) })
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	if cfg.WillTopic != "" {
		opts.SetBinaryWill(cfg.WillTopic, cfg.WillPayload, 1, true)
	}
	c.client = mqtt.NewClient(opts)
	ctx, c.cancel = context.WithCancel(ctx)
	go c.connectLoop(ctx)
	return c
}

// connectLoop makes the first connection, retrying with backoff; after
// that paho's auto-reconnect takes over.
func (c *Conn) connectLoop(ctx context.Context) {
	defer close(c.done)
	wait := 100 * time.Millisecond
	for {
		tok := c.client.Connect()
		ok := tok.WaitTimeout(10 * time.Second)
		err := tok.Error()
		if ok && err == nil {
			return
		}
		if err == nil {
			err = errors.New("connect timed out")
		}
		c.setErr(err)
		c.log.Warn("mqtt connect failed", "broker", c.cfg.URL, "user", c.cfg.Username, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

func (c *Conn) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

func (c *Conn) onConnect() {
	c.setErr(nil)
	c.connects.Add(1)
	c.mu.Lock()
	filters := make([]string, 0, len(c.subs))
	for f := range c.subs {
		filters = append(filters, f)
	}
	c.mu.Unlock()
	for _, f := range filters {
		// paho may call OnConnect a moment before it reports itself
		// connected: retry briefly rather than lose the subscription.
		var err error
		for try := 0; try < 250; try++ {
			if err = c.subscribe(f); err == nil || c.client.IsConnectionOpen() {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			c.log.Warn("mqtt resubscribe failed", "filter", f, "err", err)
		}
	}
	c.log.Info("mqtt connected", "broker", c.cfg.URL, "client", c.cfg.ClientID)
	if c.cfg.OnConnect != nil {
		c.cfg.OnConnect()
	}
}

func (c *Conn) deliver(topic string, payload []byte) {
	c.mu.Lock()
	var h func(string, []byte)
	for f, fn := range c.subs {
		if topicMatches(f, topic) {
			h = fn
			break
		}
	}
	c.mu.Unlock()
	if h != nil {
		h(topic, payload)
	}
}

func (c *Conn) subscribe(filter string) error {
	tok := c.client.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) { c.deliver(m.Topic(), m.Payload()) })
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("subscribe %s: timed out", filter)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for _, code := range st.Result() {
			if code == 0x80 {
				return fmt.Errorf("subscribe %s: refused by the broker", filter)
			}
		}
	}
	return nil
}

// Subscribe registers h for filter (QoS 1), now if connected and again
// on every reconnect. h gets the topic and payload and must not block.
func (c *Conn) Subscribe(filter string, h func(topic string, payload []byte)) error {
	c.mu.Lock()
	c.subs[filter] = h
	c.mu.Unlock()
	if !c.client.IsConnectionOpen() {
		return nil
	}
	return c.subscribe(filter)
}

// Unsubscribe removes filter.
func (c *Conn) Unsubscribe(filter string) {
	c.mu.Lock()
	delete(c.subs, filter)
	c.mu.Unlock()
	if c.client.IsConnectionOpen() {
		c.client.Unsubscribe(filter).WaitTimeout(5 * time.Second)
	}
}

// Publish sends payload at QoS 1 and waits for the broker's PUBACK. It
// fails at once with ErrOffline when not connected. A nil error means the
// broker has it, not that anyone processed it: the protocol's acks say that.
func (c *Conn) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	if !c.client.IsConnectionOpen() {
		return ErrOffline
	}
	tok := c.client.Publish(topic, 1, retained, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return fmt.Errorf("publish %s: %w (no PUBACK in 10s)", topic, ErrOffline)
	}
}

// Connected reports whether the connection is up now.
func (c *Conn) Connected() bool { return c.client.IsConnectionOpen() }

// Connects counts successful connects (1 after the first).
func (c *Conn) Connects() int64 { return c.connects.Load() }

// LastError is why the last connect failed or the connection dropped;
// nil while connected.
func (c *Conn) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// WaitConnected waits until connected or ctx ends.
func (c *Conn) WaitConnected(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !c.client.IsConnectionOpen() {
		select {
		case <-ctx.Done():
			if err := c.LastError(); err != nil {
				return fmt.Errorf("%w: %v", ctx.Err(), err)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Close disconnects cleanly (no will is published).
func (c *Conn) Close() {
	c.cancel()
	<-c.done
	c.client.Disconnect(250)
}

// topicMatches reports whether an MQTT filter matches a topic.
func topicMatches(filter, topic string) bool {
	for {
		f, frest, fmore := cut(filter)
		if f == "#" {
			return true
		}
		t, trest, tmore := cut(topic)
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			return fmore == tmore
		}
		filter, topic = frest, trest
	}
}

func cut(s string) (head, rest string, more bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
