-- Filament spools, their ledger (every movement of weight, the remaining weight is its sum) and
-- which spool sits on which printer tray.
CREATE TABLE spools (
    id VARCHAR(36) PRIMARY KEY,
    material VARCHAR(16) NOT NULL,
    color VARCHAR(7) NOT NULL,
    brand VARCHAR(100),
    name VARCHAR(100),
    diameter_mm DOUBLE PRECISION NOT NULL,
    density_g_cm3 DOUBLE PRECISION NOT NULL,
    weight_total_g DOUBLE PRECISION NOT NULL,
    remaining_g DOUBLE PRECISION NOT NULL,
    spool_weight_g DOUBLE PRECISION,
    price_per_kg DOUBLE PRECISION,
    location VARCHAR(100),
    lot VARCHAR(100),
    notes TEXT,
    low_threshold_g DOUBLE PRECISION NOT NULL,
    low_alerted INTEGER NOT NULL,
    archived INTEGER NOT NULL,
    tray_uuid VARCHAR(64),
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX spools_material_color ON spools (material, color);

CREATE INDEX spools_tray_uuid ON spools (tray_uuid);

-- kind: initial | print | correction | weighing. A print deducts once per spool: the unique
-- (print_id, spool_id) turns a replayed finish into a no-op (NULL print ids never clash).
CREATE TABLE spool_ledger (
    id VARCHAR(36) PRIMARY KEY,
    spool_id VARCHAR(36) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    delta_g DOUBLE PRECISION NOT NULL,
    print_id VARCHAR(36),
    printer_id VARCHAR(36),
    tray INTEGER,
    note TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (print_id, spool_id)
);

CREATE INDEX spool_ledger_spool ON spool_ledger (spool_id, created_at);

CREATE INDEX spool_ledger_created ON spool_ledger (created_at);

CREATE TABLE tray_assignments (
    printer_id VARCHAR(36) NOT NULL,
    tray INTEGER NOT NULL,
    spool_id VARCHAR(36) NOT NULL UNIQUE,
    assigned_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (printer_id, tray)
);
