-- Version 2: the look-ups a clerk and a kiosk make many times a minute
-- (customer by phone, order by payment-card token for receipt-less returns,
-- the customer-360 history reads), and the customer's preferred language for
-- receipts and kiosk screens.
CREATE INDEX customers_phone ON customers(phone);
CREATE INDEX order_tenders_card ON order_tenders(card_token) WHERE card_token != '';
CREATE INDEX visits_customer ON visits(customer_id, at);
CREATE INDEX service_contacts_customer ON service_contacts(customer_id, opened_at);
CREATE INDEX cart_events_customer ON cart_events(customer_id, at);
CREATE INDEX carts_customer ON carts(customer_id, updated_at);
CREATE INDEX coupons_customer ON coupons(customer_id, issued_at);
CREATE INDEX products_category ON products(category);
CREATE INDEX exceptions_open ON exceptions(status, raised_at);
ALTER TABLE customers ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
