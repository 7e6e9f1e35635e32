-- A conversation imported from a gateway that keeps conversations itself (an OpenClaw session
-- made in its Control UI, say): which profile holds it and the gateway's own key for it, so
-- that continuing it here continues it there, and importing again brings it up to date
-- instead of copying it twice.
ALTER TABLE conversations ADD COLUMN remote_gateway TEXT;
ALTER TABLE conversations ADD COLUMN remote_session TEXT;
CREATE UNIQUE INDEX conversations_by_remote_session ON conversations (remote_gateway, remote_session)
    WHERE remote_session IS NOT NULL;
