// Package retail is Endcap's domain: the records a retail region keeps
// (customers, stores, clerks, products, inventory, orders, returns, wish
// lists, promotions, offers, coupons, service contacts, visits, carts), the
// SQLite schema that holds them, and the mutations that change them.
//
// A mutation means the same thing on every node: Apply is deterministic (it
// reads no clock, no randomness and nothing outside the transaction it is
// given), so the hub's raft state machine and every edge replica that apply
// the same log hold the same bytes (see Dump).
//
// Mutations come in two classes. A Request can still be refused: Apply
// rejects it with a reason a clerk can read and writes nothing but the
// record of the rejection. A Fact already happened in the physical world:
// Apply never refuses it for breaking a business rule; it applies it and
// flags an Exception for people to resolve.
//
// This package imports no other package of Endcap's and knows no node,
// transport, hardware or screen.
package retail
