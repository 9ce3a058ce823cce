DROP TABLE usage;
ALTER TABLE managed_proxies DROP COLUMN daily_cost_limit;
ALTER TABLE managed_proxies DROP COLUMN daily_cost_cap;
