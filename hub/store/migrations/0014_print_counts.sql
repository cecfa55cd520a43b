-- Prints per printer and outcome ('running' while open), kept by hub/store/prints.py as it
-- opens and closes records, so the history's total for the common filters (none, printer,
-- outcome) is a sum of a few rows instead of a count over every print.
CREATE TABLE print_counts (
    printer_id VARCHAR(36) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (printer_id, outcome)
);

INSERT INTO print_counts (printer_id, outcome, n)
SELECT printer_id, COALESCE(outcome, 'running'), COUNT(*) FROM prints
GROUP BY printer_id, COALESCE(outcome, 'running');
