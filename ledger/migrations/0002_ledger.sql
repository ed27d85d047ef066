-- Double-entry ledger (DESIGN.md §4, issue 3): TigerBeetle's model on PostgreSQL. The database itself
-- enforces the invariants, so a bug in the C++ code or a hand-written SQL statement cannot break them:
--   * account counters are maintained by a trigger from the journal rows, never written by the caller;
--   * CHECK constraints keep every balance within its account's limit flags;
--   * transfers (the journal) are append-only: UPDATE, DELETE and TRUNCATE raise;
--   * a pending transfer is resolved (posted, voided, expired) at most once, with matching accounts;
--   * per currency, debits equal credits over all accounts, checked at commit;
--   * committed batches form a SHA-256 hash chain (PostgreSQL 15's built-in sha256(), no extension).
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

CREATE TABLE ledger_accounts (
  id bigint PRIMARY KEY CHECK (id > 0),
  type text NOT NULL CHECK (type IN ('asset', 'liability', 'income', 'expense', 'equity')),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  code integer NOT NULL CHECK (code >= 0),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  debits_must_not_exceed_credits boolean NOT NULL DEFAULT false,
  credits_must_not_exceed_debits boolean NOT NULL DEFAULT false,
  closed boolean NOT NULL DEFAULT false,
  history boolean NOT NULL DEFAULT false,
  debits_pending bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
  debits_posted bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
  credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
  credits_posted bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ledger_accounts_name_unique UNIQUE (currency, name),
  CONSTRAINT ledger_accounts_limit_flags_exclusive
    CHECK (NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)),
  -- Pending debits count against the limit: a reservation must never be able to overdraw.
  CONSTRAINT ledger_accounts_debits_limit
    CHECK (NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted),
  CONSTRAINT ledger_accounts_credits_limit
    CHECK (NOT credits_must_not_exceed_debits OR credits_pending + credits_posted <= debits_posted)
);

-- The journal. Ids are chosen by the caller (idempotency); an entry groups a linked chain (entry_id is
-- the id of the chain's first transfer; a lone transfer is its own entry).
CREATE TABLE ledger_transfers (
  id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:@/-]{1,128}$'),
  debit_account_id bigint NOT NULL,
  credit_account_id bigint NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),
  currency char(3) NOT NULL,
  kind text NOT NULL
    CHECK (kind IN ('single', 'pending', 'post_pending', 'void_pending', 'expire_pending')),
  linked boolean NOT NULL,
  pending_id text,
  timeout_s integer NOT NULL CHECK (timeout_s >= 0),
  reason_code integer NOT NULL CHECK (reason_code >= 0),
  external_ref text NOT NULL CHECK (length(external_ref) <= 256),
  entry_id text NOT NULL,
  batch_id bigint NOT NULL,
  created_at timestamptz NOT NULL,
  CONSTRAINT ledger_transfers_accounts_distinct CHECK (debit_account_id <> credit_account_id),
  CONSTRAINT ledger_transfers_pending_id_iff_resolution
    CHECK ((kind IN ('post_pending', 'void_pending', 'expire_pending')) = (pending_id IS NOT NULL)),
  CONSTRAINT ledger_transfers_timeout_only_pending CHECK (kind = 'pending' OR timeout_s = 0)
);
-- A pending transfer is resolved at most once.
CREATE UNIQUE INDEX ledger_transfers_pending_resolved_once ON ledger_transfers (pending_id)
  WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_debit_history ON ledger_transfers (debit_account_id, created_at, id);
CREATE INDEX ledger_transfers_credit_history ON ledger_transfers (credit_account_id, created_at, id);
CREATE INDEX ledger_transfers_batch ON ledger_transfers (batch_id);
CREATE INDEX ledger_transfers_timeouts ON ledger_transfers (created_at)
  WHERE kind = 'pending' AND timeout_s > 0;

-- Ids that failed for a business reason: they cannot be reused silently (the poster answers
-- id_already_failed).
CREATE TABLE ledger_transfer_failures (
  id text PRIMARY KEY,
  result text NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now()
);

-- One row per committed batch that wrote transfers: hash = sha256(prev_hash || canonical rows).
CREATE TABLE ledger_batches (
  id bigint PRIMARY KEY CHECK (id > 0),
  prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
  hash bytea NOT NULL CHECK (length(hash) = 32),
  transfer_count integer NOT NULL CHECK (transfer_count > 0),
  committed_at timestamptz NOT NULL DEFAULT now()
);

-- The chain's head, one row. Posting locks it first (then accounts in ascending id order), which both
-- orders the chain and gives all writers one global lock order, so batches never deadlock.
CREATE TABLE ledger_chain_head (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  last_batch_id bigint NOT NULL,
  last_hash bytea NOT NULL CHECK (length(last_hash) = 32)
);
INSERT INTO ledger_chain_head VALUES (true, 0, decode(repeat('00', 32), 'hex'));

-- Each transfer's effect on the four counters of its two accounts. Verify and the reads at an instant
-- recompute balances from this view; the posting trigger below applies the same arithmetic.
CREATE VIEW ledger_postings AS
SELECT t.id AS transfer_id, t.created_at, t.currency, x.account_id, x.debits_pending,
       x.debits_posted, x.credits_pending, x.credits_posted
FROM ledger_transfers t
LEFT JOIN ledger_transfers p ON p.id = t.pending_id,
LATERAL (VALUES
  (t.debit_account_id,
   CASE t.kind WHEN 'pending' THEN t.amount WHEN 'single' THEN 0 ELSE -p.amount END,
   CASE WHEN t.kind IN ('single', 'post_pending') THEN t.amount ELSE 0 END, 0::bigint, 0::bigint),
  (t.credit_account_id, 0::bigint, 0::bigint,
   CASE t.kind WHEN 'pending' THEN t.amount WHEN 'single' THEN 0 ELSE -p.amount END,
   CASE WHEN t.kind IN ('single', 'post_pending') THEN t.amount ELSE 0 END))
  AS x(account_id, debits_pending, debits_posted, credits_pending, credits_posted);

-- Validates the inserted rows as a set and applies their summed deltas with one UPDATE per account:
-- a hot account costs one row version per INSERT statement, not one per transfer.
CREATE FUNCTION ledger_transfers_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_rows n
             LEFT JOIN ledger_accounts d ON d.id = n.debit_account_id
             LEFT JOIN ledger_accounts c ON c.id = n.credit_account_id
             WHERE d.id IS NULL OR c.id IS NULL OR d.currency <> n.currency
                OR c.currency <> n.currency) THEN
    RAISE EXCEPTION 'ledger: transfer names a missing account or one of another currency'
      USING ERRCODE = 'check_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM new_rows n
             JOIN ledger_accounts a ON a.id IN (n.debit_account_id, n.credit_account_id)
             WHERE a.closed AND n.kind IN ('single', 'pending', 'post_pending')) THEN
    RAISE EXCEPTION 'ledger: transfer on a closed account' USING ERRCODE = 'check_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM new_rows n
             LEFT JOIN ledger_transfers p ON p.id = n.pending_id
             WHERE n.pending_id IS NOT NULL
               AND (p.id IS NULL OR p.kind <> 'pending'
                    OR p.debit_account_id <> n.debit_account_id
                    OR p.credit_account_id <> n.credit_account_id OR p.currency <> n.currency
                    OR n.amount > p.amount OR (n.kind <> 'post_pending' AND n.amount <> p.amount)
                    OR (n.kind = 'expire_pending'
                        AND (p.timeout_s = 0
                             OR n.created_at < p.created_at + p.timeout_s * interval '1 second'))))
  THEN
    RAISE EXCEPTION 'ledger: resolution does not match its pending transfer'
      USING ERRCODE = 'check_violation';
  END IF;
  UPDATE ledger_accounts a
  SET debits_pending = a.debits_pending + s.debits_pending,
      debits_posted = a.debits_posted + s.debits_posted,
      credits_pending = a.credits_pending + s.credits_pending,
      credits_posted = a.credits_posted + s.credits_posted
  FROM (SELECT x.account_id, sum(x.dp) AS debits_pending, sum(x.dpo) AS debits_posted,
               sum(x.cp) AS credits_pending, sum(x.cpo) AS credits_posted
        FROM new_rows n
        LEFT JOIN ledger_transfers p ON p.id = n.pending_id,
        LATERAL (VALUES
          (n.debit_account_id,
           CASE n.kind WHEN 'pending' THEN n.amount WHEN 'single' THEN 0 ELSE -p.amount END,
           CASE WHEN n.kind IN ('single', 'post_pending') THEN n.amount ELSE 0 END,
           0::bigint, 0::bigint),
          (n.credit_account_id, 0::bigint, 0::bigint,
           CASE n.kind WHEN 'pending' THEN n.amount WHEN 'single' THEN 0 ELSE -p.amount END,
           CASE WHEN n.kind IN ('single', 'post_pending') THEN n.amount ELSE 0 END))
          AS x(account_id, dp, dpo, cp, cpo)
        GROUP BY x.account_id) s
  WHERE a.id = s.account_id;
  RETURN NULL;
END
$$;
CREATE TRIGGER ledger_transfers_apply AFTER INSERT ON ledger_transfers
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_apply();

-- Append-only tables: corrections are new reversing transfers.
CREATE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger: % on % is not allowed (append-only)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE ON ledger_transfers
  FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_batches_immutable BEFORE UPDATE OR DELETE ON ledger_batches
  FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_batches_no_truncate BEFORE TRUNCATE ON ledger_batches
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_failures_immutable BEFORE UPDATE OR DELETE ON ledger_transfer_failures
  FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_failures_no_truncate BEFORE TRUNCATE ON ledger_transfer_failures
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts
  FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- An account's identity never changes; only its counters (through the journal) and `closed` do.
CREATE FUNCTION ledger_accounts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.id, NEW.type, NEW.currency, NEW.code, NEW.name, NEW.debits_must_not_exceed_credits,
      NEW.credits_must_not_exceed_debits, NEW.history, NEW.created_at)
     IS DISTINCT FROM
     (OLD.id, OLD.type, OLD.currency, OLD.code, OLD.name, OLD.debits_must_not_exceed_credits,
      OLD.credits_must_not_exceed_debits, OLD.history, OLD.created_at) THEN
    RAISE EXCEPTION 'ledger: account % identity and limit flags are immutable', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER ledger_accounts_guard BEFORE UPDATE ON ledger_accounts
  FOR EACH ROW EXECUTE FUNCTION ledger_accounts_guard();

-- Per currency, debits equal credits over all accounts (posted and pending), checked at commit. Every
-- transfer row is balanced by construction (one amount, one debit and one credit account); what can
-- break the books is a counter written by hand, and this catches it. Runs once per currency and
-- transaction (the custom setting remembers it), scanning that currency's accounts: the chart of
-- accounts is small (DESIGN.md §4).
CREATE FUNCTION ledger_check_currency_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  flag text := 'paygate.ledger_balanced_' || lower(NEW.currency);
  unbalanced boolean;
BEGIN
  IF current_setting(flag, true) = txid_current()::text THEN
    RETURN NULL;
  END IF;
  SELECT sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)
  INTO unbalanced FROM ledger_accounts WHERE currency = NEW.currency;
  IF unbalanced THEN
    RAISE EXCEPTION 'ledger: debits and credits differ in currency %', NEW.currency
      USING ERRCODE = 'check_violation';
  END IF;
  PERFORM set_config(flag, txid_current()::text, true);
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER ledger_accounts_balanced AFTER UPDATE ON ledger_accounts
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.debits_pending IS DISTINCT FROM NEW.debits_pending
        OR OLD.debits_posted IS DISTINCT FROM NEW.debits_posted
        OR OLD.credits_pending IS DISTINCT FROM NEW.credits_pending
        OR OLD.credits_posted IS DISTINCT FROM NEW.credits_posted)
  EXECUTE FUNCTION ledger_check_currency_balanced();

-- The bytes a batch's hash covers: every column of every transfer, text fields length-prefixed so no
-- two different rows share an encoding; the timestamp as epoch microseconds (independent of TimeZone).
CREATE FUNCTION ledger_transfer_canonical(t ledger_transfers) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT concat_ws('|', length(t.id) || ':' || t.id, t.debit_account_id, t.credit_account_id,
                   t.amount, t.currency, t.kind, t.linked,
                   length(coalesce(t.pending_id, '')) || ':' || coalesce(t.pending_id, ''),
                   t.timeout_s, t.reason_code, length(t.external_ref) || ':' || t.external_ref,
                   length(t.entry_id) || ':' || t.entry_id, t.batch_id,
                   (extract(epoch FROM t.created_at) * 1000000)::bigint)
$$;

CREATE FUNCTION ledger_batch_hash(batch bigint, prev bytea) RETURNS bytea
LANGUAGE sql STABLE AS $$
  SELECT sha256(prev || convert_to(batch::text || E'\n' ||
                coalesce(string_agg(ledger_transfer_canonical(t), E'\n' ORDER BY t.id), ''),
                'UTF8'))
  FROM ledger_transfers t WHERE t.batch_id = batch
$$;

-- One account's postings (the ledger_postings arithmetic for a single account), written so the
-- planner can use the debit/credit history indexes: statements and balances at an instant.
CREATE FUNCTION ledger_account_postings(account bigint)
RETURNS TABLE (transfer_id text, created_at timestamptz, kind text, reason_code integer,
               external_ref text, debits_pending bigint, debits_posted bigint,
               credits_pending bigint, credits_posted bigint)
LANGUAGE sql STABLE AS $$
  SELECT t.id, t.created_at, t.kind, t.reason_code, t.external_ref,
         CASE WHEN t.debit_account_id <> account THEN 0
              WHEN t.kind = 'pending' THEN t.amount WHEN t.kind = 'single' THEN 0
              ELSE -p.amount END,
         CASE WHEN t.debit_account_id = account AND t.kind IN ('single', 'post_pending')
              THEN t.amount ELSE 0 END,
         CASE WHEN t.credit_account_id <> account THEN 0
              WHEN t.kind = 'pending' THEN t.amount WHEN t.kind = 'single' THEN 0
              ELSE -p.amount END,
         CASE WHEN t.credit_account_id = account AND t.kind IN ('single', 'post_pending')
              THEN t.amount ELSE 0 END
  FROM ledger_transfers t
  LEFT JOIN ledger_transfers p ON p.id = t.pending_id
  WHERE t.debit_account_id = account OR t.credit_account_id = account
$$;
