-- Validation shared by the instances of a cluster: a check is claimed on its proxy's row
-- (FOR UPDATE SKIP LOCKED) before it is made, held for as long as it may take; another
-- instance leaves the row alone until then, and takes the verdict from the row.
ALTER TABLE proxies ADD COLUMN check_claimed_by TEXT;
ALTER TABLE proxies ADD COLUMN check_claimed_until BIGINT;
