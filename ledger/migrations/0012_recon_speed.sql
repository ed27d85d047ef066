-- Reconciliation reads our items by the time they last changed (issue 8): the import's items of
-- the bill day (and a day either side) and its balance reconciliation's traffic after the day.
-- Without these indexes both scanned every attempt and refund ever made, which grows without
-- bound; with them each reads the rows of the days it asks for. The attempts' index leads with
-- the provider account, as both queries name it. updated_at changes with an attempt's status, so
-- these updates are no longer HOT: a few index entries more per status change, against a full
-- scan of the payments history per import.
-- Runs inside the transaction opened by ApplyMigrations: no BEGIN/COMMIT, no CONCURRENTLY.
CREATE INDEX payment_attempts_recon ON payment_attempts (provider, merchant_account, updated_at);
CREATE INDEX payment_refunds_updated ON payment_refunds (updated_at);
