DROP TABLE instances;
DROP TABLE cluster_lease;
