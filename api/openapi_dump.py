"""Write the OpenAPI document to a file: `python -m api.openapi_dump docs/openapi.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import api.app  # noqa: F401  (importing the app registers every blueprint's endpoints)
from api import openapi


def render(document: dict[str, Any] | None = None) -> str:
    """The document as stable, diff-friendly JSON text."""
    return json.dumps(document or openapi.build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the document to the path given (stdout when none)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        print("usage: python -m api.openapi_dump [OUTPUT.json]", file=sys.stderr)
        return 2
    text = render()
    if not args or args[0] == "-":
        sys.stdout.write(text)
    else:
        Path(args[0]).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
