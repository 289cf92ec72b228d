package replication

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// BrokerConfig configures the embedded MQTT broker (mochi-mqtt).
type BrokerConfig struct {
	// Region is the region whose topics the ACL grants (required).
	Region string
	// HubUser is the hub's user name; "" means DefaultHubUser.
	HubUser string

	// TCPAddr is the MQTT TCP listener's address, host:port; port 0 picks
	// a free one (see Broker.TCPAddr). "" means no TCP listener.
	TCPAddr string
	// WSAddr is the MQTT-over-WebSocket listener's address (any path, the
	// "mqtt" subprotocol), for phones' wallet pages. "" means none. It is
	// plain ws:// even when the TCP listener uses TLS: put a TLS-ending
	// proxy in front of it to serve wss://.
	WSAddr string

	// TLSCertFile and TLSKeyFile (PEM), when both set, make the TCP
	// listener TLS only (clients use ssl://; see ClientTLSConfig).
	TLSCertFile, TLSKeyFile string

	// Passwords verifies users. It is used live: users Set or Removed on
	// it later take effect at their next connect.
	Passwords *Passwords
	// PasswordFile, instead of Passwords, names a password file (see
	// LoadPasswords). It is loaded at start, and checked again at every
	// connect: when it changed (hubctl credentials add), the new file is
	// loaded; if it no longer loads, the broker keeps the last good one
	// and logs an error. Connected clients are not affected.
	PasswordFile string
	// AllowAnonymous lets clients that send no user name connect, with the
	// hub's rights: every topic of the region. For local demos only. A
	// client that sends a user name must still give its password.
	AllowAnonymous bool

	// Logger receives refused connects and denied publishes and
	// subscriptions (warnings), and mochi's own messages (its info
	// messages as debug). nil discards them.
	Logger *slog.Logger
}

// BrokerStats are the broker's security counters since it started.
type BrokerStats struct {
	// ConnectsRefused counts CONNECTs refused: no or unknown user, wrong
	// password, a will on a topic the user may not publish to, or a client
	// id in use by another user.
	ConnectsRefused uint64
	// PublishesDenied counts publishes dropped by the ACL.
	PublishesDenied uint64
	// SubscribesDenied counts subscription filters refused by the ACL.
	SubscribesDenied uint64
	// Clients is the number of clients connected now.
	Clients int64
}

// Broker is a running embedded MQTT 3.1.1/5 broker: mochi-mqtt with our
// auth hook, on a TCP and/or a WebSocket listener.
//
// Every client authenticates with a user name and password from the
// password file, and the ACL (see ACL) decides what it may publish and
// subscribe to. A denied publish is acknowledged and dropped, as mosquitto
// does (mochi alone would disconnect an MQTT 3 client for it); a denied
// subscription gets the failure return code 0x80 in its SUBACK (mosquitto
// grants it and then delivers nothing the user may not read). A CONNECT
// with a will on a topic the user may not publish to is refused, and so is
// a client id in use by a client of another user (which would otherwise
// take over that session). Refusals are CONNACK code 5, "not authorised",
// which paho reports as packets.ErrorRefusedNotAuthorised, as mosquitto does.
//
// Retained messages and wills work as usual; they live in memory only, so
// a restarted broker has none, and no sessions either: clients must
// resubscribe and republish their retained state when they reconnect.
// Retained messages never expire (mochi's 24-hour default is lifted).
type Broker struct {
	cfg   BrokerConfig
	acl   ACL
	log   *slog.Logger
	pw    *Passwords
	srv   *mochi.Server
	tcp   *listener
	ws    *listener
	close sync.Once

	connectsRefused, publishesDenied, subscribesDenied atomic.Uint64
}

// connectTimeout bounds how long a new connection may take to send its
// CONNECT (and finish its TLS handshake).
const connectTimeout = 10 * time.Second

// StartBroker starts the embedded broker and returns once its listeners
// are bound. ctx bounds the start only; the broker runs until Close.
func StartBroker(ctx context.Context, cfg BrokerConfig) (*Broker, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidID(cfg.Region); err != nil {
		return nil, fmt.Errorf("start broker: region: %w", err)
	}
	if cfg.HubUser != "" {
		if err := ValidID(cfg.HubUser); err != nil {
			return nil, fmt.Errorf("start broker: hub user: %w", err)
		}
	}
	if cfg.TCPAddr == "" && cfg.WSAddr == "" {
		return nil, errors.New("start broker: no listener: set TCPAddr or WSAddr")
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("start broker: TLS needs both a certificate and a key file")
	}
	if cfg.TLSCertFile != "" && cfg.TCPAddr == "" {
		return nil, errors.New("start broker: TLS is for the TCP listener, and there is none")
	}
	b := &Broker{cfg: cfg, acl: ACL{Region: cfg.Region, HubUser: cfg.HubUser}, log: cfg.Logger}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Passwords != nil && cfg.PasswordFile != "":
		return nil, errors.New("start broker: set Passwords or PasswordFile, not both")
	case cfg.Passwords != nil:
		b.pw = cfg.Passwords
	case cfg.PasswordFile != "":
		pw, err := LoadPasswords(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("start broker: %w", err)
		}
		b.pw = pw
	case cfg.AllowAnonymous:
		b.pw = &Passwords{}
	default:
		return nil, errors.New("start broker: no Passwords or PasswordFile (and not AllowAnonymous): no one could connect")
	}
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" {
		var err error
		if tlsConfig, err = serverTLSConfig(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return nil, fmt.Errorf("start broker: %w", err)
		}
	}

	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumMessageExpiryInterval = 0 // keep retained presence for good, as mosquitto does
	b.srv = mochi.New(&mochi.Options{
		Capabilities: caps,
		InlineClient: true,
		Logger:       slog.New(demoteInfo{b.log.Handler()}).With("component", "mochi"),
	})
	if err := b.srv.AddHook(&authHook{b: b}, nil); err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	fail := func(err error) (*Broker, error) {
		for _, l := range []*listener{b.tcp, b.ws} {
			if l != nil {
				l.ln.Close()
			}
		}
		return nil, fmt.Errorf("start broker: %w", err)
	}
	if cfg.TCPAddr != "" {
		ln, err := net.Listen("tcp", cfg.TCPAddr)
		if err != nil {
			return fail(err)
		}
		proto := "tcp"
		if tlsConfig != nil {
			ln, proto = tls.NewListener(ln, tlsConfig), "ssl"
		}
		b.tcp = newListener("tcp", proto, ln, false)
	}
	if cfg.WSAddr != "" {
		ln, err := net.Listen("tcp", cfg.WSAddr)
		if err != nil {
			return fail(err)
		}
		b.ws = newListener("ws", "ws", ln, true)
	}
	for _, l := range []*listener{b.tcp, b.ws} {
		if l == nil {
			continue
		}
		if err := b.srv.AddListener(l); err != nil {
			return fail(err)
		}
	}
	if err := b.srv.Serve(); err != nil {
		return fail(err)
	}
	b.log.Info("mqtt broker started", "region", cfg.Region, "tcp", b.URL(), "ws", b.WSURL())
	return b, nil
}

// TCPAddr is the TCP listener's address, host:port, or "" if none.
func (b *Broker) TCPAddr() string {
	if b.tcp == nil {
		return ""
	}
	return b.tcp.ln.Addr().String()
}

// WSAddr is the WebSocket listener's address, host:port, or "" if none.
func (b *Broker) WSAddr() string {
	if b.ws == nil {
		return ""
	}
	return b.ws.ln.Addr().String()
}

// URL is the TCP listener's URL for paho: tcp://host:port, or
// ssl://host:port with TLS; "" if there is no TCP listener.
func (b *Broker) URL() string {
	if b.tcp == nil {
		return ""
	}
	return b.tcp.proto + "://" + b.TCPAddr()
}

// WSURL is the WebSocket listener's URL, ws://host:port, or "" if none.
func (b *Broker) WSURL() string {
	if b.ws == nil {
		return ""
	}
	return "ws://" + b.WSAddr()
}

// Stats returns the security counters.
func (b *Broker) Stats() BrokerStats {
	return BrokerStats{
		ConnectsRefused:  b.connectsRefused.Load(),
		PublishesDenied:  b.publishesDenied.Load(),
		SubscribesDenied: b.subscribesDenied.Load(),
		Clients:          atomic.LoadInt64(&b.srv.Info.ClientsConnected),
	}
}

// Server is the mochi server, for hooks and its inline client (enabled),
// e.g. for a hub that runs the broker in-process. The inline client
// bypasses the ACL. A hook added later that implements OnPublished sees
// denied publishes too, marked with pk.Ignore.
func (b *Broker) Server() *mochi.Server { return b.srv }

// Close drops every client's connection, closes the listeners and returns
// when their ports are free, so a broker can start again on the same
// addresses at once. Clients' wills are published as they drop. Close is
// idempotent.
func (b *Broker) Close() error {
	b.close.Do(func() {
		b.srv.Close()
		b.log.Info("mqtt broker stopped", "region", b.cfg.Region)
	})
	return nil
}

// authHook is the broker's authentication and ACL.
type authHook struct {
	mochi.HookBase
	b *Broker
}

func (h *authHook) ID() string { return "endcap-auth" }

func (h *authHook) Provides(b byte) bool {
	switch b {
	case mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnPublish, mochi.OnSessionEstablish:
		return true
	}
	return false
}

// subject is the user whose rights a client has: its user name, or the hub
// for an anonymous client when AllowAnonymous.
func (b *Broker) subject(cl *mochi.Client) string {
	user := string(cl.Properties.Username)
	if user == "" && b.cfg.AllowAnonymous {
		return b.acl.hubUser()
	}
	return user
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	b := h.b
	user := string(pk.Connect.Username)
	refuse := func(reason string) bool {
		b.connectsRefused.Add(1)
		b.log.Warn("mqtt connect refused", "user", user, "client", cl.ID, "remote", cl.Net.Remote, "listener", cl.Net.Listener, "reason", reason)
		return false
	}
	if b.cfg.PasswordFile != "" {
		if changed, err := b.pw.Reload(); err != nil {
			b.log.Error("password file not reloaded; keeping the last good one", "err", err)
		} else if changed {
			b.log.Info("password file reloaded", "file", b.cfg.PasswordFile, "users", len(b.pw.Users()))
		}
	}
	switch {
	case user == "" && !b.cfg.AllowAnonymous:
		return refuse("anonymous (no user name)")
	case user != "" && !b.pw.Verify(user, string(pk.Connect.Password)):
		if !b.pw.Has(user) {
			return refuse("unknown user")
		}
		return refuse("wrong password")
	}
	subject := b.subject(cl)
	if pk.Connect.WillFlag && !b.acl.Allowed(subject, pk.Connect.WillTopic, true) {
		return refuse("will topic not allowed: " + pk.Connect.WillTopic)
	}
	if other, ok := b.srv.Clients.Get(cl.ID); ok && !other.Net.Inline && string(other.Properties.Username) != user {
		return refuse("client id in use by user " + string(other.Properties.Username))
	}
	return true
}

// serverPacketIDStart is where the broker's packet ids for messages to a
// client start. mochi v2.7.9 keeps one in-flight table per client for both
// directions: a SUBSCRIBE whose packet id equals that of a QoS 1 message
// the broker is still delivering to the client (say a retained presence
// sent for the subscription just before) is refused with 0x91 "packet
// identifier in use", and a QoS 1 PUBLISH with such an id drops the
// broker's message from its table. Clients (paho) number from 1, and so
// does mochi; starting mochi's numbers halfway makes the two meet only
// after tens of thousands of messages, and then only if both are in
// flight at that moment.
const serverPacketIDStart = 1 << 15

// OnSessionEstablish starts the client's outgoing packet ids at
// serverPacketIDStart. mochi exports no setter: it sets the unexported
// counter (TestEmbeddedPacketIDs notices if a mochi upgrade renames it),
// or else advances it through NextPacketID, a few at a time.
func (h *authHook) OnSessionEstablish(cl *mochi.Client, _ packets.Packet) {
	if f := reflect.ValueOf(&cl.State).Elem().FieldByName("packetID"); f.IsValid() && f.Kind() == reflect.Uint32 {
		atomic.StoreUint32((*uint32)(unsafe.Pointer(f.UnsafeAddr())), serverPacketIDStart)
		return
	}
	for range 1 << 10 { // ~0.3 ms
		if _, err := cl.NextPacketID(); err != nil {
			return
		}
	}
}

// OnACLCheck decides subscriptions and deliveries. Publishes are decided
// in OnPublish, which can drop a message and still acknowledge it.
func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if write {
		return true
	}
	b := h.b
	if b.acl.Allowed(b.subject(cl), topic, false) {
		return true
	}
	b.subscribesDenied.Add(1)
	b.log.Warn("mqtt subscribe denied", "user", string(cl.Properties.Username), "client", cl.ID, "filter", topic)
	return false
}

func (h *authHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	b := h.b
	if cl.Net.Inline || b.acl.Allowed(b.subject(cl), pk.TopicName, true) {
		return pk, nil
	}
	b.publishesDenied.Add(1)
	b.log.Warn("mqtt publish denied", "user", string(cl.Properties.Username), "client", cl.ID, "topic", pk.TopicName,
		"qos", pk.FixedHeader.Qos, "retain", pk.FixedHeader.Retain)
	return pk, packets.CodeSuccessIgnore // acknowledged, neither retained nor delivered
}

// demoteInfo passes mochi's log records on, its info ones as debug: it
// announces every hook and listener at info.
type demoteInfo struct{ slog.Handler }

func (d demoteInfo) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return d.Handler.Enabled(ctx, l)
}

func (d demoteInfo) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return d.Handler.Handle(ctx, r)
}

func (d demoteInfo) WithAttrs(as []slog.Attr) slog.Handler {
	return demoteInfo{d.Handler.WithAttrs(as)}
}

func (d demoteInfo) WithGroup(name string) slog.Handler {
	return demoteInfo{d.Handler.WithGroup(name)}
}

// listener is a mochi listener on a bound net.Listener, TCP (TLS or not)
// or WebSocket. Unlike mochi's own, it binds before Serve (so a port in use
// is an error from StartBroker and port 0 works), bounds the time to
// CONNECT, and its Close returns only when every connection it accepted is
// closed and handed back.
type listener struct {
	id, proto string
	ln        net.Listener
	ws        bool
	log       *slog.Logger
	httpSrv   *http.Server

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	served chan struct{} // closed when Serve returns
}

var _ listeners.Listener = (*listener)(nil)

func newListener(id, proto string, ln net.Listener, ws bool) *listener {
	return &listener{id: id, proto: proto, ln: ln, ws: ws, conns: map[net.Conn]struct{}{}, served: make(chan struct{})}
}

func (l *listener) ID() string       { return l.id }
func (l *listener) Address() string  { return l.ln.Addr().String() }
func (l *listener) Protocol() string { return l.proto }

func (l *listener) Init(log *slog.Logger) error {
	l.log = log
	return nil
}

// track registers a new connection, or reports false once closed.
func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	return true
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.wg.Done()
}

func (l *listener) serveConn(establish listeners.EstablishFn, raw, c net.Conn) {
	defer l.untrack(raw)
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(connectTimeout)) // mochi sets the keepalive deadline after CONNECT
	if err := establish(l.id, c); err != nil && !errors.Is(err, io.EOF) {
		l.log.Debug("mqtt connection ended", "remote", raw.RemoteAddr().String(), "err", err)
	}
}

func (l *listener) Serve(establish listeners.EstablishFn) {
	defer close(l.served)
	if l.ws {
		l.serveWS(establish)
		return
	}
	for {
		c, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("mqtt accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !l.track(c) {
			c.Close()
			continue
		}
		go l.serveConn(establish, c, c)
	}
}

var wsUpgrader = websocket.Upgrader{
	Subprotocols: []string{"mqtt"},
	CheckOrigin:  func(*http.Request) bool { return true }, // wallet pages are served from anywhere; auth is MQTT's
}

func (l *listener) serveWS(establish listeners.EstablishFn) {
	l.mu.Lock()
	l.httpSrv = &http.Server{
		ReadHeaderTimeout: connectTimeout,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := wsUpgrader.Upgrade(w, r, nil)
			if err != nil {
				return // Upgrade answered the request
			}
			raw := ws.UnderlyingConn()
			if !l.track(raw) {
				raw.Close()
				return
			}
			l.serveConn(establish, raw, &wsConn{Conn: raw, ws: ws})
		}),
	}
	srv, closed := l.httpSrv, l.closed
	l.mu.Unlock()
	if closed {
		return
	}
	_ = srv.Serve(l.ln) // returns when Close closes the server
}

// Close stops accepting, closes every connection and waits for their
// clients to end. It returns once the port is free: a listening socket is
// closed only when the Accept pending on it returns, so it waits for Serve
// to return too (mochi starts Serve for every listener before Close can be
// called).
//
// It does not call closeClients (mochi's closeListenerClients): in mochi
// v2.7.9 that takes the clients' read lock twice (Clients.GetByListener
// calls Len), and deadlocks when a client disconnecting at the same moment
// waits for the write lock in between. Closing the connections ends those
// clients all the same, without the DISCONNECT packet that MQTT 3.1.1 does
// not have anyway.
func (l *listener) Close(_ listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	srv := l.httpSrv
	l.mu.Unlock()
	if srv != nil {
		srv.Close() // closes l.ln; hijacked (WebSocket) connections are ours
	}
	l.ln.Close()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	<-l.served
}

// wsConn is an MQTT byte stream over WebSocket binary messages.
type wsConn struct {
	net.Conn // the underlying connection, for addresses, deadlines and Close
	ws       *websocket.Conn
	r        io.Reader // the current message
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			kind, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if kind != websocket.BinaryMessage {
				return 0, errors.New("websocket: MQTT needs binary messages")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
