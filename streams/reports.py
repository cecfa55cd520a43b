"""Facts read off one PrinterState report, shared by every pipeline."""

from __future__ import annotations

from hub.model import Job, PrinterState, PrintState


def is_up(report: PrinterState) -> bool:
    """True when the report comes over a live link (online and not in the OFFLINE state)."""
    return report.online and report.state is not PrintState.OFFLINE


def identified_job(report: PrinterState) -> Job | None:
    """The report's job if it says which print it is (a file or a protocol key), else None."""
    job = report.job
    if job is None or not (job.file or job.key):
        return None
    return job
