// Package replication is the sync protocol between store edges and the
// regional hub over MQTT: topics, versioned envelopes, the edge's replica
// (outbox, change feed, rebase, catch-up, bootstrap, presence), the hub's
// bridge (uploads in, acks and the change feed out), and the embedded
// broker with its credentials and ACLs.
//
// replication imports retail and never edge, hub, devices or kiosk-ui: the
// two nodes meet only through what is defined here. See docs/protocol.md.
package replication
