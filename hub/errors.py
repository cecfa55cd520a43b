"""Domain errors the API maps to HTTP statuses."""

from __future__ import annotations


class HubError(Exception):
    """Base of errors with a message safe to show a client."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        # The rule the field breaks, when it is a JSON Schema keyword (`required`, …).
        self.rule = rule or self.code


class NotFound(HubError):
    """The resource does not exist."""

    status = 404
    code = "not_found"


class Conflict(HubError):
    """The change clashes with existing state (duplicate, wrong state)."""

    status = 409
    code = "conflict"


class Invalid(HubError):
    """The request is well-formed but not acceptable."""

    status = 400
    code = "validation_error"


class Timeout(HubError):
    """The printer did not answer in time."""

    status = 504
    code = "printer_timeout"


class TooLarge(HubError):
    """The upload is over the configured size limit."""

    status = 413
    code = "payload_too_large"


class Unsupported(HubError):
    """The upload is not of a type the hub takes (not a print file)."""

    status = 415
    code = "unsupported_file_type"
