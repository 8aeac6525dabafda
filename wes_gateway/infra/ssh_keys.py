"""SSH private keys as users paste them: OpenSSH (``-----BEGIN OPENSSH PRIVATE KEY-----``)
or PEM (PKCS#1, PKCS#8, SEC1), optionally protected by a passphrase."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
KINDS = {
    rsa.RSAPrivateKey: "rsa",
    ec.EllipticCurvePrivateKey: "ecdsa",
    ed25519.Ed25519PrivateKey: "ed25519",
}


class UnusableKey(ValueError):
    """A key that is not one, is of a kind SSH servers do not take, or that its
    passphrase (or the lack of one) does not open. The message says which."""


def load_private_key(text: str, passphrase: str | None) -> tuple[str, PrivateKey]:
    """The kind (``rsa``, ``ecdsa``, ``ed25519``) and the opened key."""
    data = text.strip().encode() + b"\n"
    password = passphrase.encode() if passphrase else None
    loader = (
        serialization.load_ssh_private_key
        if b"OPENSSH PRIVATE KEY" in data
        else serialization.load_pem_private_key
    )
    try:
        key = loader(data, password=password)
    except TypeError as exc:  # a passphrase given to a clear key, or none to a sealed one
        if password is None:
            raise UnusableKey("the key is protected by a passphrase; give it too") from None
        raise UnusableKey("the key is not protected by a passphrase; give none") from exc
    except ValueError as exc:
        if password is not None:
            raise UnusableKey(
                f"the passphrase does not open the key, or it is damaged ({exc})"
            ) from None
        raise UnusableKey(f"not a readable private key ({exc})") from None
    except Exception as exc:  # cryptography's UnsupportedAlgorithm and the like
        raise UnusableKey(f"a key of a kind SSH cannot use ({exc})") from None
    for cls, kind in KINDS.items():
        if isinstance(key, cls):
            return kind, key
    raise UnusableKey(f"a {type(key).__name__} key; SSH takes RSA, ECDSA or Ed25519 keys")
