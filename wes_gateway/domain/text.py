"""Text no database column can hold: a NUL character (PostgreSQL refuses it in text and
JSON) or half of a UTF-16 surrogate pair (it is not UTF-8). Requests carrying either are
refused with a 400 naming where, before anything is stored. So are JSON values nested
deeper than anything a client needs (every walk over them, the parser's included,
recurses: a thousand levels would exhaust Python's stack), and numbers JSON cannot hold."""

from __future__ import annotations

import math
import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
PROBLEM = "holds a NUL character or an unpaired surrogate, which cannot be stored"
MAX_DEPTH = 100
TOO_DEEP = f"arrays and objects nested more than {MAX_DEPTH} levels deep"
NOT_FINITE = "holds NaN or Infinity, which JSON has no way to write"


def shape_problem(value: Any) -> str | None:
    """What makes a decoded JSON value unfit to keep, or None: arrays and objects nested
    deeper than ``MAX_DEPTH``, or a NaN or infinite number (Python's parser accepts them;
    no JSON column stores them, and no client could read them back). Found without
    recursing, so a value of any depth is safe to ask about."""
    if isinstance(value, float):
        return None if math.isfinite(value) else NOT_FINITE
    if not isinstance(value, dict | list):
        return None
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        for child in item.values() if isinstance(item, dict) else item:
            kind = type(child)  # what json.loads makes: exact dicts, lists and floats
            if kind is dict or kind is list:
                if depth >= MAX_DEPTH:
                    return TOO_DEEP
                pending.append((child, depth + 1))
            elif kind is float and not math.isfinite(child):
                return NOT_FINITE
    return None


def unstorable_json(raw: bytes, value: Any) -> str | None:
    """``unstorable(value)`` for ``value`` decoded from the JSON text ``raw``. A NUL or a
    lone surrogate can only come out of a strictly parsed UTF-8 text through a ``\\u``
    escape, so a text without one needs no walk."""
    return unstorable(value) if b"\\u" in raw else None


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
