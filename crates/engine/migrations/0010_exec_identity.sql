-- The exec sandbox, round 2: checks hold on the objects that run.

-- A workspace root is held by identity: a root whose path now leads to another directory is
-- refused. (Roots stored before this get theirs at their next use.)
ALTER TABLE exec_workspaces ADD COLUMN dev INTEGER;
ALTER TABLE exec_workspaces ADD COLUMN ino INTEGER;

-- A rule on a program outside the system directories holds for that content only (SHA-256).
ALTER TABLE exec_rules ADD COLUMN sha256 TEXT;
-- Paths a command under the rule may read (JSON array), variables it may be given (JSON array).
ALTER TABLE exec_rules ADD COLUMN see TEXT NOT NULL DEFAULT '[]';
ALTER TABLE exec_rules ADD COLUMN env TEXT NOT NULL DEFAULT '[]';

-- An audit row is written before a command starts and completed when it ends: a row with no
-- end is a run whose runner was killed.
ALTER TABLE exec_audit ADD COLUMN env TEXT NOT NULL DEFAULT '[]';  -- names of the variables set
ALTER TABLE exec_audit ADD COLUMN ended_at INTEGER;
UPDATE exec_audit SET ended_at = at;
