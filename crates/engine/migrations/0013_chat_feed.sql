-- The conversation feed every process can follow (pool::feed, like the job feed of 0011):
-- conversation and message rows are stamped with the writer transaction's number from
-- `job_feed_counter` by the statements that write them, so a window of the desktop app sees a
-- chat made with `gatehouse chat` — created, a new message, a reply growing, a reply settled —
-- from the same range query it reads jobs with. A deleted conversation leaves a tombstone.
--
-- `stop_requested`: any process can ask for a streaming reply to stop (Engine::stop_reply); the
-- process streaming it sees the flag in the feed and stops the turn.
ALTER TABLE conversations ADD COLUMN feed_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX conversations_feed ON conversations (feed_seq);
ALTER TABLE messages ADD COLUMN feed_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_feed ON messages (feed_seq);

CREATE TABLE conversation_feed_gone (
    conversation_id INTEGER PRIMARY KEY,
    seq             INTEGER NOT NULL
);
CREATE INDEX conversation_feed_gone_seq ON conversation_feed_gone (seq);

CREATE TRIGGER conversation_feed_delete AFTER DELETE ON conversations BEGIN
    INSERT OR REPLACE INTO conversation_feed_gone (conversation_id, seq) VALUES (old.id, (SELECT n FROM job_feed_counter));
END;
