"""Text no database column can hold: a NUL character (PostgreSQL refuses it in text and
JSON) or half of a UTF-16 surrogate pair (it is not UTF-8). Requests carrying either are
refused with a 400 naming where, before anything is stored."""

from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
PROBLEM = "holds a NUL character or an unpaired surrogate, which cannot be stored"


def unstorable(value: Any, where: str = "body") -> str | None:
    """The place in a decoded JSON value (``body.params.x``) of the first string, key or
    value, that cannot be stored; None when all of it can."""
    if isinstance(value, str):
        return where if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _UNSTORABLE.search(key):
                return f"{where} (a key)"
            found = unstorable(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable(item, f"{where}[{index}]")
            if found:
                return found
    return None
