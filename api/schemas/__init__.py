"""JSON Schemas of request and response payloads: they validate requests and build the OpenAPI document.

One module per resource (`api/schemas/<resource>.py`, shared pieces in `common`); every name is
re-exported here, so handlers keep writing `schemas.PRINTER`.
"""

from __future__ import annotations

from api.schemas.common import (
    HEALTH,
    MAX_PAGE,
    MAX_PER_PAGE,
    PAGE_QUERY,
    PROBLEM,
    TIMESTAMP,
    TIMESTAMP_OR_NULL,
    collection,
)
from api.schemas.files import (
    FILE,
    FILE_METADATA,
    SLOT_MATERIAL,
)
from api.schemas.outbound import (
    DELIVERY,
    DELIVERY_QUERY,
    EVENT_FILTER,
    event_filter,
)
from api.schemas.printers import (
    COMMAND,
    COMMAND_RESULT,
    PRINTER,
    PRINTER_CREATE,
    PRINTER_STATUS,
    PRINTER_UPDATE,
)
from api.schemas.queue import (
    DISPATCH,
    DISPATCH_RESULT,
    JOB_CREATE,
    JOB_UPDATE,
    QUEUE_JOB,
)
from api.schemas.users import (
    API_TOKEN,
    API_TOKEN_CREATE,
    API_TOKEN_CREATED,
    LOGIN,
    PASSWORD,
    PASSWORD_CHANGE,
    ROLE_ENUM,
    TOKEN,
    USER,
    USER_CREATE,
    USER_UPDATE,
    USERNAME,
)

__all__ = [
    "API_TOKEN",
    "API_TOKEN_CREATE",
    "API_TOKEN_CREATED",
    "COMMAND",
    "COMMAND_RESULT",
    "DELIVERY",
    "DELIVERY_QUERY",
    "DISPATCH",
    "DISPATCH_RESULT",
    "EVENT_FILTER",
    "FILE",
    "FILE_METADATA",
    "HEALTH",
    "JOB_CREATE",
    "JOB_UPDATE",
    "LOGIN",
    "MAX_PAGE",
    "MAX_PER_PAGE",
    "PAGE_QUERY",
    "PASSWORD",
    "PASSWORD_CHANGE",
    "PRINTER",
    "PRINTER_CREATE",
    "PRINTER_STATUS",
    "PRINTER_UPDATE",
    "PROBLEM",
    "QUEUE_JOB",
    "ROLE_ENUM",
    "SLOT_MATERIAL",
    "TIMESTAMP",
    "TIMESTAMP_OR_NULL",
    "TOKEN",
    "USER",
    "USERNAME",
    "USER_CREATE",
    "USER_UPDATE",
    "collection",
    "event_filter",
]
