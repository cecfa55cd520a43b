-- History file search by distinct name, and the outcome `completed` (PostgreSQL form; the
-- SQLite one is 0016_history_files.sqlite.sql, which says why).
--
-- Names are keyed and indexed by md5(file): a btree entry must stay under ~2.7 kB, a file
-- name has no such limit. The trigram index moves from prints (0015) to the distinct names.
DROP INDEX prints_file_trgm;

CREATE TABLE history_files (
    file TEXT NOT NULL,
    n INTEGER NOT NULL
);

CREATE UNIQUE INDEX history_files_key ON history_files (md5(file));

INSERT INTO history_files (file, n) SELECT file, COUNT(*) FROM prints GROUP BY file;

CREATE INDEX history_files_trgm ON history_files USING gin (LOWER(file) gin_trgm_ops);

CREATE INDEX prints_file_started ON prints (md5(file), started_at, id);

-- A print that ended well is `completed` in history (the issue's word; the lifecycle events on
-- /ws, webhooks and MQTT keep `finished`, a contract of their own). A closed record's state is
-- its outcome, so both move, and so do the counts and the materials relation that key on it.
UPDATE prints SET outcome = 'completed' WHERE outcome = 'finished';

UPDATE prints SET state = 'completed' WHERE state = 'finished';

UPDATE print_counts SET outcome = 'completed' WHERE outcome = 'finished';

UPDATE print_materials SET outcome = 'completed' WHERE outcome = 'finished';

UPDATE print_material_counts SET outcome = 'completed' WHERE outcome = 'finished';
