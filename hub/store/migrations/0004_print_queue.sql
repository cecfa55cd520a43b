-- Print files, the print queue, its dispatch runs, and the printer settings the dispatcher reads.
CREATE TABLE print_files (
    id VARCHAR(36) PRIMARY KEY,
    sha256 VARCHAR(64) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    size BIGINT NOT NULL,
    path TEXT NOT NULL,
    meta TEXT NOT NULL,
    has_thumbnail INTEGER NOT NULL,
    uploaded_by VARCHAR(64),
    created_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX print_files_created ON print_files (created_at);

CREATE TABLE queue_jobs (
    id VARCHAR(36) PRIMARY KEY,
    file_id VARCHAR(36) NOT NULL,
    plate INTEGER NOT NULL,
    copies INTEGER NOT NULL,
    copies_done INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    position DOUBLE PRECISION NOT NULL,
    target TEXT NOT NULL,
    materials TEXT NOT NULL,
    state VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    waiting_reason TEXT,
    last_error TEXT,
    added_by VARCHAR(64),
    printer_id VARCHAR(36),
    run_id VARCHAR(36),
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX queue_jobs_state ON queue_jobs (state, priority, position);

-- A printer never holds two jobs: at most one dispatching or printing job per printer.
CREATE UNIQUE INDEX queue_jobs_one_per_printer ON queue_jobs (printer_id)
    WHERE state IN ('dispatching', 'printing');

-- One row per attempt to print one copy of a job on a printer; links the job to history.
CREATE TABLE queue_runs (
    id VARCHAR(36) PRIMARY KEY,
    job_id VARCHAR(36) NOT NULL REFERENCES queue_jobs (id) ON DELETE CASCADE,
    printer_id VARCHAR(36) NOT NULL,
    copy INTEGER NOT NULL,
    filename VARCHAR(255) NOT NULL,
    ams_mapping TEXT,
    state VARCHAR(16) NOT NULL,
    error TEXT,
    print_job_key VARCHAR(255),
    print_id VARCHAR(36),
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    ended_at DOUBLE PRECISION
);

CREATE INDEX queue_runs_job ON queue_runs (job_id, created_at);

CREATE INDEX queue_runs_print_key ON queue_runs (print_job_key);

ALTER TABLE printers ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0;

ALTER TABLE printers ADD COLUMN auto_clear_bed INTEGER NOT NULL DEFAULT 0;

ALTER TABLE printers ADD COLUMN bed_clear INTEGER NOT NULL DEFAULT 0;

ALTER TABLE printers ADD COLUMN ftps_port INTEGER;
