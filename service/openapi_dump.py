"""Write the app's OpenAPI document: ``python -m service.openapi_dump openapi/openapi.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .config import Settings
from .main import create_app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of an app built with default settings (no env, no .env)."""
    return create_app(Settings(_env_file=None)).openapi()


def render() -> str:
    """The document as committed: the app's key order, 2-space indent, trailing newline."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "openapi/openapi.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
