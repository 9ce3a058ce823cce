-- An alert delivery in a cluster is claimed by the leader, under its term, before it is sent:
-- no other instance starts it while the claim holds (a send in flight when its leader is
-- deposed finishes and records its outcome first), and a deposed leader cannot start one.
ALTER TABLE alert_deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE alert_deliveries ADD COLUMN claimed_until BIGINT;
