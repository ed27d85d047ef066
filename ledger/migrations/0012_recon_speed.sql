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

-- An attempt's amount and currency are its order's, which never change once the order exists.
-- Copied onto the attempt as it is inserted (a trigger: the payments service's inserts stay as
-- they are), they let the import read a million attempts without joining a million orders, which
-- was a third of reading them. Attempts made before this migration keep NULL (no rewrite of the
-- table, no long lock at deploy): readers fall back to the order for those, by its primary key.
-- Nullable too so that an attempt naming no order still fails on its foreign key, as before.
ALTER TABLE payment_attempts ADD COLUMN amount_minor bigint, ADD COLUMN currency char(3);
CREATE FUNCTION payment_attempts_order_amount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT o.amount_minor, o.currency INTO NEW.amount_minor, NEW.currency
    FROM payment_orders o WHERE o.id = NEW.order_id;
  RETURN NEW;
END
$$;
CREATE TRIGGER payment_attempts_order_amount BEFORE INSERT ON payment_attempts
  FOR EACH ROW EXECUTE FUNCTION payment_attempts_order_amount();
