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

-- The bill lines one settlement line covers. A line once (the primary key), an item once (the
-- unique constraint; lines nobody matched have no item and NULLs never collide).
CREATE TABLE recon_settlement_items (
  settlement_id bigint NOT NULL REFERENCES recon_settlements (id),
  import_id bigint NOT NULL,
  line_no integer NOT NULL,
  our_kind text,
  our_id text,
  net_minor bigint NOT NULL,
  PRIMARY KEY (import_id, line_no),
  CONSTRAINT recon_settlement_items_item_once UNIQUE (our_kind, our_id),
  CONSTRAINT recon_settlement_items_line FOREIGN KEY (import_id, line_no)
    REFERENCES recon_bill_items (import_id, line_no)
);
CREATE INDEX recon_settlement_items_settlement ON recon_settlement_items (settlement_id);

-- A settlement line whose amount is not the covered lines' net is a named exception like the
-- others (delta: expected minus received, what the clearing account keeps).
ALTER TABLE recon_exceptions DROP CONSTRAINT recon_exceptions_class_check;
ALTER TABLE recon_exceptions ADD CONSTRAINT recon_exceptions_class_check
  CHECK (class IN ('missing_ours', 'missing_provider', 'amount_mismatch', 'status_mismatch',
                   'timing', 'duplicate', 'settlement_mismatch'));
