-- What instances keep in memory and another may change (monitors, managed proxies, proxies
-- deleted): a version per topic, raised in the transaction of each change, which also
-- NOTIFYs `proxyvisor_changes` with `topic:version`. Each instance listens, and reads the
-- versions at every heartbeat as a fallback.
CREATE TABLE cluster_changes (
    topic TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
