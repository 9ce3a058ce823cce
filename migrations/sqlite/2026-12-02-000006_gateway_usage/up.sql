-- Gateway traffic, per upstream proxy per UTC hour (and per sticky session, '' for none):
-- written behind in batches, each batch adding to the rows it touches.
CREATE TABLE usage (
    hour BIGINT NOT NULL,
    proxy TEXT NOT NULL,
    session TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    failures BIGINT NOT NULL DEFAULT 0,
    bytes_up BIGINT NOT NULL DEFAULT 0,
    bytes_down BIGINT NOT NULL DEFAULT 0,
    cost DOUBLE NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, proxy, session)
);

-- A managed proxy's cost limits: an alert past the first, no gateway use past the second.
ALTER TABLE managed_proxies ADD COLUMN daily_cost_limit DOUBLE;
ALTER TABLE managed_proxies ADD COLUMN daily_cost_cap DOUBLE;
