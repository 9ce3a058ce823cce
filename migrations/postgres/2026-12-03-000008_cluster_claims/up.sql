-- A repair is claimed here before the hosting provider is called, under the leader's current
-- term, and not again within the monitor's warm-up: a deposed leader's late call and a new
-- leader's repeat of a repair just made are both refused.
CREATE TABLE repair_claims (
    monitor TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    term BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL
);
