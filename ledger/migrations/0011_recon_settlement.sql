-- Many-to-one net settlement lines (issue 8, "a net settlement line covering many orders";
-- ledger/recon/settlement.h): the provider pays one amount to the bank for many bill lines. Each
-- settlement line is recorded once (idempotent on the provider's reference), and each bill line
-- and each of our items is settled at most once: the unique constraints below refuse a second
-- settlement even from two finance users at the same moment.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

-- Whether the import posted the day's net to the bank itself (recon.accounts[].settle_on_import,
-- the default) or left its lines to wait for their settlement line. Existing imports did post it.
ALTER TABLE recon_imports ADD COLUMN settled_on_import boolean NOT NULL DEFAULT true;

-- One settlement line of a provider account: what the bank received (amount_minor, negative
-- when the provider took money back), what the covered lines say it should be (expected_minor:
-- payments minus refunds minus fees), the ledger transfer Dr bank / Cr clearing, and the
-- settlement_mismatch exception raised when the two disagree.
CREATE TABLE recon_settlements (
  id bigserial PRIMARY KEY,
  provider text NOT NULL,
  merchant_account text NOT NULL,
  provider_reference text NOT NULL CHECK (length(provider_reference) BETWEEN 1 AND 128),
  value_date date NOT NULL,
  currency char(3) NOT NULL,
  amount_minor bigint NOT NULL,
  expected_minor bigint NOT NULL,
  line_count bigint NOT NULL CHECK (line_count > 0),
  transfer_id text NOT NULL DEFAULT '',
  exception_id bigint REFERENCES recon_exceptions (id),
  principal text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT recon_settlements_reference_once UNIQUE (provider, merchant_account, provider_reference)
);
CREATE FUNCTION recon_settlements_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'recon_settlements rows are never deleted' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER recon_settlements_no_delete BEFORE DELETE OR TRUNCATE ON recon_settlements
  FOR EACH STATEMENT EXECUTE FUNCTION recon_settlements_keep();

-- The bill lines one settlement line covers. A line once (the primary key), an item once (the
-- unique constraint; lines nobody matched have no item and NULLs never collide). A whole day's
-- settlement writes a million rows by INSERT ... SELECT from recon_bill_items itself, so like
-- recon_bill_items (0009) they carry no foreign keys: the per-row checks would cost more than the
-- insert. The settlement row is written in the same transaction and, like the bill lines' imports,
-- is never deleted (the trigger above).
CREATE TABLE recon_settlement_items (
  settlement_id bigint NOT NULL,
  import_id bigint NOT NULL,
  line_no integer NOT NULL,
  our_kind text,
  our_id text,
  net_minor bigint NOT NULL,
  PRIMARY KEY (import_id, line_no),
  CONSTRAINT recon_settlement_items_item_once UNIQUE (our_kind, our_id)
);
CREATE INDEX recon_settlement_items_settlement ON recon_settlement_items (settlement_id);

-- A settlement line whose amount is not the covered lines' net is a named exception like the
-- others (delta: expected minus received, what the clearing account keeps).
ALTER TABLE recon_exceptions DROP CONSTRAINT recon_exceptions_class_check;
ALTER TABLE recon_exceptions ADD CONSTRAINT recon_exceptions_class_check
  CHECK (class IN ('missing_ours', 'missing_provider', 'amount_mismatch', 'status_mismatch',
                   'timing', 'duplicate', 'settlement_mismatch'));
