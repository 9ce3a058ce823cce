-- Monitors created through the admin API (those of the config file live in the file). The
-- definition is the JSON of a `[[monitors]]` table.
CREATE TABLE monitors (
    name TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- What each monitor has seen (config and API monitors alike), written behind every few seconds
-- so uptime and counts survive restarts. `last_repair` is JSON.
CREATE TABLE monitor_stats (
    name TEXT PRIMARY KEY NOT NULL,
    checks_total BIGINT NOT NULL,
    checks_ok BIGINT NOT NULL,
    latency_sum_ms BIGINT NOT NULL,
    latency_count BIGINT NOT NULL,
    available_ms BIGINT NOT NULL,
    unavailable_ms BIGINT NOT NULL,
    repairs BIGINT NOT NULL,
    predictive_restarts BIGINT NOT NULL,
    last_repair TEXT,
    updated_at BIGINT NOT NULL
);
