-- The audit rows of exec jobs on a shared queue: the command ran on one machine, and every
-- machine's `exec audit` and Settings → Audit show it with the job it belongs to. The columns
-- are the local log's (migrations/0003_exec.sql, 0010), plus the machine that ran it; rule_id
-- names a rule of that machine's policy (policies stay local). Commands a person or a model
-- runs outside a job stay in the local log of the machine they ran on.
CREATE TABLE exec_audit (
    id           bigserial PRIMARY KEY,
    host         text     NOT NULL,
    at           bigint   NOT NULL,
    requester    text     NOT NULL,
    program      text     NOT NULL,
    args         text     NOT NULL,        -- JSON array
    cwd          text,
    decision     text     NOT NULL CHECK (decision IN ('allow', 'ask', 'deny')),
    rule_id      bigint,
    reason       text     NOT NULL,
    approval     text,
    exit_code    bigint,
    signal       bigint,
    duration_ms  bigint,
    output_bytes bigint,
    truncated    boolean  NOT NULL DEFAULT false,
    error_code   text,
    env          text     NOT NULL DEFAULT '[]',  -- names of the variables set, never values
    ended_at     bigint
);
