-- How many times a job's pool died (was killed, crashed, lost power) while it ran. Such an
-- attempt is not the job's own failure: the job is queued again, with the attempt counted,
-- even past its own attempts — but only a few times, so a job that brings its pool down
-- every time does not do so for ever (pool::ops::rescue).
ALTER TABLE jobs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
