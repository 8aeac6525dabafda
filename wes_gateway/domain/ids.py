"""Identifiers: run ids like Tower's (14 base62 characters) and other random ids."""

from __future__ import annotations

import secrets
import string

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
RUN_ID_LENGTH = 14


def random_id(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_run_id() -> str:
    return random_id(RUN_ID_LENGTH)


def is_run_id(value: str) -> bool:
    return len(value) == RUN_ID_LENGTH and all(char in BASE62 for char in value)


# The largest integer id or count a 32-bit database column holds (user ids, offsets).
INT32_MAX = 2**31 - 1
# The largest id or count Seqera's API takes (its int64 fields and parameters).
INT64_MAX = 2**63 - 1
