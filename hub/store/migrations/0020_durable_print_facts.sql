-- Facts about a running print that were held only in memory, kept across a hub restart.
-- The user whose forced dispatch (`POST /api/queue/dispatch`) started a run: the print's
-- `started_by` once its record is linked to the job.
ALTER TABLE queue_runs ADD COLUMN forced_by VARCHAR(64);

-- The AMS trays that fed a print followed from its start, in order, each with the progress
-- (%) at which it became active, as JSON `[[tray, progress], ...]`: each tray's share of the
-- print's filament when no queue mapping says it. NULL when not followed from the start.
ALTER TABLE prints ADD COLUMN tray_feed TEXT;
