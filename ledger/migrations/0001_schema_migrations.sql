-- Migration bookkeeping (ledger/db/migrations.h) and a sanity table that marks this database as a
-- paygate database. Migrations run inside a transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

CREATE TABLE paygate_schema_migrations (
  version integer PRIMARY KEY CHECK (version > 0),
  name text NOT NULL,
  checksum_sha256 text NOT NULL CHECK (checksum_sha256 ~ '^[0-9a-f]{64}$'),
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row, created with the schema: its id tells operators (and tests) which database a daemon talks to.
CREATE TABLE paygate_instance (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX paygate_instance_single_row ON paygate_instance ((true));
INSERT INTO paygate_instance DEFAULT VALUES;
