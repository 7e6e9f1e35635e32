-- The exec tool: policy rules, workspace roots and the audit trail.

CREATE TABLE exec_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    action     TEXT    NOT NULL CHECK (action IN ('allow', 'ask', 'deny')),
    program    TEXT    NOT NULL,             -- absolute path, resolved when the rule was added
    args       TEXT    NOT NULL DEFAULT '[]', -- JSON array of patterns, one per argument
    any_args   INTEGER NOT NULL DEFAULT 0,   -- arguments after the patterns are free
    network    INTEGER NOT NULL DEFAULT 0,   -- an allow rule that lets the command reach the network
    builtin    INTEGER NOT NULL DEFAULT 0,   -- one of the defaults
    created_at INTEGER NOT NULL
);

CREATE TABLE exec_workspaces (
    path       TEXT    PRIMARY KEY,          -- canonical absolute directory
    created_at INTEGER NOT NULL
);

CREATE TABLE exec_audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    requester    TEXT    NOT NULL,           -- person, model or job:<id>
    program      TEXT    NOT NULL,
    args         TEXT    NOT NULL,           -- JSON array
    cwd          TEXT,
    decision     TEXT    NOT NULL CHECK (decision IN ('allow', 'ask', 'deny')),
    rule_id      INTEGER,                    -- the rule that decided, if any
    reason       TEXT    NOT NULL,
    approval     TEXT,                       -- once, timed, denied, expired, none
    exit_code    INTEGER,
    signal       INTEGER,
    duration_ms  INTEGER,
    output_bytes INTEGER,
    truncated    INTEGER NOT NULL DEFAULT 0,
    error_code   TEXT
);
CREATE INDEX exec_audit_at ON exec_audit (at);
