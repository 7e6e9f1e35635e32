-- Settings a person changes from any front end (the default local model, ...): small,
-- read rarely, one row per key.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
