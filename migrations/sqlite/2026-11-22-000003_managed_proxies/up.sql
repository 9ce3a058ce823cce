ALTER TABLE proxies ADD COLUMN last_status INTEGER;
ALTER TABLE proxies ADD COLUMN latency_total_ms BIGINT NOT NULL DEFAULT 0;

-- Managed (paid) proxies as configured or created through the admin API. Their health lives in
-- `proxies` like any other proxy's; this table holds what defines them.
CREATE TABLE managed_proxies (
    name TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL UNIQUE,
    username TEXT,
    password TEXT,
    kind TEXT NOT NULL,
    cost_per_gb DOUBLE NOT NULL,
    priority INTEGER NOT NULL,
    max_leases INTEGER,
    origin TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
