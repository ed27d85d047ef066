-- Tables of the ledger benchmark's anchor (anchor.sql), loaded by run.sh with psql -v merchants=M into a
-- database of their own: a journal row with a primary key and two counters per account, one hot account
-- (id 0). No foreign keys or triggers: the anchor does the bare writes.
DROP TABLE IF EXISTS anchor_transfers, anchor_accounts;
CREATE TABLE anchor_accounts (
  id bigint PRIMARY KEY,
  debits bigint NOT NULL DEFAULT 0,
  credits bigint NOT NULL DEFAULT 0
);
CREATE TABLE anchor_transfers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  debit_account_id bigint NOT NULL,
  credit_account_id bigint NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO anchor_accounts (id) SELECT generate_series(0, :merchants);
