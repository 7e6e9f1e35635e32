-- The profile's token is in the OS keyring (entry "gatehouse" / "gateway:<name>"); the token
-- itself is never stored here.
ALTER TABLE gateways ADD COLUMN token_keyring INTEGER NOT NULL DEFAULT 0;
