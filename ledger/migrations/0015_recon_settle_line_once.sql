-- A bill line settles once across the versions of its bill (issue 8; ledger/recon/settlement.h).
-- 0011 identified a settled line by (import_id, line_no), which a corrected version of the same day
-- renumbers: its lines carry the same provider transactions under a new import_id. A line that
-- matched one of our items stayed protected by the item's uniqueness, but one without an item
-- (missing_ours, duplicate) looked unsettled again, and a second settlement would have counted the
-- provider's money for it twice. A settled line now also records the provider transaction it is,
-- which every version of the bill shares: (provider, merchant_account, kind,
-- provider_transaction_id, provider_refund_id) and its occurrence, the line's rank among the lines
-- of its bill with that same transaction (1 but for a bill that repeats a line, whose every copy
-- the provider settles). The unique constraint below lets each settle once, even from two finance
-- users at the same moment.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

ALTER TABLE recon_settlement_items
  ADD COLUMN provider text,
  ADD COLUMN merchant_account text,
  ADD COLUMN kind text,
  ADD COLUMN provider_transaction_id text,
  ADD COLUMN provider_refund_id text,
  ADD COLUMN occurrence integer;

-- Backfill from the lines the settled rows name (their bill's lines never change). Where 0011
-- already let one transaction be settled twice, the first settlement keeps the identity and the
-- later rows keep NULLs: the history stays as recorded (the settlement rows are never deleted and
-- the mismatch the double count raised is the settlement's own exception), and the constraint
-- below holds from here on.
WITH ranked AS (
  SELECT b.import_id, b.line_no, i.provider, i.merchant_account, b.kind,
         b.provider_transaction_id, b.provider_refund_id,
         row_number() OVER (PARTITION BY b.import_id, b.kind, b.provider_transaction_id,
                                         b.provider_refund_id ORDER BY b.line_no) AS occurrence
    FROM recon_bill_items b JOIN recon_imports i ON i.id = b.import_id
   WHERE b.import_id IN (SELECT DISTINCT import_id FROM recon_settlement_items)
), first AS (
  SELECT s.import_id, s.line_no, r.provider, r.merchant_account, r.kind,
         r.provider_transaction_id, r.provider_refund_id, r.occurrence,
         row_number() OVER (PARTITION BY r.provider, r.merchant_account, r.kind,
                                         r.provider_transaction_id, r.provider_refund_id,
                                         r.occurrence ORDER BY s.settlement_id, s.import_id) AS nth
    FROM recon_settlement_items s
    JOIN ranked r ON r.import_id = s.import_id AND r.line_no = s.line_no
)
UPDATE recon_settlement_items s
   SET provider = f.provider, merchant_account = f.merchant_account, kind = f.kind,
       provider_transaction_id = f.provider_transaction_id,
       provider_refund_id = f.provider_refund_id, occurrence = f.occurrence
  FROM first f
 WHERE f.nth = 1 AND s.import_id = f.import_id AND s.line_no = f.line_no;

-- Every settlement from now on records the identity (NOT VALID: enforced for new rows; the earlier
-- double settlements above keep their NULLs).
ALTER TABLE recon_settlement_items ADD CONSTRAINT recon_settlement_items_identity_set
  CHECK (provider IS NOT NULL AND merchant_account IS NOT NULL AND kind IS NOT NULL AND
         provider_transaction_id IS NOT NULL AND provider_refund_id IS NOT NULL AND
         occurrence > 0) NOT VALID;
-- The provider transaction settles once, whichever version's line named it. Also the index a
-- whole-day settlement probes to leave such lines out.
ALTER TABLE recon_settlement_items ADD CONSTRAINT recon_settlement_items_line_once
  UNIQUE (provider, merchant_account, kind, provider_transaction_id, provider_refund_id,
          occurrence);
