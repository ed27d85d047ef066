-- The claims index compares bytes (issue 8). recon_bill_items_our_once (0009) makes each of our
-- items match at most one current bill line, and an import inserts a million entries into it. In
-- the database's collation every comparison of those inserts goes through the locale. Measured:
-- COPY of the recon benchmark's million lines into copies of the table with both its indexes,
-- the claims index's columns in a language collation (ICU "en-x-icu") against "C":
--   lines in our ids' order: 4.12 and 4.04 s against 3.42 and 3.33 s;
--   lines in a shuffled order (a bill sorted by time, ids that are not): 8.84 s against 6.54 s.
-- In the local clusters (initdb --locale=C.UTF-8, whose glibc collation is code point order)
-- the difference is within the noise of repeated runs: this protects databases created with a
-- language locale, as most production ones are.
--
-- The index is only ever asked for equality, which every deterministic collation answers the
-- same way (bytewise), so nothing it accepts or refuses changes. The columns themselves take
-- collation "C" (the same type: no row is rewritten, only the index rebuilt; PostgreSQL's ALTER
-- TABLE documentation): the probes compare them with ids built from other columns
-- (`b.our_id = a.order_id || ':' || a.seq`), and a column's collation wins over the default one
-- there, so the probes keep using the index. An index in "C" over columns in the
-- default collation would not serve them.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT here.

ALTER TABLE recon_bill_items
  ALTER COLUMN our_kind TYPE text COLLATE "C",
  ALTER COLUMN our_id TYPE text COLLATE "C";
