-- Claim payouts (issue 7, DESIGN.md §3-§4): payouts, their provider attempts, maker-checker
-- approvals. State machines live in gateway/payouts/state.cc; the database backs them up where it
-- is cheap: a terminal status never changes, at most one attempt is open per payout (the partial
-- unique index is the "never twice" guarantee in its last line of defence), an approval is never
-- by the submitter and never twice by the same principal, beneficiary data is only ever stored
-- encrypted (AES-256-GCM blobs from keys/, the row identity as associated data) beside a masked
-- form for display.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

CREATE TABLE payouts (
  id text PRIMARY KEY CHECK (id ~ '^po_[a-z0-9]{20,40}$'),
  principal text NOT NULL,
  -- The Idempotency-Key of the POST that created it: a retried create never makes a second payout.
  client_reference text NOT NULL CHECK (length(client_reference) BETWEEN 1 AND 255),
  claim_number text NOT NULL CHECK (length(claim_number) BETWEEN 1 AND 64),
  policy_number text NOT NULL CHECK (length(policy_number) BETWEEN 1 AND 64),
  claimant_id text NOT NULL DEFAULT '' CHECK (length(claimant_id) <= 64),
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  method text NOT NULL,
  reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 256),
  -- Beneficiary: ciphertext (keys::FieldCipher blobs) and the masked form shown in responses,
  -- events and logs. account_type and bank are not personal data and stay readable.
  beneficiary_account_type text NOT NULL,
  beneficiary_bank text NOT NULL DEFAULT '' CHECK (length(beneficiary_bank) <= 128),
  beneficiary_name_enc bytea NOT NULL,
  beneficiary_account_enc bytea NOT NULL,
  beneficiary_id_number_enc bytea,
  beneficiary_name_masked text NOT NULL,
  beneficiary_account_masked text NOT NULL,
  beneficiary_id_number_masked text NOT NULL DEFAULT '',
  -- A keyed hash of the account (gateway/fraud/hashing.h): finds an account shared across claimants
  -- without the plaintext. Empty when the fraud rules are off.
  beneficiary_account_hash text NOT NULL DEFAULT '',
  status text NOT NULL CHECK (status IN ('requires_review', 'awaiting_approval', 'processing',
                                         'succeeded', 'failed', 'cancelled', 'manual_review')),
  -- How many approvals the payout needs before any provider call (0, 1 or 2).
  approvals_required integer NOT NULL CHECK (approvals_required BETWEEN 0 AND 2),
  approvals_count integer NOT NULL DEFAULT 0 CHECK (approvals_count >= 0),
  risk_outcome text NOT NULL DEFAULT '',
  risk_reasons text NOT NULL DEFAULT '' CHECK (length(risk_reasons) <= 1000),
  failure_code text NOT NULL DEFAULT '',
  failure_message text NOT NULL DEFAULT '',
  -- Why it needs a person (manual_review): the evidence of the inquiries that did not settle it.
  manual_reason text NOT NULL DEFAULT '' CHECK (length(manual_reason) <= 2000),
  attempt_count integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
  -- Ledger state, so the books of a payout can be checked against its status at a glance.
  paid_minor bigint NOT NULL DEFAULT 0 CHECK (paid_minor >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT payouts_client_reference_unique UNIQUE (principal, client_reference),
  CONSTRAINT payouts_paid_iff_succeeded CHECK ((status = 'succeeded') = (paid_minor > 0)),
  CONSTRAINT payouts_paid_le_amount CHECK (paid_minor <= amount_minor)
);
CREATE INDEX payouts_list ON payouts (principal, created_at DESC, id DESC);
CREATE INDEX payouts_account_hash ON payouts (beneficiary_account_hash, created_at)
  WHERE beneficiary_account_hash <> '';
CREATE INDEX payouts_claimant ON payouts (principal, claimant_id, created_at DESC)
  WHERE claimant_id <> '';
CREATE INDEX payouts_manual ON payouts (updated_at) WHERE status = 'manual_review';

-- One provider call sequence for a payout. provider_reference ("<payout id>_<seq>") is the
-- provider's idempotency key: a re-sent request for the same attempt never executes twice.
CREATE TABLE payout_attempts (
  payout_id text NOT NULL REFERENCES payouts (id),
  seq integer NOT NULL CHECK (seq > 0),
  provider text NOT NULL,
  merchant_account text NOT NULL,
  provider_reference text NOT NULL,
  routing_reason text NOT NULL,
  status text NOT NULL
    CHECK (status IN ('sending', 'pending', 'unknown', 'succeeded', 'declined', 'not_sent')),
  provider_transaction_id text NOT NULL DEFAULT '',
  decline_code text NOT NULL DEFAULT '',
  detail text NOT NULL DEFAULT '',
  -- Inquiries made about this attempt and what they said, for the manual-resolution evidence.
  inquiries integer NOT NULL DEFAULT 0,
  last_inquiry text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (payout_id, seq),
  CONSTRAINT payout_attempts_reference_unique UNIQUE (provider, merchant_account, provider_reference)
);
-- One attempt at a time: a second open attempt is a unique violation, whatever the code does.
CREATE UNIQUE INDEX payout_attempts_one_open ON payout_attempts (payout_id)
  WHERE status IN ('sending', 'pending', 'unknown');

-- Maker-checker: one row per approval or rejection, by distinct principals, never the submitter.
CREATE TABLE payout_approvals (
  payout_id text NOT NULL REFERENCES payouts (id),
  principal text NOT NULL,
  decision text NOT NULL CHECK (decision IN ('approve', 'reject')),
  note text NOT NULL DEFAULT '' CHECK (length(note) <= 256),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (payout_id, principal)
);

CREATE FUNCTION payout_approvals_not_submitter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM payouts WHERE id = NEW.payout_id AND principal = NEW.principal) THEN
    RAISE EXCEPTION 'payouts: % cannot approve or reject its own payout %', NEW.principal,
      NEW.payout_id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER payout_approvals_not_submitter BEFORE INSERT ON payout_approvals FOR EACH ROW
  EXECUTE FUNCTION payout_approvals_not_submitter();
-- Approvals are a record: never changed or removed.
CREATE FUNCTION payout_approvals_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'payouts: approvals are append-only' USING ERRCODE = 'check_violation';
END
$$;
CREATE TRIGGER payout_approvals_append_only BEFORE UPDATE OR DELETE ON payout_approvals
  FOR EACH ROW EXECUTE FUNCTION payout_approvals_append_only();

-- Terminal statuses never move (payments_guard_terminal from 0003 serves any table with an id).
CREATE TRIGGER payouts_terminal BEFORE UPDATE ON payouts FOR EACH ROW
  EXECUTE FUNCTION payments_guard_terminal('succeeded', 'failed', 'cancelled');

CREATE FUNCTION payout_attempts_guard_terminal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IS DISTINCT FROM NEW.status
     AND OLD.status IN ('succeeded', 'declined', 'not_sent') THEN
    RAISE EXCEPTION 'payouts: attempt %/% is % and cannot become %', OLD.payout_id, OLD.seq,
      OLD.status, NEW.status USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER payout_attempts_terminal BEFORE UPDATE ON payout_attempts FOR EACH ROW
  EXECUTE FUNCTION payout_attempts_guard_terminal();

-- Payout callbacks are stored beside the payment ones (same unique key, same janitor task).
ALTER TABLE provider_callbacks DROP CONSTRAINT provider_callbacks_kind_check;
ALTER TABLE provider_callbacks ADD CONSTRAINT provider_callbacks_kind_check
  CHECK (kind IN ('payment', 'refund', 'payout'));

-- The payouts' janitor work: inquiries about open attempts (object: the provider reference).
ALTER TABLE janitor_tasks DROP CONSTRAINT janitor_tasks_kind_check;
ALTER TABLE janitor_tasks ADD CONSTRAINT janitor_tasks_kind_check
  CHECK (kind IN ('inquire_attempt', 'inquire_refund', 'expire_order', 'apply_callback',
                  'payout_inquire'));
