-- Monitors created through the admin API (those of the config file live in the file). The
-- definition is the JSON of a `[[monitors]]` table.
CREATE TABLE monitors (
    name TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
