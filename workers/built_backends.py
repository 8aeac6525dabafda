"""Backends a worker has built, kept for a while and used again.

Building a cloud backend makes an SDK session and its clients (about half a second on
AWS, with four clients), and a worker asks for one for each run it submits and for each
compute environment in every poll cycle. The clients are safe to share between threads
and keep their connections, so one is built per compute environment and kept.

A backend is kept under a digest of its platform and its whole config, with the
credentials it was given opened: a changed compute environment or changed credentials
(read again on every request) get a new one. Kept at most ``MAX_KEPT`` and ``TTL``
seconds each, so a config no longer used is let go.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from workers.backends.base import Backend

TTL = 600.0
MAX_KEPT = 64


class BuiltBackends:
    def __init__(self, ttl: float = TTL, most: int = MAX_KEPT) -> None:
        self._ttl = ttl
        self._most = most
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[float, Backend]] = OrderedDict()

    @staticmethod
    def _key(platform: str | None, config: dict[str, Any]) -> str:
        text = json.dumps([platform, config], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(
        self, platform: str | None, config: dict[str, Any], build: Callable[[], Backend]
    ) -> Backend:
        """The backend kept for this platform and config, or a new one from ``build``."""
        key = self._key(platform, config)
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] > now:
                self._kept.move_to_end(key)
                return kept[1]
        backend = build()  # outside the lock: another config need not wait for it
        with self._lock:
            self._kept[key] = (now + self._ttl, backend)
            self._kept.move_to_end(key)
            while len(self._kept) > self._most:
                self._kept.popitem(last=False)
        return backend

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
