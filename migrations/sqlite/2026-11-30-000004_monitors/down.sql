DROP TABLE monitor_stats;
DROP TABLE monitors;
