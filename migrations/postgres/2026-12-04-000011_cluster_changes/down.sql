DROP TABLE cluster_changes;
