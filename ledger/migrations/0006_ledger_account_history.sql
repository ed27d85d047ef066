-- The `history` account flag (issue 3, TigerBeetle's `history`): for an account created with it,
-- the posting trigger keeps one row per transfer touching the account, holding the account's four
-- counters right after that transfer was applied. Balances at an instant and statement running
-- balances of such an account are then one index look-up per line instead of a sum over the
-- account's whole journal. Accounts without the flag are still answered, by recomputation from the
-- journal (slower as it grows): set the flag on accounts finance reads statements of.
--
-- Order: within one posting statement the rows are applied in (created_at, transfer id) order,
-- the order statements are read in; across statements, in commit order (batch_id).
--
-- Like the journal it mirrors, the table is append-only, and `paygatectl ledger verify` checks that
-- each history ends at the account's counters.

CREATE TABLE ledger_account_history (
  account_id bigint NOT NULL REFERENCES ledger_accounts (id),
  created_at timestamptz NOT NULL,
  transfer_id text NOT NULL,
  batch_id bigint NOT NULL,
  debits_pending bigint NOT NULL,
  debits_posted bigint NOT NULL,
  credits_pending bigint NOT NULL,
  credits_posted bigint NOT NULL,
  PRIMARY KEY (account_id, created_at, transfer_id)
);
CREATE INDEX ledger_account_history_by_batch ON ledger_account_history (account_id, batch_id);

CREATE TRIGGER ledger_account_history_no_update BEFORE UPDATE OR DELETE ON ledger_account_history
  FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_account_history_no_truncate BEFORE TRUNCATE ON ledger_account_history
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- 0005's posting trigger, plus the history rows. The validation pass also learns whether any row
-- touches a history account, so batches that do not (the common case) skip the history insert by a
-- one-time filter. The history insert and the counter update are one statement: both read the
-- counters as they were before it, and the insert adds the running sums of the deltas to them.
CREATE OR REPLACE FUNCTION ledger_transfers_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  problem integer;
  wants_history boolean;
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
    ELSE 0 END),
    coalesce(bool_or(d.history OR c.history), false)
  INTO problem, wants_history
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
  WITH deltas AS (
    SELECT n.id AS transfer_id, n.created_at, n.batch_id, x.account_id, x.dp, x.dpo, x.cp, x.cpo
    FROM (SELECT n.id, n.created_at, n.batch_id, n.debit_account_id, n.credit_account_id, n.kind,
                 n.amount,
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
  ), history AS (
    INSERT INTO ledger_account_history (account_id, created_at, transfer_id, batch_id,
                                        debits_pending, debits_posted, credits_pending,
                                        credits_posted)
    SELECT d.account_id, d.created_at, d.transfer_id, d.batch_id,
           a.debits_pending + sum(d.dp) OVER w, a.debits_posted + sum(d.dpo) OVER w,
           a.credits_pending + sum(d.cp) OVER w, a.credits_posted + sum(d.cpo) OVER w
    FROM deltas d JOIN ledger_accounts a ON a.id = d.account_id
    WHERE wants_history AND a.history
    WINDOW w AS (PARTITION BY d.account_id ORDER BY d.created_at, d.transfer_id)
  )
  UPDATE ledger_accounts a
  SET debits_pending = a.debits_pending + s.debits_pending,
      debits_posted = a.debits_posted + s.debits_posted,
      credits_pending = a.credits_pending + s.credits_pending,
      credits_posted = a.credits_posted + s.credits_posted
  FROM (SELECT account_id, sum(dp) AS debits_pending, sum(dpo) AS debits_posted,
               sum(cp) AS credits_pending, sum(cpo) AS credits_posted
        FROM deltas GROUP BY account_id) s
  WHERE a.id = s.account_id;
  RETURN NULL;
END
$$;
