-- Sessions: tokens issued before tokens_valid_after (a password or role change, or disabling
-- the account) are refused; a disabled account cannot log in or use any token.
ALTER TABLE users ADD COLUMN tokens_valid_after DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
