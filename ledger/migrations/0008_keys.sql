-- Data keys of field encryption (issue 7 "Keys", DESIGN.md §6; keys/data_keys.h). Each row is one
-- version of a named data key, AES-256-GCM-wrapped by the master key (keys/aead.h blob format) with
-- "paygate/data_key/<name>/<version>" as associated data, so a wrapped key moved to another name or
-- version does not unwrap. The master key itself never reaches the database.
-- Versions are only ever added (`paygatectl keys rotate`): rows encrypted under an old version keep
-- decrypting until `paygatectl keys rewrap` has moved them, and even then the old version is kept,
-- because a backup may still hold such rows. Deleting a version would make data unreadable, so a
-- trigger refuses DELETE and any change of name or version; re-wrapping under a new master key
-- (UPDATE of wrapped_key and master_key_*) stays possible.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.
CREATE TABLE key_data_keys (
  name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_./-]{0,63}$'),
  version integer NOT NULL CHECK (version >= 1),
  wrapped_key bytea NOT NULL,
  -- The master key that wrapped it (its id and version are also in the blob's header).
  master_key_id text NOT NULL,
  master_key_version integer NOT NULL CHECK (master_key_version >= 1),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT key_data_keys_pkey PRIMARY KEY (name, version)
);

CREATE FUNCTION key_data_keys_keep_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR NEW.name <> OLD.name OR NEW.version <> OLD.version THEN
    RAISE EXCEPTION 'key_data_keys: a data key version is never removed or renamed';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER key_data_keys_keep_versions BEFORE UPDATE OR DELETE ON key_data_keys
  FOR EACH ROW EXECUTE FUNCTION key_data_keys_keep_versions();
