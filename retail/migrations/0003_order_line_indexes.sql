-- Order lines by product, for the store's reads on a region of millions
-- of orders: what others who bought a product also bought (customer 360
-- and cross-sell: the latest orders of a SKU), and a product's lowest
-- selling price of the last 30 days (a receipt-less return's refund).
CREATE INDEX order_lines_sku ON order_lines(sku, order_id);
CREATE INDEX order_lines_sku_price ON order_lines(sku, unit_price_cents);
