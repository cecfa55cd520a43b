-- Prints per file name (history_files.id), printer and outcome ('running' while open), and the
-- same per material: the history's exact total for a file filter combined with printer,
-- outcome or material, without a time range, is a sum over the matching names' rows instead
-- of a count of their prints entry by entry (`file=part` + `material` matched 214,285 prints
-- at a million). Kept by hub/store/prints.py (open, close) and hub/store/print_materials.py
-- (a print's materials written, closed) in the transactions that keep print_counts and
-- print_material_counts. PostgreSQL form (the SQLite one is WITHOUT ROWID).
CREATE TABLE print_file_counts (
    file_id BIGINT NOT NULL,
    printer_id VARCHAR(36) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (file_id, printer_id, outcome)
);

CREATE TABLE print_file_material_counts (
    material VARCHAR(16) NOT NULL,
    file_id BIGINT NOT NULL,
    printer_id VARCHAR(36) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (material, file_id, printer_id, outcome)
);

INSERT INTO print_file_counts (file_id, printer_id, outcome, n)
SELECT file_id, printer_id, COALESCE(outcome, 'running'), COUNT(*) FROM prints
WHERE file_id IS NOT NULL
GROUP BY file_id, printer_id, COALESCE(outcome, 'running');

INSERT INTO print_file_material_counts (material, file_id, printer_id, outcome, n)
SELECT material, file_id, printer_id, outcome, COUNT(*) FROM print_materials
WHERE file_id IS NOT NULL
GROUP BY material, file_id, printer_id, outcome;
