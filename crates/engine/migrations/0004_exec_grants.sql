-- Timed grants: an allow rule a person gave for a while ("allow for 10 minutes").
ALTER TABLE exec_rules ADD COLUMN expires_at INTEGER;
