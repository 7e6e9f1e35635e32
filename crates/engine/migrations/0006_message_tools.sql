-- Tools that ran during a reply: the exec tool Gatehouse ran for the model, and tools an
-- OpenClaw gateway ran itself (shown from its tool events). One row per call, updated as it
-- goes from running to its end.
CREATE TABLE message_tools (
    message_id  INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    call_id     TEXT    NOT NULL,
    -- Order of first appearance within the reply.
    seq         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    -- 'gatehouse' (our sandboxed exec) or 'gateway' (run by the gateway itself).
    ran_by      TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (message_id, call_id)
) STRICT;
