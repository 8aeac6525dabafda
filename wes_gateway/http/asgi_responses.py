"""Answers written straight to the ASGI stack, for the operations served there once
Connexion has checked them (the trace calls, RunWorkflow's multipart bodies)."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Send


async def send_json(send: Send, body: Any, *, newline: bool = False) -> None:
    """A 200 with ``body`` as compact JSON (and a final newline, as Flask writes its JSON
    answers, with ``newline``)."""
    payload = json.dumps(body, separators=(",", ":")).encode() + (b"\n" if newline else b"")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
