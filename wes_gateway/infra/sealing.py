"""Envelope encryption of stored secrets (credentials' keys, pipeline secrets).

Each value is sealed with a data key of its own (Fernet: AES-128-CBC with HMAC-SHA256),
and that data key is sealed with the key-encryption key, derived by HKDF-SHA256 from the
configured key material (``WES_GATEWAY_CREDENTIALS_KEY``, else ``WES_GATEWAY_SECRET_KEY``).
A sealed value is text: ``v1.<sealed data key>.<sealed value>``. Opening tries every
configured key, newest first, so an old key kept after a new one still opens what it
sealed while the new one seals from then on.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
_INFO = b"wes-gateway credentials key-encryption key v1"
_SALT = b"wes-gateway/sealing"


class CannotOpen(Exception):
    """A sealed value that no configured key opens (the key changed, or the text was
    altered)."""


def _derive(material: bytes) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(material)
    return base64.urlsafe_b64encode(key)


class Sealer:
    """Seals and opens JSON-able values with key material given newest first."""

    def __init__(self, materials: Sequence[bytes]) -> None:
        if not materials:
            raise ValueError("no key material to seal with")
        self._materials = tuple(materials)

    @cached_property
    def _kek(self) -> MultiFernet:
        return MultiFernet([Fernet(_derive(material)) for material in self._materials])

    def seal(self, value: Any) -> str:
        data_key = Fernet.generate_key()
        wrapped = self._kek.encrypt(data_key).decode()
        body = Fernet(data_key).encrypt(json.dumps(value).encode()).decode()
        return f"{VERSION}.{wrapped}.{body}"

    def open(self, sealed: str) -> Any:
        version, _, rest = sealed.partition(".")
        wrapped, _, body = rest.partition(".")
        if version != VERSION or not wrapped or not body:
            raise CannotOpen("not a sealed value")
        try:
            data_key = self._kek.decrypt(wrapped.encode())
            return json.loads(Fernet(data_key).decrypt(body.encode()))
        except (InvalidToken, ValueError):
            raise CannotOpen("no configured key opens it (was the key changed?)") from None

    def reseal(self, sealed: str) -> str:
        """The same value with its data key sealed by the newest key (for rotation)."""
        version, _, rest = sealed.partition(".")
        wrapped, _, body = rest.partition(".")
        try:
            data_key = self._kek.decrypt(wrapped.encode())
        except InvalidToken:
            raise CannotOpen("no configured key opens it (was the key changed?)") from None
        return f"{version}.{self._kek.encrypt(data_key).decode()}.{body}"
