DROP TABLE repair_claims;
