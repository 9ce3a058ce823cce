CREATE TABLE leases (
    id TEXT PRIMARY KEY NOT NULL,
    -- the proxies' URLs, one per line
    proxies TEXT NOT NULL,
    session TEXT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
