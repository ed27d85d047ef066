-- API authentication and idempotency (DESIGN.md §4 "Idempotency records", §5 "Authentication",
-- "Idempotency-Key"). Both tables are shared by every daemon behind a load balancer: a nonce seen by
-- one daemon is a replay at all of them, and a key in flight at one is in flight at all.
-- Times come from the database clock (now()), one clock for all daemons.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

-- Nonces of HMAC-signed requests (gateway/auth/nonce_store.h). A request's timestamp is accepted
-- within a window around the daemon's clock, so a nonce only needs remembering until every
-- timestamp it could be replayed with is stale; expires_at is set past that point.
CREATE TABLE api_nonces (
  key_id text NOT NULL CHECK (key_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
  nonce text NOT NULL CHECK (nonce ~ '^[A-Za-z0-9_-]{16,64}$'),
  expires_at timestamptz NOT NULL,
  CONSTRAINT api_nonces_pkey PRIMARY KEY (key_id, nonce)
);
CREATE INDEX api_nonces_expiry ON api_nonces (expires_at);

-- Idempotency-Key records (gateway/idempotency/idempotency_store.h), per principal: another
-- principal's identical key is a different record. A claim is 'in_flight' under a lease (a daemon
-- that crashed mid-request does not block the key for ever) and owned by lease_token, so a request
-- whose lease was taken over cannot overwrite its successor's record. A 'done' record holds the
-- response to replay, byte for byte.
CREATE TABLE idempotency_keys (
  principal text NOT NULL CHECK (length(principal) BETWEEN 1 AND 64),
  key text NOT NULL CHECK (key ~ '^[!-~]{1,255}$'),
  fingerprint bytea NOT NULL CHECK (length(fingerprint) = 32),
  state text NOT NULL CHECK (state IN ('in_flight', 'done')),
  lease_token uuid NOT NULL,
  lease_expires_at timestamptz,
  request_id text NOT NULL CHECK (length(request_id) <= 64),
  response_status integer CHECK (response_status BETWEEN 100 AND 599),
  response_content_type text,
  -- Header lines worth replaying ("Name: value\r\n"...), without those the edge sets per response.
  -- Bytes, not text: a header value need not be valid UTF-8.
  response_headers bytea,
  response_body bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  CONSTRAINT idempotency_keys_pkey PRIMARY KEY (principal, key),
  CONSTRAINT idempotency_keys_state_fields CHECK (
    CASE state
      WHEN 'in_flight' THEN lease_expires_at IS NOT NULL AND response_status IS NULL
      ELSE lease_expires_at IS NULL AND response_status IS NOT NULL
           AND response_content_type IS NOT NULL AND response_headers IS NOT NULL
           AND response_body IS NOT NULL
    END),
  -- DESIGN.md §4: records are kept at least 7 days.
  CONSTRAINT idempotency_keys_retention CHECK (expires_at >= created_at + interval '7 days')
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- For the janitor: delete expired nonces and idempotency records; returns the rows deleted.
CREATE FUNCTION api_nonces_purge() RETURNS bigint LANGUAGE sql AS $$
  WITH gone AS (DELETE FROM api_nonces WHERE expires_at < now() RETURNING 1)
  SELECT count(*) FROM gone
$$;

CREATE FUNCTION idempotency_keys_purge() RETURNS bigint LANGUAGE sql AS $$
  WITH gone AS (DELETE FROM idempotency_keys WHERE expires_at < now() RETURNING 1)
  SELECT count(*) FROM gone
$$;
