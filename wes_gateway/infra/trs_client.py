"""GET a JSON answer from a GA4GH TRS registry, within a time and a size limit.

The registry is outside the service and a submission waits on it, so every call is held
to one deadline for the whole answer (not only per socket read), the body is read up to
a bound before any JSON parsing, and a redirect may not lead to another host. What went
wrong is raised as one of three errors the caller turns into its own answer.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

MAX_ANSWER_BYTES = 1024 * 1024
_CHUNK = 64 * 1024


class TrsUnreachable(Exception):
    """The registry did not answer usefully: no connection, a timeout, a 5xx, an answer
    too large or not JSON."""


class TrsNotFound(Exception):
    """The registry answered 404: it has no such tool or version."""


class TrsRefused(Exception):
    """The registry answered another 4xx (the status is the message)."""


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the host asked (a registry may move its paths; it
    may not send the service to another machine)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (old.scheme, old.netloc.lower()) != (new.scheme, new.netloc.lower()):
            raise TrsUnreachable(f"redirected to another host ({new.netloc})")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameHostRedirects)


def get_json(url: str, *, timeout: float) -> Any:
    """The JSON of ``GET url``. ``timeout`` bounds the whole exchange, in seconds."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "wes-gateway"}
    )
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            body = _read_bounded(answer, deadline)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            raise TrsNotFound(url) from None
        if 400 <= exc.code < 500:
            raise TrsRefused(f"HTTP {exc.code}") from None
        raise TrsUnreachable(f"it answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise TrsUnreachable(_reason(exc.reason, timeout)) from None
    except TimeoutError:
        raise TrsUnreachable(f"no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise TrsUnreachable(_reason(exc, timeout)) from None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise TrsUnreachable("its answer is not JSON") from None


def _read_bounded(answer, deadline: float) -> bytes:
    length = answer.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > MAX_ANSWER_BYTES:
        raise TrsUnreachable(f"its answer is over {MAX_ANSWER_BYTES // 1024} KiB")
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = answer.read1(_CHUNK) if hasattr(answer, "read1") else answer.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise TrsUnreachable(f"its answer is over {MAX_ANSWER_BYTES // 1024} KiB")
        chunks.append(chunk)


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "its name does not resolve"
    return str(reason) or type(reason).__name__
