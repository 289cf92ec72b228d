package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

// Config configures a Node.
type Config struct {
	Region  string
	ID      string // the edge's id: its broker user and mutation origin
	DataDir string // holds replica.db
	// MQTT is the broker connection (URL, Password, TLS); empty URL: offline only.
	MQTT    replication.MQTTConfig
	HubURLs []string // hub nodes' HTTP APIs, for snapshot bootstrap
	// HTTPAddr is the local API's address; empty: no API.
	HTTPAddr   string
	AckTimeout time.Duration
	// Durability of the replica; the zero value is FULL (a sale survives
	// a power cut).
	Durability retail.Durability
	Progress   func(done, total int64)
	Logger     *slog.Logger
	// StoreID is the store this edge serves; "" means the edge id.
	StoreID string
	// CouponKey signs and checks coupon codes; the same for every store of
	// the region (at least 16 bytes). Empty: the store operations are off
	// (sync only).
	CouponKey []byte
}

// Node is a running edge.
type Node struct {
	cfg      Config
	log      *slog.Logger
	replica  *replication.Replica
	sync     *replication.Edge
	store    *Store
	devices  atomic.Pointer[Devices] // set by StartDevices
	sessions sessions                // clerks signed in on the local API
	http     *http.Server
	ln       net.Listener
}

// Start opens the replica, starts the sync worker and the local API.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("edge", cfg.ID)}
	var err error
	n.replica, err = replication.OpenReplica(ctx, replication.ReplicaConfig{
		Path: filepath.Join(cfg.DataDir, "replica.db"), Region: cfg.Region, Edge: cfg.ID, Logger: n.log, Durability: cfg.Durability})
	if err != nil {
		return nil, err
	}
	if cfg.MQTT.URL != "" {
		n.sync, err = replication.StartEdge(context.WithoutCancel(ctx), replication.EdgeConfig{
			Replica: n.replica, MQTT: cfg.MQTT, HubURLs: cfg.HubURLs, AckTimeout: cfg.AckTimeout, Progress: cfg.Progress, Logger: n.log})
		if err != nil {
			n.replica.Close()
			return nil, err
		}
	}
	if len(cfg.CouponKey) > 0 {
		if cfg.StoreID == "" {
			cfg.StoreID = cfg.ID
		}
		sc := StoreConfig{StoreID: cfg.StoreID, Replica: n.replica, CouponKey: cfg.CouponKey, Logger: n.log}
		if n.sync != nil {
			sc.Wallet = walletTopic{n.sync}
		}
		if n.store, err = NewStore(sc); err != nil {
			n.Close()
			return nil, err
		}
	}
	if cfg.HTTPAddr != "" {
		if n.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			n.Close()
			return nil, fmt.Errorf("edge: http %s: %w", cfg.HTTPAddr, err)
		}
		n.http = &http.Server{Handler: n.routes(), ReadHeaderTimeout: 10 * time.Second}
		go n.http.Serve(n.ln)
	}
	return n, nil
}

// Bootstrap installs a hub snapshot now: for a new edge, so it starts
// from the region's current state instead of replaying the whole log.
func (n *Node) Bootstrap(ctx context.Context) error {
	if n.sync == nil {
		return errors.New("edge: no broker configured")
	}
	return n.sync.Bootstrap(ctx)
}

// Store is the node's store operations (nil without a coupon key).
func (n *Node) Store() *Store { return n.store }

// walletTopic publishes to a shopper's retained wallet topic.
type walletTopic struct{ sync *replication.Edge }

func (w walletTopic) PublishWallet(ctx context.Context, customerID string, payload []byte) error {
	return w.sync.PublishWallet(ctx, customerID, payload)
}

// Replica is the node's replica.
func (n *Node) Replica() *replication.Replica { return n.replica }

// Sync is the node's sync worker (nil when offline only).
func (n *Node) Sync() *replication.Edge { return n.sync }

// HTTPAddr is the local API's address.
func (n *Node) HTTPAddr() string {
	if n.ln == nil {
		return ""
	}
	return n.ln.Addr().String()
}

// Close stops the API, the sync worker and closes the replica.
func (n *Node) Close() error {
	if n.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.http.Shutdown(ctx)
		cancel()
	}
	if n.sync != nil {
		n.sync.Close()
	}
	return n.replica.Close()
}
