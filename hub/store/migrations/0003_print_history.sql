-- Print history: what a record keeps beyond the lifecycle (who, queue job, layers, errors,
-- filament, cost, notes), the per-tray filament use of each print, and indexes that match the
-- history filters (each ends in started_at, id: the list's order, newest first).
ALTER TABLE prints ADD COLUMN printer_name VARCHAR(100);

ALTER TABLE prints ADD COLUMN queue_job_id VARCHAR(36);

ALTER TABLE prints ADD COLUMN started_by VARCHAR(64);

ALTER TABLE prints ADD COLUMN layer INTEGER;

ALTER TABLE prints ADD COLUMN errors TEXT;

ALTER TABLE prints ADD COLUMN filament_g DOUBLE PRECISION;

ALTER TABLE prints ADD COLUMN filament_mm DOUBLE PRECISION;

ALTER TABLE prints ADD COLUMN cost DOUBLE PRECISION;

ALTER TABLE prints ADD COLUMN notes TEXT;

CREATE INDEX prints_started ON prints (started_at, id);

CREATE INDEX prints_outcome_started ON prints (outcome, started_at, id);

CREATE INDEX prints_printer_started_id ON prints (printer_id, started_at, id);

DROP INDEX prints_printer_started;

-- One row per tray (and spool, when one was assigned) a print drew filament from.
CREATE TABLE print_filament (
    print_id VARCHAR(36) NOT NULL,
    tray INTEGER NOT NULL,
    spool_id VARCHAR(36),
    material VARCHAR(16),
    color VARCHAR(9),
    grams DOUBLE PRECISION NOT NULL,
    mm DOUBLE PRECISION NOT NULL,
    cost DOUBLE PRECISION,
    PRIMARY KEY (print_id, tray)
);

CREATE INDEX print_filament_material ON print_filament (material, print_id);
