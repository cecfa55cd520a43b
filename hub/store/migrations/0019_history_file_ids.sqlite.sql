-- History at a million rows: every filter counted and paged from an index alone (SQLite form;
-- 0019_history_file_ids.postgresql.sql is the PostgreSQL one).
--
-- Each distinct file name gets an integer id (history_files.id; its trigram row in
-- history_files_fts has the same rowid), and prints and print_materials carry it (file_id).
-- A file filter becomes `file_id IN (matching ids)`, and every walk's index holds the columns
-- the other filters check, so a page's keys and the filtered total are read without touching
-- a table row (covering indexes; only the page's own rows are read). Walks:
--   file (few matches): prints_file_cover (file_id, started_at, id, printer_id, outcome), or
--     print_materials_file (material, file_id, started_at, print_id, ...) with a material;
--   other filters (file with many matches, or none): the (…, started_at, id) indexes of 0003
--     and 0015 with file_id (and on prints_printer_started_id the outcome) at their end.
-- hub/store/prints.py sets prints.file_id when it opens a record; print_materials.py copies it.
CREATE TABLE history_files_new (
    id INTEGER PRIMARY KEY,
    file TEXT NOT NULL UNIQUE,
    n INTEGER NOT NULL
);

INSERT INTO history_files_new (file, n) SELECT file, n FROM history_files ORDER BY file;

DROP TABLE history_files;

ALTER TABLE history_files_new RENAME TO history_files;

DROP TABLE history_files_fts;

CREATE VIRTUAL TABLE history_files_fts USING fts5(file, tokenize = 'trigram');

INSERT INTO history_files_fts (rowid, file) SELECT id, file FROM history_files;

ALTER TABLE prints ADD COLUMN file_id INTEGER;

UPDATE prints SET file_id = (SELECT h.id FROM history_files h WHERE h.file = prints.file);

ALTER TABLE print_materials ADD COLUMN file_id INTEGER;

UPDATE print_materials SET file_id = (SELECT p.file_id FROM prints p WHERE p.id = print_materials.print_id);

DROP INDEX prints_file_started;

CREATE INDEX prints_file_cover ON prints (file_id, started_at, id, printer_id, outcome);

DROP INDEX prints_started;

CREATE INDEX prints_started ON prints (started_at, id, file_id);

DROP INDEX prints_outcome_started;

CREATE INDEX prints_outcome_started ON prints (outcome, started_at, id, file_id);

DROP INDEX prints_printer_started_id;

CREATE INDEX prints_printer_started_id ON prints (printer_id, started_at, id, outcome, file_id);

DROP INDEX print_materials_started;

CREATE INDEX print_materials_started ON print_materials (material, started_at, print_id, file_id, printer_id, outcome);

DROP INDEX print_materials_printer;

CREATE INDEX print_materials_printer ON print_materials (material, printer_id, started_at, print_id, outcome, file_id);

DROP INDEX print_materials_outcome;

CREATE INDEX print_materials_outcome ON print_materials (material, outcome, started_at, print_id, file_id);

CREATE INDEX print_materials_file ON print_materials (material, file_id, started_at, print_id, printer_id, outcome);
