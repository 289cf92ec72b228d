// Package edge is the in-store node: it opens the region replica, runs
// the sync worker (package replication) and serves the local HTTP API
// that the apps, the wallet page, scripts and tests use. Every write runs
// against the local replica in one SQLite transaction with its outbox
// entry, so the store keeps working with the network down.
//
// edge imports replication, retail and devices, never hub or kiosk-ui.
package edge
