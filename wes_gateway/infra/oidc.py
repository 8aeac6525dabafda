"""An OpenID provider as the service sees it: its discovery document, its signing keys
(the JWKS, cached and fetched again when a token names a key we do not hold, so a key
rotation needs no restart) and the check of a JWT it signed (signature, ``iss``, ``aud``,
``exp``, ``nbf``) with joserfc. Nothing here knows users: the domain maps claims to them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

# Asymmetric algorithms only: an "HS256" token would be checked with a public key as its
# secret, and "none" is no signature at all.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY = 30  # seconds of clock skew allowed on exp, nbf and iat
DISCOVERY_MAX_AGE = 3600.0
JWKS_MAX_AGE = 300.0  # keys are fetched again at least this often
JWKS_MIN_REFETCH = 2.0  # and an unknown key id fetches them at most this often
FETCH_TIMEOUT = 10.0
MAX_DOCUMENT = 1024 * 1024


class InvalidToken(Exception):
    """The JWT is not one the provider signed for us, or it is no longer valid."""


class ProviderUnavailable(Exception):
    """The provider's discovery document or keys could not be read."""


def fetch_json(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as answer:  # noqa: S310
            body = answer.read(MAX_DOCUMENT + 1)
    except OSError as exc:
        raise ProviderUnavailable(f"{url}: {exc}") from exc
    if len(body) > MAX_DOCUMENT:
        raise ProviderUnavailable(f"{url}: answer too large")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ProviderUnavailable(f"{url}: not JSON") from exc
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"{url}: not a JSON object")
    return document


class OidcProvider:
    """One issuer: discovery, keys and token checks. Safe to share between threads."""

    def __init__(self, issuer: str, audiences: tuple[str, ...]) -> None:
        self.issuer = issuer
        self.audiences = audiences
        self._lock = threading.Lock()
        self._discovery: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, KeySet] | None = None

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached for an hour)."""
        with self._lock:
            if self._discovery and time.monotonic() - self._discovery[0] < DISCOVERY_MAX_AGE:
                return self._discovery[1]
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = fetch_json(url)
        if document.get("issuer") != self.issuer:
            raise ProviderUnavailable(
                f"{url}: names issuer {document.get('issuer')!r}, not {self.issuer!r}"
            )
        with self._lock:
            self._discovery = (time.monotonic(), document)
        return document

    def _key_set(self, *, refresh: bool) -> KeySet:
        with self._lock:
            cached = self._keys
        if cached is not None:
            age = time.monotonic() - cached[0]
            if age < JWKS_MAX_AGE and not (refresh and age >= JWKS_MIN_REFETCH):
                return cached[1]
        jwks_uri = self.metadata().get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ProviderUnavailable("the discovery document has no jwks_uri")
        try:
            keys = KeySet.import_key_set(fetch_json(jwks_uri))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ProviderUnavailable(f"{jwks_uri}: not a key set ({exc})") from exc
        with self._lock:
            self._keys = (time.monotonic(), keys)
        return keys

    def _header(self, token: str) -> dict[str, Any]:
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(f"not a signed JWT ({exc})") from exc
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        return header

    def verify(
        self, token: str, *, audiences: tuple[str, ...] | None = None, nonce: str | None = None
    ) -> dict[str, Any]:
        """The claims of ``token`` when the provider signed it with one of its current keys
        and ``iss``, ``aud`` (one of ``audiences``, default the configured ones), ``exp``
        and ``nbf`` hold (and ``nonce`` when given); InvalidToken otherwise."""
        header = self._header(token)
        kid = header.get("kid")
        keys = self._key_set(refresh=False)
        if kid is not None and not _has_kid(keys, kid):
            keys = self._key_set(refresh=True)  # the provider may have rotated its keys
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise InvalidToken(f"signature not verified ({exc})") from exc
        wanted = audiences if audiences is not None else self.audiences
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "values": list(wanted)},
            "exp": {"essential": True},
        }
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        registry = jwt.JWTClaimsRegistry(leeway=LEEWAY, **options)
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise InvalidToken(f"claims not accepted ({exc})") from exc
        return dict(decoded.claims)


def _has_kid(keys: KeySet, kid: str) -> bool:
    try:
        keys.get_by_kid(kid)
    except (ValueError, KeyError, JoseError):
        return False
    return True
