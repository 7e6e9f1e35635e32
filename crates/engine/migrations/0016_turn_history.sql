-- Turn history kept, not overwritten (chat::branch): regenerating a reply or editing a message
-- adds a version beside the old one instead of replacing it.
--
-- Messages form a tree: each one follows its `parent_id` (NULL: the conversation's first).
-- Versions of a message are its siblings of the same role. The branch shown is flagged
-- `active`; along any branch ids only grow (a message is made after the one it follows), so
-- the shown branch in order is simply its active rows by id — a page of it is one range on
-- `messages_shown`, as before. `branch` on a conversation counts changes to the shown branch
-- other than a message added at its end, so a window knows to reload.
ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages (id);
ALTER TABLE messages ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
UPDATE messages SET parent_id =
    (SELECT max(p.id) FROM messages p WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id);
CREATE INDEX messages_children ON messages (parent_id);
CREATE INDEX messages_shown ON messages (conversation_id, id) WHERE active = 1;
ALTER TABLE conversations ADD COLUMN branch INTEGER NOT NULL DEFAULT 0;

-- A reply continued after an interruption streams again: its old text leaves the search index
-- (it is indexed whole when it settles).
CREATE TRIGGER messages_fts_reopen AFTER UPDATE OF state ON messages
WHEN old.state != 'streaming' AND new.state = 'streaming' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

-- Sessions a gateway keeps itself (OpenClaw): a linear transcript on the gateway, which a tree
-- cannot always continue. A turn goes on in the session whose last message is the one it
-- follows; any other turn (a regenerated reply, an edited message, a switch of gateway) opens a
-- new session, given the branch so far with its first message (chat::branch::session).
CREATE TABLE chat_sessions (
    gateway         TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- The last message the gateway's copy holds (it may since have been deleted here).
    last_message_id INTEGER,
    PRIMARY KEY (gateway, key)
) STRICT;
CREATE INDEX chat_sessions_by_conversation ON chat_sessions (conversation_id, gateway);

INSERT INTO chat_sessions (gateway, key, conversation_id, last_message_id)
SELECT c.gateway,
       CASE WHEN c.remote_gateway = c.gateway THEN c.remote_session ELSE 'gatehouse-' || c.id END,
       c.id,
       (SELECT max(m.id) FROM messages m WHERE m.conversation_id = c.id)
FROM conversations c JOIN gateways g ON g.name = c.gateway
WHERE g.kind = 'openclaw' AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id);
-- An imported session not continued here is held by its own profile.
INSERT OR IGNORE INTO chat_sessions (gateway, key, conversation_id, last_message_id)
SELECT c.remote_gateway, c.remote_session, c.id, (SELECT max(m.id) FROM messages m WHERE m.conversation_id = c.id)
FROM conversations c WHERE c.remote_session IS NOT NULL;
