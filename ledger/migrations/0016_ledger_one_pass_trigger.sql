-- The posting trigger of 0014_ledger_cheaper_trigger.sql in one pass instead of three (issue 3,
-- ledger throughput). Same refusals with the same messages and precedence, same counters, same
-- history rows. Measured on a 64-transfer batch, 0014 spent about a third of the write statement in
-- the trigger's three statements: collecting the named accounts, reading each of them by primary
-- key to validate the batch, and then joining them again to update their counters. Now:
--   * the counter update itself is the validation: it changes an account only for the currency it
--     is in, and only if it is open or the batch merely releases reservations on it, and returns the
--     rows it changed. A resolution's pending transfer is looked up once, with the match check, for
--     the amount it releases. When the update changed every account the batch names and every
--     resolution matched, the batch is valid and nothing else is read;
--   * otherwise (a refusal) the same statement runs 0014's validation pass and raises its refusal
--     before the statement ends, so no counter CHECK of a half-applied batch and no per-currency
--     balance check of ledger_accounts (0005) is reported in its place;
--   * history rows are written after the update, from the counters it left: an account's row for a
--     transfer is its counters after the batch less what the batch's later transfers added.
-- One difference remains for raw SQL only: in a statement that breaks a limit on one account and
-- names a missing, foreign or closed account elsewhere, the limit's CHECK may be reported first.
-- The daemon never writes such a statement (PlanBatch decides every transfer before it writes).
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

-- Raises the refusal a validation pass found (0 = none); a function so that it can run inside the
-- posting trigger's statement, before that statement's own AFTER triggers.
CREATE FUNCTION ledger_transfers_refuse(problem integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF problem = 3 THEN
    RAISE EXCEPTION 'ledger: transfer names a missing account or one of another currency'
      USING ERRCODE = 'check_violation';
  ELSIF problem = 2 THEN
    RAISE EXCEPTION 'ledger: transfer on a closed account' USING ERRCODE = 'check_violation';
  ELSIF problem = 1 THEN
    RAISE EXCEPTION 'ledger: resolution does not match its pending transfer'
      USING ERRCODE = 'check_violation';
  ELSIF problem IS DISTINCT FROM 0 THEN
    RAISE EXCEPTION 'ledger: batch validation failed (%)', problem
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION ledger_transfers_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  wants_history boolean;
  valid boolean;
BEGIN
  -- A resolution releases its pending's full amount (pending_amount), if it matches its pending
  -- transfer (the check of 0014's validation pass); one that does not releases nothing (so no
  -- counter CHECK fires first) and has the validation pass raise its refusal. The ledger_postings
  -- arithmetic of 0002, debit side then credit side of each transfer, summed per account and
  -- currency: a row in another currency than its account's forms a group the update does not match.
  -- (A correlated subquery, not a join: run only for resolutions, as a primary-key probe.)
  WITH r AS MATERIALIZED (
    SELECT m.debit_account_id, m.credit_account_id, m.currency, m.amount, m.kind,
           m.kind IN ('single', 'pending', 'post_pending') AS opens,
           coalesce(m.released, 0) AS pending_amount,
           m.pending_id IS NULL OR m.released IS NOT NULL AS matched
    FROM (SELECT n.debit_account_id, n.credit_account_id, n.currency, n.amount, n.kind,
                 n.pending_id,
                 CASE WHEN n.pending_id IS NOT NULL THEN (
                   SELECT p.amount FROM ledger_transfers p
                   WHERE p.id = n.pending_id AND p.kind = 'pending'
                     AND p.debit_account_id = n.debit_account_id
                     AND p.credit_account_id = n.credit_account_id
                     AND p.currency = n.currency AND n.amount <= p.amount
                     AND (n.kind = 'post_pending' OR n.amount = p.amount)
                     AND NOT (n.kind = 'expire_pending'
                              AND (p.timeout_s = 0
                                   OR n.created_at < p.created_at + p.timeout_s * interval '1 second')))
                 END AS released
          FROM new_rows n) m),
  deltas AS MATERIALIZED (
    SELECT x.account_id, x.currency, bool_or(x.opens) AS opens, sum(x.dp) AS dp,
           sum(x.dpo) AS dpo, sum(x.cp) AS cp, sum(x.cpo) AS cpo
    FROM (SELECT r.debit_account_id, r.currency, r.opens,
                 CASE r.kind WHEN 'pending' THEN r.amount WHEN 'single' THEN 0
                   ELSE -r.pending_amount END,
                 CASE WHEN r.kind IN ('single', 'post_pending') THEN r.amount ELSE 0 END,
                 0::bigint, 0::bigint
          FROM r
          UNION ALL
          SELECT r.credit_account_id, r.currency, r.opens, 0::bigint, 0::bigint,
                 CASE r.kind WHEN 'pending' THEN r.amount WHEN 'single' THEN 0
                   ELSE -r.pending_amount END,
                 CASE WHEN r.kind IN ('single', 'post_pending') THEN r.amount ELSE 0 END
          FROM r) x(account_id, currency, opens, dp, dpo, cp, cpo)
    GROUP BY x.account_id, x.currency),
  applied AS (
    UPDATE ledger_accounts a
    SET debits_pending = a.debits_pending + s.dp,
        debits_posted = a.debits_posted + s.dpo,
        credits_pending = a.credits_pending + s.cp,
        credits_posted = a.credits_posted + s.cpo
    FROM deltas s
    WHERE a.id = s.account_id AND a.currency = s.currency AND NOT (a.closed AND s.opens)
    RETURNING a.history)
  -- The refusal check is evaluated once, after the update: 0014's validation pass, unchanged,
  -- unless every named account was updated and every resolution matched.
  SELECT (SELECT coalesce(bool_or(applied.history), false) FROM applied),
         ledger_transfers_refuse(CASE
    WHEN (SELECT count(*) FROM applied) = (SELECT count(*) FROM deltas)
         AND (SELECT coalesce(bool_and(r.matched), true) FROM r) THEN 0
    ELSE (
      SELECT coalesce(max(CASE
        WHEN d.id IS NULL OR c.id IS NULL OR d.currency <> n.currency OR c.currency <> n.currency
          THEN 3
        WHEN (d.closed OR c.closed) AND n.kind IN ('single', 'pending', 'post_pending') THEN 2
        WHEN n.pending_id IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM ledger_transfers p
          WHERE p.id = n.pending_id AND p.kind = 'pending'
            AND p.debit_account_id = n.debit_account_id
            AND p.credit_account_id = n.credit_account_id
            AND p.currency = n.currency AND n.amount <= p.amount
            AND (n.kind = 'post_pending' OR n.amount = p.amount)
            AND NOT (n.kind = 'expire_pending'
                     AND (p.timeout_s = 0
                          OR n.created_at < p.created_at + p.timeout_s * interval '1 second')))
          THEN 1
        ELSE 0 END), 0)
      FROM new_rows n
      LEFT JOIN ledger_accounts d ON d.id = n.debit_account_id
      LEFT JOIN ledger_accounts c ON c.id = n.credit_account_id)
    END)
  INTO wants_history, valid;

  IF wants_history THEN
    -- One row per transfer and history account, with the counters as they stood after that
    -- transfer: the account's counters now, less the deltas of the batch's transfers that come after
    -- it in (created_at, id) order. 0006 computed the same from the counters before the batch.
    INSERT INTO ledger_account_history (account_id, created_at, transfer_id, batch_id,
                                        debits_pending, debits_posted, credits_pending,
                                        credits_posted)
    SELECT d.account_id, d.created_at, d.transfer_id, d.batch_id,
           a.debits_pending - coalesce(sum(d.dp) OVER later, 0),
           a.debits_posted - coalesce(sum(d.dpo) OVER later, 0),
           a.credits_pending - coalesce(sum(d.cp) OVER later, 0),
           a.credits_posted - coalesce(sum(d.cpo) OVER later, 0)
    FROM (SELECT n.id AS transfer_id, n.created_at, n.batch_id, x.account_id, x.dp, x.dpo, x.cp,
                 x.cpo
          FROM (SELECT n.*,
                       CASE WHEN n.pending_id IS NULL THEN 0::bigint
                            ELSE (SELECT p.amount FROM ledger_transfers p WHERE p.id = n.pending_id)
                       END AS pending_amount
                FROM new_rows n) n,
          LATERAL (VALUES
            (n.debit_account_id,
             CASE n.kind WHEN 'pending' THEN n.amount WHEN 'single' THEN 0
               ELSE -n.pending_amount END,
             CASE WHEN n.kind IN ('single', 'post_pending') THEN n.amount ELSE 0 END,
             0::bigint, 0::bigint),
            (n.credit_account_id, 0::bigint, 0::bigint,
             CASE n.kind WHEN 'pending' THEN n.amount WHEN 'single' THEN 0
               ELSE -n.pending_amount END,
             CASE WHEN n.kind IN ('single', 'post_pending') THEN n.amount ELSE 0 END))
            AS x(account_id, dp, dpo, cp, cpo)) d
    JOIN ledger_accounts a ON a.id = d.account_id
    WHERE a.history
    WINDOW later AS (PARTITION BY d.account_id ORDER BY d.created_at, d.transfer_id
                     ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING);
  END IF;
  RETURN NULL;
END
$$;
-- The named accounts are found by primary key, not by scanning and hashing the whole chart, which
-- is how the planner joins them to a batch on its own (a chart of a thousand accounts is "small"
-- to it, yet scanning it costs more than the batch's updates).
ALTER FUNCTION ledger_transfers_apply()
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
