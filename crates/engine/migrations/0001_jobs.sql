-- Jobs and their output. Times are milliseconds since the Unix epoch, UTC.

CREATE TABLE jobs (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                 TEXT    NOT NULL,
    spec                 TEXT    NOT NULL,            -- JSON, owned by the job kind
    state                TEXT    NOT NULL DEFAULT 'queued'
                         CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    priority             INTEGER NOT NULL DEFAULT 0,  -- higher runs first
    attempts             INTEGER NOT NULL DEFAULT 0,  -- attempts started so far
    max_attempts         INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    timeout_ms           INTEGER,
    created_at           INTEGER NOT NULL,
    run_after            INTEGER NOT NULL,            -- not claimed before (retry backoff)
    started_at           INTEGER,
    finished_at          INTEGER,
    exit_code            INTEGER,
    error_code           TEXT,
    error_message        TEXT,
    lease_owner          TEXT,                        -- pools.owner while running
    pgid                 INTEGER,                     -- process group of the running attempt
    cancel_requested     INTEGER NOT NULL DEFAULT 0,
    progress             REAL,                        -- 0..=100 when the job reports it
    output_lines         INTEGER NOT NULL DEFAULT 0,  -- lines ever written (next seq)
    output_bytes         INTEGER NOT NULL DEFAULT 0,  -- bytes kept in job_output
    output_dropped_lines INTEGER NOT NULL DEFAULT 0,
    output_dropped_bytes INTEGER NOT NULL DEFAULT 0
);

-- The hot sets stay small however long the history grows: claims read only queued rows,
-- the concurrency cap and rescue only running rows.
CREATE INDEX jobs_queue    ON jobs (priority DESC, id) WHERE state = 'queued';
CREATE INDEX jobs_running  ON jobs (lease_owner)       WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (finished_at)       WHERE finished_at IS NOT NULL;

CREATE TABLE job_output (
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    stream  TEXT    NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    at      INTEGER NOT NULL,
    text    TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

-- One row per live pool process. A job's lease is its pool's row: the pool renews
-- heartbeat_at for all its jobs at once, and a pool whose heartbeat expired (or, on the same
-- host, whose process is gone) has its running jobs rescued.
CREATE TABLE pools (
    owner        TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    pid_start    INTEGER,                             -- /proc start time, against pid reuse
    workers      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
