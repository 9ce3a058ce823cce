ALTER TABLE alert_deliveries DROP COLUMN claimed_until;
ALTER TABLE alert_deliveries DROP COLUMN claimed_by;
