// Package hub is the regional hub node: a hashicorp/raft group (3 or 5
// nodes) whose replicated state machine is a SQLite database holding the
// region (package retail), plus the operator HTTP API, membership, and the
// leader's group commit.
//
// The hub is the single ordered log that decides the global rules: a
// coupon is redeemed once across all stores, stock across channels, returns
// against what was paid. Every committed mutation gets a hub sequence
// number and its row changes go to the change log, which edges follow.
//
// hub imports retail and never edge, devices or kiosk-ui. See DESIGN.md.
package hub
