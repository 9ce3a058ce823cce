-- Several instances on one database (DESIGN.md § Cluster). Times are Unix milliseconds of the
-- database's clock, so every instance measures leases and heartbeats with the same one.

-- The leader's lease: one row, taken and renewed with conditional UPDATEs. `term` grows at
-- each change of leader; side effects claimed under a term are refused once it has passed.
CREATE TABLE cluster_lease (
    name TEXT PRIMARY KEY,
    leader_id TEXT NOT NULL,
    term BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    elected_at BIGINT NOT NULL,
    previous_leader TEXT NOT NULL
);
INSERT INTO cluster_lease (name, leader_id, term, expires_at, elected_at, previous_leader)
VALUES ('leader', '', 0, 0, 0, '');

-- Every instance, as it last told.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    version TEXT NOT NULL,
    role TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
