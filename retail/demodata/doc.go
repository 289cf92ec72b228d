// Package demodata generates a seeded, realistic demo region: stores and a
// distribution centre with their clerks, a product catalogue with barcodes
// and complements, stock, promotions of every type and audience, and
// customers with a history in every channel — till sales, web, phone and
// kiosk orders (shipped or picked up, fulfilled or cancelled), offers and
// coupons (redeemed, ignored, expired), returns with and without a receipt
// (including serial returners), service contacts, store visits, wish lists
// and carts abandoned at every checkout step — plus the exceptions such a
// history raises, some of them resolved by managers.
//
// # Through Apply only
//
// Generate writes nothing itself: every row comes from a mutation passed to
// retail.Apply, so the demo data obeys exactly the rules live data does.
// Mutations have origin "demo" and sequence numbers 1, 2, 3, …, and are
// committed about 1000 to a transaction. The region's policies (return
// window 30 days, at most 3 returns without an order in 45 days) are set
// with set_setting like any other change. The few rejections and flagged
// exceptions in the result are deliberate (a shopper reusing a coupon, a
// serial returner over the receipt-less cap, a till sale of stock the system
// thought was gone): a real region has them too. Stats counts them, and
// counts as Unexpected every result the generator's own model of the region
// did not predict; that is always zero unless retail's rules changed.
//
// # Deterministic
//
// The same Config gives the same mutations and so a byte-identical database
// (the same retail.Checksum): all randomness comes from math/rand/v2 PCG
// sources seeded from Config.Seed (the catalogue from one stream, each
// customer from a stream of her own), entity ids count up ("cust-0000001",
// "ord-00000001", "SKU-00001"), and timestamps come from a simulated
// timeline — by default the two years ending 2026-11-01 00:00 UTC — never
// from the clock. The region went live at the start of the timeline; half
// of the customers were imported then from an older system (their "since"
// is earlier), the others join during it. Nothing new starts in the last
// two days, so nothing runs past the end; orders placed just before it are
// still reserved, as in a live region.
//
// # A million customers
//
// Generation streams: customers are made one after another, each with her
// whole history (in time order) before the next, so memory holds one
// customer, the catalogue, a stock ledger per location and product, and a
// small ring of coupons for one shopper to use another's. A referral names
// an earlier customer by index (ids are a function of the index), so no list
// of customers is kept. Because histories are applied customer by customer,
// HLCs increase within a customer's history but not across customers; Apply
// never requires them to.
//
// retail.Apply is the bottleneck (it takes over 90% of the time, at 5,000
// to 8,000 mutations a second on two cores), so the default history
// shrinks for large regions: five orders per customer on average up to
// 200,000 customers (about 21 mutations each), and beyond that as many as
// keep the region at about a million orders. A million customers then get
// one order each on average (about 5 mutations each, 5.1 million in all):
// 12 to 18 minutes on two cores, depending on what else runs, a 1.4 GiB
// file, and about 530 MB of memory, half of it SQLite's page cache.
// Config.OrdersPerCustomer overrides the default. Everything else a
// customer does (visits, carts, offers, returns, contacts) scales with her
// orders.
//
// # Clerks and PINs
//
// Every store has a manager ("clerk-S01-01") and associates ("clerk-S01-02",
// …); the distribution centre's associates take phone orders and service
// calls; "clerk-admin" is region staff. Every demo clerk's PIN is "1234".
// The PIN hashes are in the format retail.HashPIN makes, but with a salt
// derived from the seed (so the database is deterministic) and 1000 PBKDF2
// iterations (the least retail accepts) instead of HashPIN's 120,000: they
// are demo credentials, not secrets.
package demodata
