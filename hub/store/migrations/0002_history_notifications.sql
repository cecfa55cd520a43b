-- One record per print (idempotent on job_key) and persisted notifications.
CREATE TABLE prints (
    id VARCHAR(36) PRIMARY KEY,
    job_key VARCHAR(255) NOT NULL UNIQUE,
    printer_id VARCHAR(36) NOT NULL,
    file TEXT NOT NULL,
    state VARCHAR(16) NOT NULL,
    outcome VARCHAR(16),
    progress DOUBLE PRECISION NOT NULL,
    total_layers INTEGER,
    started_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX prints_printer_started ON prints (printer_id, started_at);

CREATE INDEX prints_open ON prints (outcome);

CREATE TABLE notifications (
    id VARCHAR(36) PRIMARY KEY,
    printer_id VARCHAR(36),
    kind VARCHAR(32) NOT NULL,
    severity VARCHAR(16) NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    read_at DOUBLE PRECISION
);

CREATE INDEX notifications_created ON notifications (created_at);
