-- History file search by distinct name, and the outcome `completed` (SQLite form; the
-- PostgreSQL one is 0016_history_files.postgresql.sql).
--
-- A farm prints the same files again and again, so the file-name substring filter searches
-- the distinct names (history_files, with how many prints each has) instead of every print: the
-- trigram index (FTS5, 3+ characters) or a scan of the names finds the matching names, their
-- `n` sum to the total, and a prints index on (file, started_at, id) reads their prints. This
-- replaces the per-print trigram table of 0015. hub/store/prints.py keeps history_files (and the
-- FTS5 copy of a new name) in the transaction that opens a record.
DROP TABLE prints_file;

CREATE TABLE history_files (
    file TEXT NOT NULL PRIMARY KEY,
    n INTEGER NOT NULL
);

INSERT INTO history_files (file, n) SELECT file, COUNT(*) FROM prints GROUP BY file;

CREATE VIRTUAL TABLE history_files_fts USING fts5(file, tokenize = 'trigram');

INSERT INTO history_files_fts (file) SELECT file FROM history_files;

CREATE INDEX prints_file_started ON prints (file, started_at, id);

-- A print that ended well is `completed` in history (the issue's word; the lifecycle events on
-- /ws, webhooks and MQTT keep `finished`, a contract of their own). A closed record's state is
-- its outcome, so both move, and so do the counts and the materials relation that key on it.
UPDATE prints SET outcome = 'completed' WHERE outcome = 'finished';

UPDATE prints SET state = 'completed' WHERE state = 'finished';

UPDATE print_counts SET outcome = 'completed' WHERE outcome = 'finished';

UPDATE print_materials SET outcome = 'completed' WHERE outcome = 'finished';

UPDATE print_material_counts SET outcome = 'completed' WHERE outcome = 'finished';
