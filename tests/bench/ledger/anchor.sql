-- The ledger benchmark's anchor (tests/bench/ledger/run.sh, DESIGN.md §8): one simple payment's writes
-- per transaction, the least a database-backed ledger could do for "premium paid" without batching.
-- Insert the transfer, add the amount to the paying merchant's clearing account (one of :merchants), then
-- to the one hot account (id 0, premiums_received) that every transaction updates. The hot row is updated
-- last so each transaction holds its lock for as short a time as possible: the strongest fair anchor.
-- Tables: anchor_accounts (id, debits, credits) and anchor_transfers, created by run.sh.
-- Run: pgbench -n -M prepared -c N -j 2 -T SECS -D merchants=M -f anchor.sql
\set merchant random(1, :merchants)
\set amount random(1, 100000)
BEGIN;
INSERT INTO anchor_transfers (debit_account_id, credit_account_id, amount) VALUES (:merchant, 0, :amount);
UPDATE anchor_accounts SET debits = debits + :amount WHERE id = :merchant;
UPDATE anchor_accounts SET credits = credits + :amount WHERE id = 0;
COMMIT;
