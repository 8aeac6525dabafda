"""Opaque, signed page tokens for keyset pagination.

A token carries the sort key of the last item served, the list it belongs to and who asked,
under an HMAC. A forged, altered or foreign token is refused (400), so a cursor can never
be used to probe another user's list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from wes_gateway.domain.errors import InvalidField

_MAC_BYTES = 16


def encode_page_token(key: bytes, scope: str, cursor: list[Any]) -> str:
    payload = json.dumps([scope, cursor], separators=(",", ":")).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")


def decode_page_token(key: bytes, scope: str, token: str, field: str = "page_token") -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidField(field, "not a page token issued by this service") from None
    mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
    expected = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, expected):
        raise InvalidField(field, "not a page token issued by this service")
    token_scope, cursor = json.loads(payload)
    if token_scope != scope:
        raise InvalidField(field, "this page token belongs to another list")
    return cursor
