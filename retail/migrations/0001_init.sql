-- Endcap region schema, version 1.
-- Money is INTEGER cents; times are INTEGER unix milliseconds taken from the
-- mutation's hybrid logical clock, never from the applying node's clock, so
-- that every node that applies the same log writes the same bytes.
-- Tables are STRICT so a value of the wrong type is an error, not a silent
-- conversion that could differ between nodes.

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

INSERT INTO settings(key, value) VALUES
  ('return_window_days', '30'),
  ('receiptless_cap_count', '3'),
  ('receiptless_cap_days', '45');

CREATE TABLE stores (
  id         TEXT PRIMARY KEY,
  kind       TEXT NOT NULL CHECK (kind IN ('store', 'dc')),
  name       TEXT NOT NULL,
  region     TEXT NOT NULL,
  address    TEXT NOT NULL DEFAULT '',
  timezone   TEXT NOT NULL DEFAULT 'UTC',
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE clerks (
  id         TEXT PRIMARY KEY,
  store_id   TEXT REFERENCES stores(id),
  name       TEXT NOT NULL,
  role       TEXT NOT NULL CHECK (role IN ('associate', 'manager', 'admin')),
  pin_hash   TEXT NOT NULL,
  active     INTEGER NOT NULL CHECK (active IN (0, 1)),
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE customers (
  id             TEXT PRIMARY KEY,
  name           TEXT NOT NULL,
  email          TEXT NOT NULL DEFAULT '',
  phone          TEXT NOT NULL DEFAULT '',
  loyalty_card   TEXT UNIQUE,
  since          INTEGER NOT NULL,
  acquired_via   TEXT NOT NULL CHECK (acquired_via IN ('walk_in', 'referral', 'campaign', 'web', 'phone')),
  acquired_by    TEXT NOT NULL DEFAULT '',
  acquired_store TEXT REFERENCES stores(id),
  home_store     TEXT REFERENCES stores(id),
  contact_email  INTEGER NOT NULL CHECK (contact_email IN (0, 1)),
  contact_sms    INTEGER NOT NULL CHECK (contact_sms IN (0, 1)),
  contact_push   INTEGER NOT NULL CHECK (contact_push IN (0, 1)),
  contact_mail   INTEGER NOT NULL CHECK (contact_mail IN (0, 1)),
  updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE products (
  sku         TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  category    TEXT NOT NULL,
  price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
  active      INTEGER NOT NULL CHECK (active IN (0, 1)),
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE product_barcodes (
  barcode TEXT PRIMARY KEY,
  sku     TEXT NOT NULL REFERENCES products(sku)
) STRICT;

CREATE TABLE product_complements (
  sku            TEXT NOT NULL REFERENCES products(sku),
  complement_sku TEXT NOT NULL REFERENCES products(sku),
  PRIMARY KEY (sku, complement_sku)
) STRICT;

-- Inventory per location (store or distribution centre). available = on_hand - reserved.
CREATE TABLE inventory (
  location_id TEXT NOT NULL REFERENCES stores(id),
  sku         TEXT NOT NULL REFERENCES products(sku),
  on_hand     INTEGER NOT NULL,
  reserved    INTEGER NOT NULL CHECK (reserved >= 0),
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (location_id, sku)
) STRICT;

CREATE TABLE orders (
  id             TEXT PRIMARY KEY,
  customer_id    TEXT REFERENCES customers(id),
  channel        TEXT NOT NULL CHECK (channel IN ('web', 'phone', 'store', 'kiosk')),
  store_id       TEXT REFERENCES stores(id),
  clerk_id       TEXT,
  status         TEXT NOT NULL CHECK (status IN ('completed', 'reserved', 'fulfilled', 'cancelled')),
  fulfilment     TEXT NOT NULL CHECK (fulfilment IN ('carry_out', 'ship_to_home', 'store_pickup')),
  fulfil_from    TEXT REFERENCES stores(id),
  pickup_store   TEXT REFERENCES stores(id),
  ship_address   TEXT NOT NULL DEFAULT '',
  expected_at    INTEGER,
  subtotal_cents INTEGER NOT NULL,
  discount_cents INTEGER NOT NULL,
  total_cents    INTEGER NOT NULL,
  placed_at      INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  mutation_id    TEXT NOT NULL
) STRICT;
CREATE INDEX orders_customer ON orders(customer_id, placed_at);

CREATE TABLE order_lines (
  order_id         TEXT NOT NULL REFERENCES orders(id),
  line_no          INTEGER NOT NULL,
  sku              TEXT NOT NULL REFERENCES products(sku),
  qty              INTEGER NOT NULL CHECK (qty > 0),
  unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
  discount_cents   INTEGER NOT NULL CHECK (discount_cents >= 0),
  PRIMARY KEY (order_id, line_no)
) STRICT;

CREATE TABLE order_tenders (
  order_id     TEXT NOT NULL REFERENCES orders(id),
  tender_no    INTEGER NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('cash', 'card', 'gift_card', 'store_credit')),
  amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
  card_token   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (order_id, tender_no)
) STRICT;

-- Coupons presented with an order. status says whether this order's use of
-- the coupon counted ('redeemed') or was flagged ('duplicate', 'expired', 'unknown').
CREATE TABLE order_coupons (
  order_id       TEXT NOT NULL REFERENCES orders(id),
  code           TEXT NOT NULL,
  discount_cents INTEGER NOT NULL CHECK (discount_cents >= 0),
  status         TEXT NOT NULL CHECK (status IN ('redeemed', 'duplicate', 'expired', 'unknown')),
  PRIMARY KEY (order_id, code)
) STRICT;

CREATE TABLE returns (
  id                TEXT PRIMARY KEY,
  order_id          TEXT REFERENCES orders(id),
  customer_id       TEXT REFERENCES customers(id),
  store_id          TEXT NOT NULL REFERENCES stores(id),
  clerk_id          TEXT NOT NULL,
  reason            TEXT NOT NULL,
  with_receipt      INTEGER NOT NULL CHECK (with_receipt IN (0, 1)),
  refund_kind       TEXT NOT NULL CHECK (refund_kind IN ('cash', 'card', 'gift_card', 'store_credit')),
  refund_cents      INTEGER NOT NULL CHECK (refund_cents >= 0),
  refund_card_token TEXT NOT NULL DEFAULT '',
  approved_by       TEXT,
  restocked         INTEGER NOT NULL CHECK (restocked IN (0, 1)),
  returned_at       INTEGER NOT NULL,
  mutation_id       TEXT NOT NULL
) STRICT;
CREATE INDEX returns_order ON returns(order_id);
CREATE INDEX returns_customer ON returns(customer_id, returned_at);

CREATE TABLE return_lines (
  return_id     TEXT NOT NULL REFERENCES returns(id),
  line_no       INTEGER NOT NULL,
  order_line_no INTEGER,
  sku           TEXT NOT NULL REFERENCES products(sku),
  qty           INTEGER NOT NULL CHECK (qty > 0),
  refund_cents  INTEGER NOT NULL CHECK (refund_cents >= 0),
  PRIMARY KEY (return_id, line_no)
) STRICT;

CREATE TABLE wish_items (
  customer_id TEXT NOT NULL REFERENCES customers(id),
  sku         TEXT NOT NULL REFERENCES products(sku),
  added_at    INTEGER NOT NULL,
  source      TEXT NOT NULL CHECK (source IN ('kiosk', 'clerk', 'web', 'app')),
  note        TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (customer_id, sku)
) STRICT;

-- value: cents for amount_off and sale_price, basis points for the percent types, 0 for free_shipping.
CREATE TABLE promotions (
  id              TEXT PRIMARY KEY,
  name            TEXT NOT NULL,
  type            TEXT NOT NULL CHECK (type IN ('amount_off', 'percent_off', 'free_shipping', 'future_percent_off', 'sale_price')),
  value           INTEGER NOT NULL CHECK (value >= 0),
  sku             TEXT REFERENCES products(sku),
  category        TEXT NOT NULL DEFAULT '',
  audience        TEXT NOT NULL CHECK (audience IN ('all', 'new', 'lapsed', 'loyal', 'high_value', 'wish_list', 'returner')),
  min_order_cents INTEGER NOT NULL CHECK (min_order_cents >= 0),
  starts_at       INTEGER NOT NULL,
  ends_at         INTEGER NOT NULL,
  active          INTEGER NOT NULL CHECK (active IN (0, 1)),
  updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE offers (
  id               TEXT PRIMARY KEY,
  promotion_id     TEXT NOT NULL REFERENCES promotions(id),
  customer_id      TEXT NOT NULL REFERENCES customers(id),
  channel          TEXT NOT NULL CHECK (channel IN ('store_signin', 'kiosk', 'clerk', 'email', 'sms', 'app', 'web', 'mail')),
  store_id         TEXT REFERENCES stores(id),
  made_at          INTEGER NOT NULL,
  outcome          TEXT NOT NULL CHECK (outcome IN ('pending', 'redeemed', 'ignored', 'expired')),
  outcome_order_id TEXT REFERENCES orders(id),
  outcome_at       INTEGER
) STRICT;
CREATE INDEX offers_customer ON offers(customer_id, made_at);

CREATE TABLE coupons (
  code              TEXT PRIMARY KEY,
  offer_id          TEXT NOT NULL REFERENCES offers(id),
  customer_id       TEXT NOT NULL REFERENCES customers(id),
  promotion_id      TEXT NOT NULL REFERENCES promotions(id),
  issued_store      TEXT REFERENCES stores(id),
  issued_at         INTEGER NOT NULL,
  expires_at        INTEGER NOT NULL,
  redeemed_store    TEXT REFERENCES stores(id),
  redeemed_at       INTEGER,
  redeemed_order_id TEXT REFERENCES orders(id)
) STRICT;

CREATE TABLE service_contacts (
  id          TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES customers(id),
  channel     TEXT NOT NULL CHECK (channel IN ('phone', 'email', 'chat', 'store', 'social')),
  reason      TEXT NOT NULL,
  opened_at   INTEGER NOT NULL,
  resolved    INTEGER NOT NULL CHECK (resolved IN (0, 1)),
  satisfied   INTEGER CHECK (satisfied IN (0, 1)),
  clerk_id    TEXT,
  store_id    TEXT REFERENCES stores(id),
  notes       TEXT NOT NULL DEFAULT '',
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE visits (
  id          TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES customers(id),
  store_id    TEXT NOT NULL REFERENCES stores(id),
  method      TEXT NOT NULL CHECK (method IN ('card', 'phone', 'app_qr')),
  at          INTEGER NOT NULL
) STRICT;

-- A cart in any channel; status and last_step are kept up to date by cart
-- events, so "abandoned at payment" is one row.
CREATE TABLE carts (
  id          TEXT PRIMARY KEY,
  customer_id TEXT REFERENCES customers(id),
  channel     TEXT NOT NULL CHECK (channel IN ('web', 'phone', 'store', 'kiosk')),
  status      TEXT NOT NULL CHECK (status IN ('open', 'purchased', 'abandoned')),
  last_step   TEXT NOT NULL CHECK (last_step IN ('browse', 'cart', 'shipping', 'payment', 'review')),
  order_id    TEXT REFERENCES orders(id),
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE cart_events (
  id          TEXT PRIMARY KEY,
  cart_id     TEXT REFERENCES carts(id),
  customer_id TEXT REFERENCES customers(id),
  channel     TEXT NOT NULL CHECK (channel IN ('web', 'phone', 'store', 'kiosk')),
  kind        TEXT NOT NULL CHECK (kind IN ('view', 'add', 'remove', 'checkout_step', 'purchase', 'abandon')),
  sku         TEXT REFERENCES products(sku),
  qty         INTEGER NOT NULL,
  step        TEXT NOT NULL CHECK (step IN ('browse', 'cart', 'shipping', 'payment', 'review')),
  at          INTEGER NOT NULL
) STRICT;

-- Facts that broke a rule: applied anyway, flagged for people to resolve.
CREATE TABLE exceptions (
  id           TEXT PRIMARY KEY,
  mutation_id  TEXT NOT NULL,
  kind         TEXT NOT NULL,
  entity       TEXT NOT NULL,
  detail       TEXT NOT NULL,
  amount_cents INTEGER NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
  raised_at    INTEGER NOT NULL,
  resolved_by  TEXT,
  resolved_at  INTEGER,
  resolution   TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX exceptions_mutation ON exceptions(mutation_id);

-- Every mutation ever applied, with its result: a duplicate is answered from here.
CREATE TABLE applied_mutations (
  id         TEXT PRIMARY KEY,
  type       TEXT NOT NULL,
  hlc        TEXT NOT NULL,
  actor      TEXT NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('accepted', 'rejected', 'flagged')),
  code       TEXT NOT NULL,
  reason     TEXT NOT NULL
) STRICT;
