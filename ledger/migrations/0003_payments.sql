-- Premium collections (issue 4, DESIGN.md §3-§4): orders, attempts, refunds, verified provider
-- callbacks, the outbox of events to clients, and the janitor's persistent schedule.
-- State machines live in gateway/payments/state.cc; the database backs them up where it is cheap:
-- a terminal status never changes (triggers below), money columns never go negative, refunds never
-- exceed the captured amount, each provider reference and callback is unique.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

-- One business intent: a customer paying one premium. Unique per client and client reference (the
-- Idempotency-Key of the POST that created it), so a retried create never makes a second order.
CREATE TABLE payment_orders (
  id text PRIMARY KEY CHECK (id ~ '^pay_[a-z0-9]{20,40}$'),
  principal text NOT NULL,
  client_reference text NOT NULL CHECK (length(client_reference) BETWEEN 1 AND 255),
  policy_number text NOT NULL CHECK (length(policy_number) BETWEEN 1 AND 64),
  payer_id text NOT NULL DEFAULT '' CHECK (length(payer_id) <= 64),
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 128),
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  method text NOT NULL,
  provider text NOT NULL,
  merchant_account text NOT NULL,
  status text NOT NULL CHECK (status IN ('processing', 'pending', 'succeeded', 'failed', 'closed')),
  captured_minor bigint NOT NULL DEFAULT 0 CHECK (captured_minor >= 0),
  -- Refunds that are not failed (processing or succeeded): reserved against captured_minor.
  refund_reserved_minor bigint NOT NULL DEFAULT 0 CHECK (refund_reserved_minor >= 0),
  refunded_minor bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
  failure_code text NOT NULL DEFAULT '',
  failure_message text NOT NULL DEFAULT '',
  next_action_type text NOT NULL DEFAULT '',
  next_action_value text NOT NULL DEFAULT '',
  attempt_count integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT payment_orders_client_reference_unique UNIQUE (principal, client_reference),
  CONSTRAINT payment_orders_captured_le_amount CHECK (captured_minor <= amount_minor),
  CONSTRAINT payment_orders_refunds_le_captured
    CHECK (refunded_minor <= refund_reserved_minor AND refund_reserved_minor <= captured_minor),
  CONSTRAINT payment_orders_captured_iff_succeeded CHECK ((status = 'succeeded') = (captured_minor > 0))
);
CREATE INDEX payment_orders_list ON payment_orders (principal, created_at DESC, id DESC);
CREATE INDEX payment_orders_policy ON payment_orders (principal, policy_number, created_at DESC);

-- One provider call sequence for an order. provider_reference is what the provider knows us by.
CREATE TABLE payment_attempts (
  order_id text NOT NULL REFERENCES payment_orders (id),
  seq integer NOT NULL CHECK (seq > 0),
  provider text NOT NULL,
  merchant_account text NOT NULL,
  provider_reference text NOT NULL,
  routing_reason text NOT NULL,
  status text NOT NULL
    CHECK (status IN ('sending', 'pending', 'unknown', 'succeeded', 'declined', 'not_sent', 'closed')),
  provider_transaction_id text NOT NULL DEFAULT '',
  detail text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, seq),
  CONSTRAINT payment_attempts_reference_unique UNIQUE (provider, merchant_account, provider_reference)
);

CREATE TABLE payment_refunds (
  id text PRIMARY KEY CHECK (id ~ '^re_[a-z0-9]{20,40}$'),
  order_id text NOT NULL REFERENCES payment_orders (id),
  principal text NOT NULL,
  client_reference text NOT NULL CHECK (length(client_reference) BETWEEN 1 AND 255),
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  currency char(3) NOT NULL,
  reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 128),
  status text NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
  provider_reference text NOT NULL,
  provider_transaction_id text NOT NULL DEFAULT '',
  failure_code text NOT NULL DEFAULT '',
  failure_message text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT payment_refunds_client_reference_unique UNIQUE (principal, client_reference),
  CONSTRAINT payment_refunds_reference_unique UNIQUE (provider_reference)
);
CREATE INDEX payment_refunds_order ON payment_refunds (order_id);

-- Terminal statuses never move (DESIGN.md §4: "terminal states never move backwards").
CREATE FUNCTION payments_guard_terminal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IS DISTINCT FROM NEW.status AND OLD.status = ANY (TG_ARGV) THEN
    RAISE EXCEPTION 'payments: % % is % and cannot become %', TG_TABLE_NAME, OLD.id, OLD.status,
      NEW.status USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER payment_orders_terminal BEFORE UPDATE ON payment_orders FOR EACH ROW
  EXECUTE FUNCTION payments_guard_terminal('succeeded', 'failed', 'closed');
CREATE TRIGGER payment_refunds_terminal BEFORE UPDATE ON payment_refunds FOR EACH ROW
  EXECUTE FUNCTION payments_guard_terminal('succeeded', 'failed');

CREATE FUNCTION payment_attempts_guard_terminal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IS DISTINCT FROM NEW.status
     AND OLD.status IN ('succeeded', 'declined', 'not_sent', 'closed') THEN
    RAISE EXCEPTION 'payments: attempt %/% is % and cannot become %', OLD.order_id, OLD.seq,
      OLD.status, NEW.status USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER payment_attempts_terminal BEFORE UPDATE ON payment_attempts FOR EACH ROW
  EXECUTE FUNCTION payment_attempts_guard_terminal();

-- Verified provider callbacks, raw bytes as received. The unique key makes a duplicate a no-op;
-- applied_at is set in the transaction that applies it, so one left unapplied by a crash is found.
CREATE TABLE provider_callbacks (
  id bigserial PRIMARY KEY,
  provider text NOT NULL,
  merchant_account text NOT NULL,
  dedup_key text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('payment', 'refund')),
  reference text NOT NULL,
  outcome text NOT NULL,
  -- What the verified callback said, so applying it later needs no second verification.
  provider_transaction_id text NOT NULL DEFAULT '',
  amount_minor bigint NOT NULL DEFAULT 0,
  decline_code text NOT NULL DEFAULT '',
  decline_message text NOT NULL DEFAULT '',
  body bytea NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  applied_at timestamptz,
  effect text NOT NULL DEFAULT '',
  CONSTRAINT provider_callbacks_unique UNIQUE (provider, merchant_account, dedup_key)
);
CREATE INDEX provider_callbacks_unapplied ON provider_callbacks (received_at) WHERE applied_at IS NULL;

-- Events to clients (the outbox): written in the transaction of the state change they describe.
-- Delivery state lives on its own row, updated by the dispatcher.
CREATE TABLE outbox_events (
  id text PRIMARY KEY CHECK (id ~ '^evt_[a-z0-9]{20,40}$'),
  principal text NOT NULL,
  type text NOT NULL,
  object_id text NOT NULL,
  payload text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_events_principal ON outbox_events (principal, created_at, id);

CREATE TABLE event_deliveries (
  event_id text PRIMARY KEY REFERENCES outbox_events (id),
  state text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_status integer NOT NULL DEFAULT 0,
  last_error text NOT NULL DEFAULT '',
  delivered_at timestamptz,
  give_up_at timestamptz NOT NULL
);
CREATE INDEX event_deliveries_due ON event_deliveries (next_attempt_at) WHERE state = 'pending';

-- The janitor's schedule (DESIGN.md §3): one row per thing to revisit. Claimed with FOR UPDATE SKIP
-- LOCKED and leased by moving due_at forward, so any number of daemons can run it and a crashed
-- claimer's task comes due again.
CREATE TABLE janitor_tasks (
  kind text NOT NULL CHECK (kind IN ('inquire_attempt', 'inquire_refund', 'expire_order',
                                      'apply_callback')),
  object_id text NOT NULL,
  due_at timestamptz NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  manual boolean NOT NULL DEFAULT false,
  last_error text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, object_id)
);
CREATE INDEX janitor_tasks_due ON janitor_tasks (due_at) WHERE NOT manual;
