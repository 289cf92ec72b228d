-- A return can be refunded to more than one tender: an item paid half by
-- card and half in cash goes back the same way. return_tenders holds every
-- refund tender of a return; returns.refund_kind and refund_card_token keep
-- the first of them and refund_cents the total, so readers of one tender
-- still see a true (if partial) picture. Every existing return had exactly
-- one refund tender.
CREATE TABLE return_tenders (
  return_id    TEXT NOT NULL REFERENCES returns(id),
  tender_no    INTEGER NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('cash', 'card', 'gift_card', 'store_credit')),
  amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
  card_token   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (return_id, tender_no)
) STRICT;

INSERT INTO return_tenders (return_id, tender_no, kind, amount_cents, card_token)
  SELECT id, 1, refund_kind, refund_cents, refund_card_token FROM returns;
