-- Gateway profiles, conversations and messages. Times are milliseconds since the Unix epoch.

CREATE TABLE gateways (
    name       TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('openai', 'openclaw', 'local')),
    url        TEXT,
    model      TEXT,
    token_env  TEXT,                     -- the token is read from this variable at use
    token_file TEXT,                     -- or from this owner-only file; never stored here
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    title      TEXT    NOT NULL,
    gateway    TEXT,                     -- the profile used last
    model      TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id   INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role              TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    text              TEXT    NOT NULL DEFAULT '',
    state             TEXT    NOT NULL CHECK (state IN ('complete', 'streaming', 'interrupted', 'failed')),
    error_code        TEXT,
    error_message     TEXT,
    writer            TEXT,              -- host:pid:start of the process streaming it
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX messages_streaming ON messages (writer) WHERE state = 'streaming';

-- Full-text search over message text. A reply is indexed once it stops streaming (re-indexing
-- it on every appended delta would cost its whole length each time).
CREATE VIRTUAL TABLE messages_fts USING fts5 (text, content = 'messages', content_rowid = 'id');

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.state != 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER messages_fts_settle AFTER UPDATE OF state ON messages
WHEN old.state = 'streaming' AND new.state != 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER messages_fts_edit AFTER UPDATE OF text ON messages
WHEN old.state != 'streaming' AND new.state != 'streaming' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.state != 'streaming' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
