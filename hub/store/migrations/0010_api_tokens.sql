-- Long-lived API tokens for automations: only a hash of the secret is kept.
CREATE TABLE api_tokens (
    id VARCHAR(36) PRIMARY KEY,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name VARCHAR(100) NOT NULL,
    role VARCHAR(16) NOT NULL,
    secret_hash VARCHAR(64) NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION
);

CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at);
