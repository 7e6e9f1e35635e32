-- The job pool on a shared PostgreSQL (feature `postgres`): the same rows as the SQLite store's
-- jobs, job_output and pools (migrations/0001, 0011, 0012, 0015), plus what several machines
-- need that one file did not:
--   lease_epoch  every claim takes a new number from `lease_epochs`; a worker's writes to its
--                job name the epoch it claimed, so a worker that was paused or cut off past its
--                lease, whose job was rescued and claimed again, writes nothing (fencing);
--   job_feed     a sequence instead of SQLite's counter row (writers no longer queue on one lock);
--   pool_flags   the pause switch every machine obeys (the local settings stay local).
-- Times are milliseconds since the Unix epoch from the engine's clock, as in SQLite.

CREATE SEQUENCE lease_epochs;
CREATE SEQUENCE job_feed;

CREATE TABLE jobs (
    id                   bigserial PRIMARY KEY,
    kind                 text     NOT NULL,
    spec                 text     NOT NULL,
    state                text     NOT NULL DEFAULT 'queued'
                         CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    priority             bigint   NOT NULL DEFAULT 0,
    attempts             bigint   NOT NULL DEFAULT 0,
    max_attempts         bigint   NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    timeout_ms           bigint,
    created_at           bigint   NOT NULL,
    run_after            bigint   NOT NULL,
    started_at           bigint,
    finished_at          bigint,
    exit_code            integer,
    error_code           text,
    error_message        text,
    lease_owner          text,
    lease_epoch          bigint,
    pgid                 integer,
    cancel_requested     boolean  NOT NULL DEFAULT false,
    progress             double precision,
    output_lines         bigint   NOT NULL DEFAULT 0,
    output_bytes         bigint   NOT NULL DEFAULT 0,
    output_dropped_lines bigint   NOT NULL DEFAULT 0,
    output_dropped_bytes bigint   NOT NULL DEFAULT 0,
    waiting_approval     bigint,
    interruptions        bigint   NOT NULL DEFAULT 0,
    feed_seq             bigint   NOT NULL DEFAULT nextval('job_feed')
);

CREATE INDEX jobs_queue    ON jobs (priority DESC, id) WHERE state = 'queued';
CREATE INDEX jobs_running  ON jobs (lease_owner)       WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (finished_at)       WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_feed     ON jobs (feed_seq);

CREATE TABLE job_output (
    job_id  bigint  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq     bigint  NOT NULL,
    attempt bigint  NOT NULL,
    stream  text    NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    at      bigint  NOT NULL,
    text    text    NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE pools (
    owner        text    PRIMARY KEY,
    host         text    NOT NULL,
    pid          integer NOT NULL,
    pid_start    bigint,
    workers      integer NOT NULL,
    started_at   bigint  NOT NULL,
    heartbeat_at bigint  NOT NULL
);

CREATE TABLE pool_flags (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- Deleted jobs leave a tombstone with a feed number, so a front end's feed tells of them.
CREATE TABLE job_feed_gone (
    job_id bigint PRIMARY KEY,
    seq    bigint NOT NULL
);
CREATE INDEX job_feed_gone_seq ON job_feed_gone (seq);

CREATE FUNCTION job_feed_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_feed_gone (job_id, seq) VALUES (old.id, nextval('job_feed'))
    ON CONFLICT (job_id) DO UPDATE SET seq = excluded.seq;
    RETURN old;
END
$$;
CREATE TRIGGER job_feed_delete AFTER DELETE ON jobs FOR EACH ROW EXECUTE FUNCTION job_feed_delete();
