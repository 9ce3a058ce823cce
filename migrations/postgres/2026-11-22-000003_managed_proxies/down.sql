DROP TABLE managed_proxies;
ALTER TABLE proxies DROP COLUMN latency_total_ms;
ALTER TABLE proxies DROP COLUMN last_status;
