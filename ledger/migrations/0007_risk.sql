-- Fraud rules (issue 5, DESIGN.md §7): the inputs and outcomes of every risk decision, the lists
-- rules look items up in (with an append-only audit of every change), the review queue, shadow-mode
-- differences, and rulesets pushed over the API. gateway/fraud/ reads and writes these tables;
-- gateway/risk/ is the pure engine.
-- Personal data never appears here in plain text: events carry the keyed hashes the gateway
-- computed (gateway/fraud/hashing.h), and list items of personal kinds are stored hashed.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

-- Every decided event, exactly as evaluated (paygate.risk.pb.Event, binary). Aggregates are rebuilt
-- from these rows at start-up, and every daemon tails the rows the others write (by id, skipping
-- its own `instance`), so velocity counts agree across restarts and instances. event_time is the
-- event's own time: windows are measured on it, never on the insertion time.
CREATE TABLE risk_events (
  id bigserial PRIMARY KEY,
  instance uuid NOT NULL,
  event_type text NOT NULL CHECK (event_type IN ('premium_payment', 'refund', 'claim_payout',
                                                 'payout_account_changed', 'policy_cancelled')),
  event_time timestamptz NOT NULL,
  payload bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX risk_events_time ON risk_events (event_time);

-- One decision per event: what the live ruleset said, with the rules that fired, their inputs and
-- reason texts (paygate.risk.pb.Decision in protobuf's JSON mapping), about which object.
CREATE TABLE risk_decisions (
  id bigserial PRIMARY KEY,
  event_id bigint NOT NULL UNIQUE REFERENCES risk_events (id),
  object_type text NOT NULL CHECK (object_type IN ('payment', 'refund', 'payout', 'policy')),
  object_id text NOT NULL,
  principal text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('allow', 'review', 'block', 'hard_block')),
  score integer NOT NULL,
  decided_by text NOT NULL,
  ruleset_name text NOT NULL,
  ruleset_version text NOT NULL,
  lists_version bigint NOT NULL,
  eval_ns bigint NOT NULL CHECK (eval_ns >= 0),
  timed_out boolean NOT NULL,
  reason_codes text[] NOT NULL,
  decision jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX risk_decisions_object ON risk_decisions (object_type, object_id);

-- Lists and their items. A list's kind is fixed when it is created. `item` is the stored form:
-- the keyed hash for personal kinds (account_hash, id_number, name), the text otherwise (device
-- ids, IPs and CIDR blocks, BINs and BIN ranges, countries, strings).
CREATE TABLE risk_lists (
  name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_]{1,64}$'),
  kind text NOT NULL CHECK (kind IN ('account_hash', 'device_id', 'id_number', 'name', 'ip', 'bin',
                                     'country', 'string')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE risk_list_items (
  list_name text NOT NULL REFERENCES risk_lists (name),
  item text NOT NULL CHECK (length(item) BETWEEN 1 AND 128),
  expires_at timestamptz,
  note text NOT NULL DEFAULT '' CHECK (length(note) <= 256),
  added_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (list_name, item)
);

-- Every list change: who, what, the item before and after (JSON of the row, or null). Append-only:
-- the database refuses UPDATE and DELETE. Its highest id is the lists' version: every daemon
-- reloads its lists when it changes, and each decision records the version it saw.
CREATE TABLE risk_list_audit (
  id bigserial PRIMARY KEY,
  principal text NOT NULL,
  action text NOT NULL CHECK (action IN ('create_list', 'add_item', 'update_item', 'remove_item')),
  list_name text NOT NULL,
  item text NOT NULL DEFAULT '',
  before jsonb,
  after jsonb,
  at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION risk_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'risk: % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER risk_list_audit_append_only BEFORE UPDATE OR DELETE ON risk_list_audit
  FOR EACH ROW EXECUTE FUNCTION risk_append_only();
CREATE TRIGGER risk_list_audit_no_truncate BEFORE TRUNCATE ON risk_list_audit
  FOR EACH STATEMENT EXECUTE FUNCTION risk_append_only();

-- The review queue: objects a `review` outcome holds until a principal with role risk, other than
-- the one who submitted the object, approves or declines it.
CREATE TABLE risk_reviews (
  id text PRIMARY KEY CHECK (id ~ '^rev_[a-z0-9]{20,40}$'),
  object_type text NOT NULL CHECK (object_type IN ('payment', 'refund', 'payout', 'policy')),
  object_id text NOT NULL,
  decision_id bigint NOT NULL REFERENCES risk_decisions (id),
  submitted_by text NOT NULL,
  status text NOT NULL CHECK (status IN ('open', 'approved', 'declined')),
  resolved_by text,
  resolved_at timestamptz,
  note text NOT NULL DEFAULT '' CHECK (length(note) <= 256),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT risk_reviews_object_unique UNIQUE (object_type, object_id),
  CONSTRAINT risk_reviews_second_principal CHECK (resolved_by IS NULL OR resolved_by <> submitted_by),
  CONSTRAINT risk_reviews_resolution CHECK ((status = 'open') = (resolved_by IS NULL))
);
CREATE INDEX risk_reviews_open ON risk_reviews (created_at) WHERE status = 'open';
CREATE TRIGGER risk_reviews_terminal BEFORE UPDATE ON risk_reviews FOR EACH ROW
  EXECUTE FUNCTION payments_guard_terminal('approved', 'declined');

-- Shadow mode: a candidate ruleset's decision where it differs from the live one (never acted on).
CREATE TABLE risk_shadow_diffs (
  id bigserial PRIMARY KEY,
  event_id bigint NOT NULL REFERENCES risk_events (id),
  live_outcome text NOT NULL,
  shadow_outcome text NOT NULL,
  shadow_ruleset_name text NOT NULL,
  shadow_ruleset_version text NOT NULL,
  live_score integer NOT NULL,
  shadow_score integer NOT NULL,
  fired_only_live text[] NOT NULL,
  fired_only_shadow text[] NOT NULL,
  shadow_decision jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX risk_shadow_diffs_event ON risk_shadow_diffs (event_id);

-- Rulesets loaded over the API or by SIGHUP, live or shadow: an audit of who changed the rules,
-- and how the other daemons learn of a change (they poll for rows written by another instance).
CREATE TABLE risk_rulesets (
  id bigserial PRIMARY KEY,
  instance uuid NOT NULL,
  target text NOT NULL CHECK (target IN ('live', 'shadow')),
  origin text NOT NULL CHECK (origin IN ('api', 'file')),
  name text NOT NULL,
  version text NOT NULL,
  source text NOT NULL,
  principal text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Collections: an order held by a `review` outcome waits in requires_review, without an attempt,
-- until it is approved (-> processing, sent to the provider) or declined (-> failed).
ALTER TABLE payment_orders DROP CONSTRAINT payment_orders_status_check;
ALTER TABLE payment_orders ADD CONSTRAINT payment_orders_status_check
  CHECK (status IN ('requires_review', 'processing', 'pending', 'succeeded', 'failed', 'closed'));
-- The payer's history feeds customer.created_at.
CREATE INDEX payment_orders_payer ON payment_orders (payer_id, created_at) WHERE payer_id <> '';
