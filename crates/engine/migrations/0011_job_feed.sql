-- The job feed every process can follow (pool::feed). Each write transaction of the writer
-- (store::writer) takes the next number from a one-row counter, and every job row it touches
-- is stamped with it (`feed_seq`, set by the write operations themselves). A follower keeps the
-- last number it saw and reads the rows above it when `PRAGMA data_version` says another
-- connection committed — one range on an index, never a reload of the table. A deleted
-- (pruned) job leaves a tombstone with the number until a later prune, so followers learn that
-- it went.
--
-- Stamped by the statements, not by triggers: a trigger makes every job write a second row
-- update, and the queue benchmark's drain fell from ~12,500 to 5,400-6,800 jobs/s with one;
-- stamped, ~8,500 (docs/performance.md, "The job feed").
CREATE TABLE job_feed_counter (n INTEGER NOT NULL);
INSERT INTO job_feed_counter (n) VALUES (1);

ALTER TABLE jobs ADD COLUMN feed_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_feed ON jobs (feed_seq);

CREATE TABLE job_feed_gone (
    job_id INTEGER PRIMARY KEY,
    seq    INTEGER NOT NULL
);
CREATE INDEX job_feed_gone_seq ON job_feed_gone (seq);

CREATE TRIGGER job_feed_delete AFTER DELETE ON jobs BEGIN
    INSERT OR REPLACE INTO job_feed_gone (job_id, seq) VALUES (old.id, (SELECT n FROM job_feed_counter));
END;
