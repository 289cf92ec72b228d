package hub

import (
	"github.com/endcap/endcap/replication"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one node's Prometheus metrics, in a registry of its own (no
// global state: several nodes can run in one process).
type metrics struct {
	registry      *prometheus.Registry
	commitLatency prometheus.Histogram
	batchSize     prometheus.Histogram
	staleBatches  prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.commitLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "endcap_hub_commit_seconds", Help: "Time from a write reaching the leader to its result (committed and applied).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "endcap_hub_batch_mutations", Help: "Mutations per raft entry (group commit).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12)})
	m.staleBatches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "endcap_hub_stale_batches_total", Help: "Batches executed again because their effects entry met a state that had moved (a leader change)."})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	stat := func(key string) func() float64 {
		return func() float64 {
			var v float64
			for _, c := range n.raft.Stats()[key] {
				if c < '0' || c > '9' {
					break
				}
				v = v*10 + float64(c-'0')
			}
			return v
		}
	}
	m.registry.MustRegister(m.commitLatency, m.batchSize, m.staleBatches,
		gauge("endcap_hub_raft_state", "Raft state: 0 follower, 1 candidate, 2 leader, 3 shutdown.", func() float64 {
			return float64(map[raft.RaftState]int{raft.Follower: 0, raft.Candidate: 1, raft.Leader: 2, raft.Shutdown: 3}[n.raft.State()])
		}),
		gauge("endcap_hub_raft_term", "Current raft term.", stat("term")),
		gauge("endcap_hub_raft_commit_index", "Raft commit index.", stat("commit_index")),
		gauge("endcap_hub_applied_index", "Last raft index applied to the state database.", func() float64 { return float64(n.fsm.AppliedIndex()) }),
		gauge("endcap_hub_seq", "Last hub sequence number.", func() float64 { return float64(n.fsm.HubSeq()) }),
		gauge("endcap_hub_change_log_entries", "Change-log entries retained.", func() float64 {
			return float64(min(n.fsm.HubSeq(), n.cfg.RetainChanges))
		}),
		gauge("endcap_hub_edges_online", "Store edges whose presence says online.", func() float64 {
			v := 0.0
			if n.bridge != nil {
				for _, s := range n.bridge.Stores() {
					if s.Online {
						v++
					}
				}
			}
			return v
		}),
		gauge("endcap_hub_edges_max_behind", "The most hub sequences any online edge has yet to apply.", func() float64 {
			v := 0.0
			if n.bridge != nil {
				for _, s := range n.bridge.Stores() {
					if s.Online {
						v = max(v, float64(s.Behind))
					}
				}
			}
			return v
		}),
		bridgeCounter("endcap_hub_bridge_uploads_total", "Upload messages from edges handled while leader.", n, func(s replication.BridgeStats) int64 { return s.Uploads }),
		bridgeCounter("endcap_hub_bridge_feed_entries_total", "Change-log entries published on the feed.", n, func(s replication.BridgeStats) int64 { return s.Published }),
		bridgeCounter("endcap_hub_bridge_dropped_total", "MQTT messages dropped: malformed, oversized, unknown version or kind.", n, func(s replication.BridgeStats) int64 { return s.Dropped }),
		bridgeCounter("endcap_hub_bridge_upload_gaps_total", "Uploads that started past an edge's next expected sequence.", n, func(s replication.BridgeStats) int64 { return s.Gaps }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "endcap_hub_mutations_applied_total", Help: "Mutations applied by this node's state machine since start."},
			func() float64 { return float64(n.fsm.MutationsApplied()) }),
	)
	return m
}

func bridgeCounter(name, help string, n *Node, f func(replication.BridgeStats) int64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
		if n.bridge == nil {
			return 0
		}
		return float64(f(n.bridge.Stats()))
	})
}
