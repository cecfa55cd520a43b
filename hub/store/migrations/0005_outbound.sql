-- Outbound integrations: webhook endpoints, notification channels and the delivery outbox.
CREATE TABLE webhooks (
    id VARCHAR(36) PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    description TEXT NOT NULL,
    disabled_reason TEXT,
    failure_streak INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE notify_channels (
    id VARCHAR(36) PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    min_severity VARCHAR(16) NOT NULL,
    quiet_hours TEXT,
    enabled INTEGER NOT NULL,
    disabled_reason TEXT,
    failure_streak INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

-- One row per message to one target; `seq` orders a target's messages, `event_id` (the
-- webhook-id) makes writing the same event twice for a target a no-op.
CREATE TABLE outbox (
    id VARCHAR(36) PRIMARY KEY,
    seq BIGINT NOT NULL,
    target_kind VARCHAR(16) NOT NULL,
    target_id VARCHAR(36) NOT NULL,
    event_id VARCHAR(64) NOT NULL,
    event_type VARCHAR(64) NOT NULL,
    payload TEXT NOT NULL,
    state VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    retry_from DOUBLE PRECISION NOT NULL,
    last_attempt_at DOUBLE PRECISION,
    last_status INTEGER,
    last_error TEXT,
    delivered_at DOUBLE PRECISION,
    UNIQUE (target_kind, target_id, event_id)
);

CREATE INDEX outbox_due ON outbox (target_kind, target_id, state, seq);

CREATE INDEX outbox_pending ON outbox (state);
