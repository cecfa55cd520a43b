-- History search at a million rows (PostgreSQL form; 0015_history_search.sqlite.sql is the
-- SQLite one). The file-name substring filter reads a pg_trgm GIN index on LOWER(file), which
-- serves `LOWER(file) LIKE '%…%'` for patterns of 3+ characters. pg_trgm ships with PostgreSQL
-- and is a trusted extension (13+): a database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX prints_file_trgm ON prints USING gin (LOWER(file) gin_trgm_ops);

-- The materials each print drew (one row per print and material; 'running' while open), with
-- the columns the history filters combine with material, so a material page walks one index
-- newest first. hub/store/print_materials.py keeps it in step with print_filament and the
-- print's outcome, and keeps print_material_counts (the totals without a time or file filter).
CREATE TABLE print_materials (
    print_id VARCHAR(36) NOT NULL,
    material VARCHAR(16) NOT NULL,
    printer_id VARCHAR(36) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (print_id, material)
);

CREATE INDEX print_materials_started ON print_materials (material, started_at, print_id);

CREATE INDEX print_materials_printer ON print_materials (material, printer_id, started_at, print_id);

CREATE INDEX print_materials_outcome ON print_materials (material, outcome, started_at, print_id);

CREATE TABLE print_material_counts (
    printer_id VARCHAR(36) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    material VARCHAR(16) NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (material, printer_id, outcome)
);

INSERT INTO print_materials (print_id, material, printer_id, outcome, started_at)
SELECT DISTINCT pf.print_id, pf.material, p.printer_id, COALESCE(p.outcome, 'running'), p.started_at
FROM print_filament pf JOIN prints p ON p.id = pf.print_id WHERE pf.material IS NOT NULL;

INSERT INTO print_material_counts (printer_id, outcome, material, n)
SELECT printer_id, outcome, material, COUNT(*) FROM print_materials
GROUP BY printer_id, outcome, material;
