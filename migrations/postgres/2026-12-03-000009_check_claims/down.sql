ALTER TABLE proxies DROP COLUMN check_claimed_until;
ALTER TABLE proxies DROP COLUMN check_claimed_by;
