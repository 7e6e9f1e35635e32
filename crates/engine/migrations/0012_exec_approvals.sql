-- Approvals as the engine's own facts (exec::approval). When a rule says ask, the question is
-- stored here before anyone is asked, so any process on the database can answer it: the
-- terminal that asked, `gatehouse approvals allow ID` in another one, the desktop app. A caller
-- never marks a command approved itself; what runs is what a row here says a person allowed.
--
-- state: pending → allowed | denied | expired | withdrawn (the asker stopped waiting: its
-- turn or job was stopped, or it had nobody to ask). Rows are stamped with the job feed's
-- transaction number (`feed_seq`, migration 0011), so followers in every process learn of a
-- new question and of its answer from the same range query as job changes.
--
-- An approval given when an exec job was submitted (a person said yes at the terminal then)
-- is a row with state 'allowed', the job's id and no attempt yet; the job's first attempt
-- takes it (sets `attempt`) if the command still resolves to the same file; a retry asks again.
CREATE TABLE exec_approvals (
    id              INTEGER PRIMARY KEY,
    asked_at        INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    requester       TEXT NOT NULL,      -- person | model | job
    conversation_id INTEGER,            -- the model's chat, when the model asks
    job_id          INTEGER,            -- the exec job, when a job asks
    attempt         INTEGER,            -- the job's attempt that asked (or took the approval)
    program         TEXT NOT NULL,      -- as requested
    program_file    TEXT NOT NULL,      -- what it resolved to, as shown to the person
    args            TEXT NOT NULL,      -- JSON array
    cwd             TEXT NOT NULL,
    env             TEXT NOT NULL,      -- JSON array of the variable names set
    prompt          TEXT NOT NULL,      -- the whole question, control characters escaped
    reason          TEXT NOT NULL,      -- the rule that asked, in words
    rule_id         INTEGER,
    fingerprint     TEXT NOT NULL,      -- the program file checked (device:inode:sha256)
    state           TEXT NOT NULL DEFAULT 'pending',
    grant_ms        INTEGER,            -- allowed for this long (a timed grant), else once
    answered_at     INTEGER,
    feed_seq        INTEGER NOT NULL
);
CREATE INDEX exec_approvals_pending ON exec_approvals (expires_at) WHERE state = 'pending';
CREATE INDEX exec_approvals_feed ON exec_approvals (feed_seq);
CREATE INDEX exec_approvals_job ON exec_approvals (job_id) WHERE job_id IS NOT NULL;

-- A running exec job that waits for an answer says which question it waits on.
ALTER TABLE jobs ADD COLUMN waiting_approval INTEGER;
