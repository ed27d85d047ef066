-- Reconciliation for finance (issue 8, DESIGN.md §3): imported bill files with their versions, the
-- bill's lines with the match each got, the exceptions finance works through, and the audit trail
-- of finance actions. ledger/recon/ writes these tables; gateway/recon/ serves them.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

-- One imported bill file. Re-importing the same bytes for the same provider, account and day is a
-- no-op (the unique key); different bytes for the same day are a new version that supersedes the
-- previous one (exactly one current version per day), with the diff between the two recorded.
CREATE TABLE recon_imports (
  id bigserial PRIMARY KEY,
  provider text NOT NULL,
  merchant_account text NOT NULL,
  bill_date date NOT NULL,
  file_sha256 text NOT NULL CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
  file_name text NOT NULL DEFAULT '' CHECK (length(file_name) <= 255),
  version integer NOT NULL CHECK (version > 0),
  previous_import_id bigint REFERENCES recon_imports (id),
  state text NOT NULL CHECK (state IN ('current', 'superseded')),
  principal text NOT NULL,
  line_count bigint NOT NULL DEFAULT 0 CHECK (line_count >= 0),
  -- The provider's day-end figures, as the file states them (summary checked against the rows).
  payment_count bigint NOT NULL DEFAULT 0,
  payment_amount_minor bigint NOT NULL DEFAULT 0,
  refund_count bigint NOT NULL DEFAULT 0,
  refund_amount_minor bigint NOT NULL DEFAULT 0,
  fee_amount_minor bigint NOT NULL DEFAULT 0,
  currency char(3) NOT NULL DEFAULT 'CNY',
  -- Posted to the ledger for this version (a corrected version posts only the difference): the
  -- settlement to the bank (paid minus refunded minus fees) and the within-tolerance differences
  -- of matched lines, which go to suspense.
  settlement_minor bigint NOT NULL DEFAULT 0,
  tolerated_minor bigint NOT NULL DEFAULT 0,
  -- Balance reconciliation after this import's postings: the clearing account's balance (debits
  -- minus credits), what the open exceptions explain of it, and the unexplained drift.
  clearing_balance_minor bigint NOT NULL DEFAULT 0,
  explained_minor bigint NOT NULL DEFAULT 0,
  drift_minor bigint NOT NULL DEFAULT 0,
  -- Against the previous version: lines only in this one, only in the previous, or changed.
  diff_added bigint NOT NULL DEFAULT 0,
  diff_removed bigint NOT NULL DEFAULT 0,
  diff_changed bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT recon_imports_file_unique UNIQUE (provider, merchant_account, bill_date, file_sha256),
  CONSTRAINT recon_imports_version_unique UNIQUE (provider, merchant_account, bill_date, version)
);
CREATE UNIQUE INDEX recon_imports_one_current ON recon_imports (provider, merchant_account, bill_date)
  WHERE state = 'current';
CREATE INDEX recon_imports_date ON recon_imports (bill_date, provider, merchant_account);
-- Imports are the history finance audits, and recon_bill_items names them without a foreign key
-- (below): the database refuses to delete or truncate them, so no line can lose its import.
CREATE FUNCTION recon_imports_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'recon_imports rows are never deleted' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER recon_imports_no_delete BEFORE DELETE OR TRUNCATE ON recon_imports
  FOR EACH STATEMENT EXECUTE FUNCTION recon_imports_keep();

-- Counts and amounts per class of one import, written with its lines (which never change
-- afterwards): a report reads these rows instead of aggregating a million lines. Our amounts of
-- a class are what our side holds of it (the bill's lines and, for missing_provider and timing,
-- our items the bill lacks); theirs are the bill's line amounts.
CREATE TABLE recon_import_classes (
  import_id bigint NOT NULL REFERENCES recon_imports (id),
  class text NOT NULL CHECK (class IN ('matched', 'missing_ours', 'missing_provider',
                                       'amount_mismatch', 'status_mismatch', 'timing',
                                       'duplicate')),
  count bigint NOT NULL CHECK (count > 0),
  our_amount_minor bigint NOT NULL,
  their_amount_minor bigint NOT NULL,
  PRIMARY KEY (import_id, class)
);

-- One line of a bill, normalised (adapters/common/bill.h), with the result of matching it. Written
-- by binary COPY, a million rows an import: no foreign key to recon_imports, whose check is a
-- per-row trigger that cost more than the rest of the load (the import inserts its recon_imports
-- row in the same transaction, and imports are never deleted: recon_imports_no_delete). our_kind/our_id name the internal item it matched ('attempt' "<order id>:<seq>",
-- 'refund' "<refund id>"; payouts will be a third kind): each internal item matches at most one
-- line of the current bills (the unique index below), and a line is one row, so it matches at
-- most one item. A superseded version's lines no longer hold their items.
CREATE TABLE recon_bill_items (
  import_id bigint NOT NULL,
  line_no integer NOT NULL CHECK (line_no > 0),
  kind text NOT NULL CHECK (kind IN ('payment', 'refund')),
  provider_transaction_id text NOT NULL,
  merchant_reference text NOT NULL,
  provider_refund_id text NOT NULL,
  refund_reference text NOT NULL,
  amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
  fee_minor bigint NOT NULL,
  currency char(3) NOT NULL,
  occurred_at timestamptz NOT NULL,
  status text NOT NULL,
  class text NOT NULL CHECK (class IN ('matched', 'missing_ours', 'amount_mismatch',
                                       'status_mismatch', 'timing', 'duplicate')),
  match_rule text NOT NULL CHECK (match_rule IN ('', 'reference', 'transaction_id', 'rule')),
  our_kind text CHECK (our_kind IN ('attempt', 'refund', 'payout')),
  our_id text,
  our_amount_minor bigint,
  superseded boolean NOT NULL DEFAULT false,
  PRIMARY KEY (import_id, line_no),
  CONSTRAINT recon_bill_items_our_pair CHECK ((our_kind IS NULL) = (our_id IS NULL))
);
CREATE UNIQUE INDEX recon_bill_items_our_once ON recon_bill_items (our_kind, our_id)
  WHERE our_id IS NOT NULL AND NOT superseded;

-- Whatever did not agree, as a named exception that somebody resolves (never silently).
-- delta_minor is what the disagreement leaves in the clearing account (ours minus theirs):
-- resolving with an adjustment posts it to suspense, Dr suspense / Cr clearing when positive.
CREATE TABLE recon_exceptions (
  id bigserial PRIMARY KEY,
  import_id bigint NOT NULL REFERENCES recon_imports (id),
  class text NOT NULL CHECK (class IN ('missing_ours', 'missing_provider', 'amount_mismatch',
                                       'status_mismatch', 'timing', 'duplicate')),
  status text NOT NULL CHECK (status IN ('open', 'assigned', 'resolved', 'superseded')),
  -- The most urgent first: a status mismatch where the provider says paid is 1.
  priority integer NOT NULL CHECK (priority BETWEEN 1 AND 9),
  provider text NOT NULL,
  merchant_account text NOT NULL,
  bill_date date NOT NULL,
  line_no integer,
  our_kind text CHECK (our_kind IN ('attempt', 'refund', 'payout')),
  our_id text,
  reference text NOT NULL DEFAULT '',
  our_amount_minor bigint,
  their_amount_minor bigint,
  delta_minor bigint NOT NULL,
  currency char(3) NOT NULL,
  detail text NOT NULL DEFAULT '',
  assignee text NOT NULL DEFAULT '',
  resolution text NOT NULL DEFAULT '',
  adjustment_transfer_id text NOT NULL DEFAULT '',
  resolved_by text NOT NULL DEFAULT '',
  resolved_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT recon_exceptions_resolved CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
CREATE INDEX recon_exceptions_open ON recon_exceptions (priority, id) WHERE status IN ('open', 'assigned');
CREATE INDEX recon_exceptions_day ON recon_exceptions (bill_date, provider, merchant_account);
CREATE INDEX recon_exceptions_item ON recon_exceptions (our_kind, our_id) WHERE our_id IS NOT NULL;

CREATE TABLE recon_exception_comments (
  id bigserial PRIMARY KEY,
  exception_id bigint NOT NULL REFERENCES recon_exceptions (id),
  principal text NOT NULL,
  body text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recon_exception_comments_exception ON recon_exception_comments (exception_id, id);

-- Every finance action (import, assign, comment, resolve) with its principal. Append-only: the
-- database itself rejects UPDATE and DELETE, as it does on the journal.
CREATE TABLE recon_audit (
  id bigserial PRIMARY KEY,
  principal text NOT NULL,
  action text NOT NULL,
  object_type text NOT NULL,
  object_id text NOT NULL,
  detail text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION recon_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'recon_audit is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER recon_audit_no_change BEFORE UPDATE OR DELETE ON recon_audit
  FOR EACH STATEMENT EXECUTE FUNCTION recon_audit_append_only();

-- Status inquiries for status mismatches go to the payments janitor's schedule (kind
-- inquire_attempt / inquire_refund), the same table gateway/payments uses.
