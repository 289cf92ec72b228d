// Package e2e holds the end-to-end tests of edge-hub replication: real
// hub nodes (processes or in-process), real brokers (the embedded one and
// mosquitto), real edges with SQLite replicas on disk. It has no code
// outside its tests.
package e2e
