-- Cheaper enforcement of two ledger invariants of 0002_ledger.sql (issue 3, ledger throughput). Both
-- still hold against any SQL a caller writes; they just stop costing work on every posting:
--   * an account's identity and limit flags never change: the row trigger now fires only for an
--     UPDATE that names one of those columns, so the posting trigger's counter UPDATE skips it;
--   * per currency, debits equal credits: instead of a deferred row trigger that re-summed every
--     account of the currency at each commit, every statement that writes ledger_accounts must
--     itself leave the per-currency sums of debits and credits (posted, and pending) unchanged
--     (inserts: must add balanced counters). The books balanced when this migration ran (checked
--     below) and accounts cannot be deleted or truncated, so balanced changes keep them balanced.
--     This is stricter than before: a hand-written correction split over two statements is refused
--     even if the transaction as a whole balances. The posting trigger writes all of a batch's
--     counters in one UPDATE, and every transfer is balanced, so postings always pass.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

DO $$
DECLARE
  unbalanced text;
BEGIN
  SELECT currency INTO unbalanced FROM ledger_accounts GROUP BY currency
  HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger: debits and credits differ in currency %', unbalanced
      USING ERRCODE = 'check_violation';
  END IF;
END
$$;

-- Column-level: an UPDATE that does not name an identity column cannot change it (no other BEFORE
-- UPDATE row trigger on this table rewrites NEW), so the check only needs to run when one is named.
DROP TRIGGER ledger_accounts_guard ON ledger_accounts;
CREATE TRIGGER ledger_accounts_guard
  BEFORE UPDATE OF id, type, currency, code, name, debits_must_not_exceed_credits,
                   credits_must_not_exceed_debits, history, created_at
  ON ledger_accounts FOR EACH ROW EXECUTE FUNCTION ledger_accounts_guard();

DROP TRIGGER ledger_accounts_balanced ON ledger_accounts;
DROP FUNCTION ledger_check_currency_balanced();

-- The statement's net change per currency: new rows count positive, old rows negative (no join, so
-- the sums stay right even for a row whose currency changed). Sums of bigint are numeric: no overflow.
CREATE FUNCTION ledger_accounts_update_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  unbalanced text;
BEGIN
  SELECT d.currency INTO unbalanced
  FROM (SELECT currency, debits_posted - credits_posted AS posted,
               debits_pending - credits_pending AS pending FROM new_rows
        UNION ALL
        SELECT currency, credits_posted - debits_posted, credits_pending - debits_pending
        FROM old_rows) d
  GROUP BY d.currency HAVING sum(d.posted) <> 0 OR sum(d.pending) <> 0
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger: debits and credits differ in currency %', unbalanced
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER ledger_accounts_update_balanced AFTER UPDATE ON ledger_accounts
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_accounts_update_balanced();

-- New accounts normally start at zero; whatever they start with must balance per currency.
CREATE FUNCTION ledger_accounts_insert_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  unbalanced text;
BEGIN
  SELECT currency INTO unbalanced FROM new_rows GROUP BY currency
  HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger: debits and credits differ in currency %', unbalanced
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER ledger_accounts_insert_balanced AFTER INSERT ON ledger_accounts
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_accounts_insert_balanced();

-- The posting trigger, same checks and arithmetic as in 0002 with fewer statements, written so that
-- a cached generic plan cannot go bad as the journal grows (posting keeps its plans across batches
-- instead of re-planning every statement each time): the journal is only read through a scalar
-- look-up of one pending transfer by primary key, evaluated for resolution rows alone. In 0002 a
-- join did that look-up, and a generic plan made while the journal was small hashed the whole
-- journal for every batch. The accounts table is bounded by the chart, not by traffic.
-- One validation pass: of the three refusals, the first listed wins when rows break several, as
-- the three successive checks of 0002 decided.
CREATE OR REPLACE FUNCTION ledger_transfers_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  problem integer;
BEGIN
  SELECT max(CASE
    WHEN d.id IS NULL OR c.id IS NULL OR d.currency <> n.currency OR c.currency <> n.currency
      THEN 3
    WHEN (d.closed OR c.closed) AND n.kind IN ('single', 'pending', 'post_pending') THEN 2
    WHEN n.pending_id IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM ledger_transfers p
      WHERE p.id = n.pending_id AND p.kind = 'pending'
        AND p.debit_account_id = n.debit_account_id AND p.credit_account_id = n.credit_account_id
        AND p.currency = n.currency AND n.amount <= p.amount
        AND (n.kind = 'post_pending' OR n.amount = p.amount)
        AND NOT (n.kind = 'expire_pending'
                 AND (p.timeout_s = 0
                      OR n.created_at < p.created_at + p.timeout_s * interval '1 second')))
      THEN 1
    ELSE 0 END)
  INTO problem
  FROM new_rows n
  LEFT JOIN ledger_accounts d ON d.id = n.debit_account_id
  LEFT JOIN ledger_accounts c ON c.id = n.credit_account_id;
  IF problem = 3 THEN
    RAISE EXCEPTION 'ledger: transfer names a missing account or one of another currency'
      USING ERRCODE = 'check_violation';
  ELSIF problem = 2 THEN
    RAISE EXCEPTION 'ledger: transfer on a closed account' USING ERRCODE = 'check_violation';
  ELSIF problem = 1 THEN
    RAISE EXCEPTION 'ledger: resolution does not match its pending transfer'
      USING ERRCODE = 'check_violation';
  END IF;
  -- A resolution releases its pending's full amount (pending_amount); the ledger_postings
  -- arithmetic of 0002.
  UPDATE ledger_accounts a
  SET debits_pending = a.debits_pending + s.debits_pending,
      debits_posted = a.debits_posted + s.debits_posted,
      credits_pending = a.credits_pending + s.credits_pending,
      credits_posted = a.credits_posted + s.credits_posted
  FROM (SELECT x.account_id, sum(x.dp) AS debits_pending, sum(x.dpo) AS debits_posted,
               sum(x.cp) AS credits_pending, sum(x.cpo) AS credits_posted
        FROM (SELECT n.debit_account_id, n.credit_account_id, n.kind, n.amount,
                     CASE WHEN n.pending_id IS NULL THEN 0
                          ELSE (SELECT p.amount FROM ledger_transfers p WHERE p.id = n.pending_id)
                     END AS pending_amount
              FROM new_rows n OFFSET 0) n,
        LATERAL (VALUES
          (n.debit_account_id,
           CASE n.kind WHEN 'pending' THEN n.amount WHEN 'single' THEN 0 ELSE -n.pending_amount END,
           CASE WHEN n.kind IN ('single', 'post_pending') THEN n.amount ELSE 0 END,
           0::bigint, 0::bigint),
          (n.credit_account_id, 0::bigint, 0::bigint,
           CASE n.kind WHEN 'pending' THEN n.amount WHEN 'single' THEN 0 ELSE -n.pending_amount END,
           CASE WHEN n.kind IN ('single', 'post_pending') THEN n.amount ELSE 0 END))
          AS x(account_id, dp, dpo, cp, cpo)
        GROUP BY x.account_id) s
  WHERE a.id = s.account_id;
  RETURN NULL;
END
$$;

-- Fails the statement, and so its transaction, unless `ok`: posting checks a write's row counts
-- inside the write itself, so the COMMIT can travel in the same round trip instead of waiting for
-- the client to look at the counts. SQLSTATE LG001 tells the client what failed.
CREATE FUNCTION ledger_require(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF ok IS NOT TRUE THEN
    RAISE EXCEPTION 'ledger: % does not add up', what USING ERRCODE = 'LG001';
  END IF;
  RETURN true;
END
$$;
