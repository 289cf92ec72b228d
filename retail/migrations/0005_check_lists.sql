-- Version 5: the CHECK constraints that list three or more allowed values
-- (channel IN ('web', 'phone', 'store', 'kiosk'), ...) are written as the
-- equivalent chain of comparisons (channel = 'web' OR channel = 'phone' OR
-- ...). They accept and refuse exactly the same values (NULL included: both
-- forms are NULL for a NULL, which a CHECK lets pass). The reason is speed:
-- for an IN list of more than two constants SQLite builds a temporary index
-- each time a statement runs, five times for a till sale (orders has three
-- such lists, order_tenders and applied_mutations one each), about a sixth
-- of what Apply costs a sale (docs/benchmarks.md, "retail: Apply"). Lists of
-- two values are compared in place and stay as they are.
--
-- Only the text of the constraints changes, not what is stored, so this
-- edits the schema in place (https://www.sqlite.org/lang_altertable.html,
-- "making other kinds of table schema changes", the simpler procedure for
-- a change that "does not affect the on-disk content in any way") rather
-- than copying every table: orders is the parent of six tables' foreign
-- keys, which a copy would have to check row by row, with foreign keys on.
-- Every existing row satisfies the new constraints, since they are the old
-- ones. writable_schema = RESET reloads this connection's schema, and the
-- table created and dropped at the end changes the schema version, so
-- every other connection reloads it too. TestMigration5 checks the result.

PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (role IN (''associate'', ''manager'', ''admin''))',
    'CHECK (role = ''associate'' OR role = ''manager'' OR role = ''admin'')')
  WHERE type = 'table' AND name = 'clerks';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (acquired_via IN (''walk_in'', ''referral'', ''campaign'', ''web'', ''phone''))',
    'CHECK (acquired_via = ''walk_in'' OR acquired_via = ''referral'' OR acquired_via = ''campaign'' OR acquired_via = ''web'' OR acquired_via = ''phone'')')
  WHERE type = 'table' AND name = 'customers';

UPDATE sqlite_schema SET sql = replace(replace(replace(sql,
    'CHECK (channel IN (''web'', ''phone'', ''store'', ''kiosk''))',
    'CHECK (channel = ''web'' OR channel = ''phone'' OR channel = ''store'' OR channel = ''kiosk'')'),
    'CHECK (status IN (''completed'', ''reserved'', ''fulfilled'', ''cancelled''))',
    'CHECK (status = ''completed'' OR status = ''reserved'' OR status = ''fulfilled'' OR status = ''cancelled'')'),
    'CHECK (fulfilment IN (''carry_out'', ''ship_to_home'', ''store_pickup''))',
    'CHECK (fulfilment = ''carry_out'' OR fulfilment = ''ship_to_home'' OR fulfilment = ''store_pickup'')')
  WHERE type = 'table' AND name = 'orders';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (kind IN (''cash'', ''card'', ''gift_card'', ''store_credit''))',
    'CHECK (kind = ''cash'' OR kind = ''card'' OR kind = ''gift_card'' OR kind = ''store_credit'')')
  WHERE type = 'table' AND name = 'order_tenders';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN (''redeemed'', ''duplicate'', ''expired'', ''unknown''))',
    'CHECK (status = ''redeemed'' OR status = ''duplicate'' OR status = ''expired'' OR status = ''unknown'')')
  WHERE type = 'table' AND name = 'order_coupons';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (refund_kind IN (''cash'', ''card'', ''gift_card'', ''store_credit''))',
    'CHECK (refund_kind = ''cash'' OR refund_kind = ''card'' OR refund_kind = ''gift_card'' OR refund_kind = ''store_credit'')')
  WHERE type = 'table' AND name = 'returns';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (source IN (''kiosk'', ''clerk'', ''web'', ''app''))',
    'CHECK (source = ''kiosk'' OR source = ''clerk'' OR source = ''web'' OR source = ''app'')')
  WHERE type = 'table' AND name = 'wish_items';

UPDATE sqlite_schema SET sql = replace(replace(sql,
    'CHECK (type IN (''amount_off'', ''percent_off'', ''free_shipping'', ''future_percent_off'', ''sale_price''))',
    'CHECK (type = ''amount_off'' OR type = ''percent_off'' OR type = ''free_shipping'' OR type = ''future_percent_off'' OR type = ''sale_price'')'),
    'CHECK (audience IN (''all'', ''new'', ''lapsed'', ''loyal'', ''high_value'', ''wish_list'', ''returner''))',
    'CHECK (audience = ''all'' OR audience = ''new'' OR audience = ''lapsed'' OR audience = ''loyal'' OR audience = ''high_value'' OR audience = ''wish_list'' OR audience = ''returner'')')
  WHERE type = 'table' AND name = 'promotions';

UPDATE sqlite_schema SET sql = replace(replace(sql,
    'CHECK (channel IN (''store_signin'', ''kiosk'', ''clerk'', ''email'', ''sms'', ''app'', ''web'', ''mail''))',
    'CHECK (channel = ''store_signin'' OR channel = ''kiosk'' OR channel = ''clerk'' OR channel = ''email'' OR channel = ''sms'' OR channel = ''app'' OR channel = ''web'' OR channel = ''mail'')'),
    'CHECK (outcome IN (''pending'', ''redeemed'', ''ignored'', ''expired''))',
    'CHECK (outcome = ''pending'' OR outcome = ''redeemed'' OR outcome = ''ignored'' OR outcome = ''expired'')')
  WHERE type = 'table' AND name = 'offers';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (channel IN (''phone'', ''email'', ''chat'', ''store'', ''social''))',
    'CHECK (channel = ''phone'' OR channel = ''email'' OR channel = ''chat'' OR channel = ''store'' OR channel = ''social'')')
  WHERE type = 'table' AND name = 'service_contacts';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (method IN (''card'', ''phone'', ''app_qr''))',
    'CHECK (method = ''card'' OR method = ''phone'' OR method = ''app_qr'')')
  WHERE type = 'table' AND name = 'visits';

UPDATE sqlite_schema SET sql = replace(replace(replace(sql,
    'CHECK (channel IN (''web'', ''phone'', ''store'', ''kiosk''))',
    'CHECK (channel = ''web'' OR channel = ''phone'' OR channel = ''store'' OR channel = ''kiosk'')'),
    'CHECK (status IN (''open'', ''purchased'', ''abandoned''))',
    'CHECK (status = ''open'' OR status = ''purchased'' OR status = ''abandoned'')'),
    'CHECK (last_step IN (''browse'', ''cart'', ''shipping'', ''payment'', ''review''))',
    'CHECK (last_step = ''browse'' OR last_step = ''cart'' OR last_step = ''shipping'' OR last_step = ''payment'' OR last_step = ''review'')')
  WHERE type = 'table' AND name = 'carts';

UPDATE sqlite_schema SET sql = replace(replace(replace(sql,
    'CHECK (channel IN (''web'', ''phone'', ''store'', ''kiosk''))',
    'CHECK (channel = ''web'' OR channel = ''phone'' OR channel = ''store'' OR channel = ''kiosk'')'),
    'CHECK (kind IN (''view'', ''add'', ''remove'', ''checkout_step'', ''purchase'', ''abandon''))',
    'CHECK (kind = ''view'' OR kind = ''add'' OR kind = ''remove'' OR kind = ''checkout_step'' OR kind = ''purchase'' OR kind = ''abandon'')'),
    'CHECK (step IN (''browse'', ''cart'', ''shipping'', ''payment'', ''review''))',
    'CHECK (step = ''browse'' OR step = ''cart'' OR step = ''shipping'' OR step = ''payment'' OR step = ''review'')')
  WHERE type = 'table' AND name = 'cart_events';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN (''accepted'', ''rejected'', ''flagged''))',
    'CHECK (status = ''accepted'' OR status = ''rejected'' OR status = ''flagged'')')
  WHERE type = 'table' AND name = 'applied_mutations';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (kind IN (''cash'', ''card'', ''gift_card'', ''store_credit''))',
    'CHECK (kind = ''cash'' OR kind = ''card'' OR kind = ''gift_card'' OR kind = ''store_credit'')')
  WHERE type = 'table' AND name = 'return_tenders';

PRAGMA writable_schema = RESET;
CREATE TABLE schema_reload_0005 (x INTEGER);
DROP TABLE schema_reload_0005;
