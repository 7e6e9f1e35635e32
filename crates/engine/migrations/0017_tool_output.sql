-- What a tool printed, as the model was given it (bounded by the exec tool's result cap), so
-- the window can show it folded under the call. Empty for a gateway's own tools: the gateway
-- keeps their output.
ALTER TABLE message_tools ADD COLUMN output TEXT NOT NULL DEFAULT '';
