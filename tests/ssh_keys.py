"""Real SSH private keys for tests that store or use one (made once per test process)."""

from __future__ import annotations

from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


@cache
def openssh_key(passphrase: str | None = None) -> str:
    """An Ed25519 key in OpenSSH's format, sealed with ``passphrase`` when given."""
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption)
        .decode()
    )


def body_of(key: str) -> str:
    """A line of the key's body: what a leak of the key would show."""
    return key.splitlines()[2]


def public_line(key: str, passphrase: str | None = None) -> str:
    """The key's ``authorized_keys`` line."""
    opened = serialization.load_ssh_private_key(
        key.encode(), passphrase.encode() if passphrase else None
    )
    return (
        opened.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
