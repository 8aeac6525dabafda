"""Single sign-on: bearer JWTs of the configured OpenID provider accepted on both APIs,
each mapped to a user of ours (made on first sign-in), and the dashboard's sign-in
through the provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import quote, urlencode

import flask
from connexion.exceptions import ProblemException
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from wes_gateway.domain.errors import InvalidField
from wes_gateway.domain.identities import oidc_principal
from wes_gateway.domain.models import User
from wes_gateway.domain.tokens import Principal, create_token
from wes_gateway.http.context import public_base_url
from wes_gateway.http.runtime import Runtime, current
from wes_gateway.infra.config import Settings
from wes_gateway.infra.oidc import InvalidToken, OidcProvider, ProviderUnavailable

log = logging.getLogger(__name__)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and len(token) < 16384


class OidcAuth:
    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer
        self.settings = settings
        self.provider = OidcProvider(settings.oidc_issuer, settings.oidc_audiences)

    def principal_for(self, session: Session, claims: dict) -> Principal:
        return oidc_principal(
            session,
            claims,
            username_claim=self.settings.oidc_username_claim,
            admin_group=self.settings.oidc_admin_group,
            link_existing=self.settings.oidc_link_existing_users,
        )

    def authenticate(self, session: Session, token: str) -> Principal | None:
        """The principal of a bearer JWT the provider signed for one of our audiences, or
        None (a 401) when it is not one or is expired. When the provider's keys cannot be
        read the token cannot be judged: a 503 (try again), not a 401 that would tell a
        client its good token is bad."""
        try:
            claims = self.provider.verify(token)
        except InvalidToken as exc:
            log.info("bearer JWT refused: %s", exc)
            return None
        except ProviderUnavailable as exc:
            log.warning("OpenID provider unavailable: %s", exc)
            raise ProblemException(
                status=503,
                title="Service Unavailable",
                detail="single sign-on: the OpenID provider cannot be reached to check this "
                "token; try again",
                headers={"Retry-After": "30"},
            ) from None
        try:
            return self.principal_for(session, claims)
        except InvalidField as exc:
            log.info("bearer JWT refused: %s", exc.message)
            return None


# The dashboard's sign-in: the authorization-code flow with PKCE, state and nonce.
#
#   GET  /sso/login     keeps state, nonce and the PKCE verifier in a signed, HttpOnly,
#                       SameSite=Lax cookie (ten minutes) and sends the browser to the
#                       provider's authorization endpoint.
#   GET  /sso/callback  checks state against that cookie, exchanges the code (with the
#                       client secret and the verifier) at the token endpoint, checks the ID
#                       token (signature, iss, aud = the client id, exp, nonce), makes the
#                       user on first sign-in and a service token for it that ends after
#                       SESSION_LIFETIME; that token travels in a signed, HttpOnly,
#                       SameSite=Strict cookie valid for a minute, and the browser goes to
#                       the dashboard.
#   POST /sso/session   answers that token once, to the dashboard's own script (a
#                       same-origin fetch), and clears the cookie: the dashboard keeps it in
#                       the tab's session storage as it keeps a pasted token. The token is
#                       never in a URL, a page or a log.
LOGIN_PATH = "/sso/login"
CALLBACK_PATH = "/sso/callback"
SESSION_PATH = "/sso/session"
LOGIN_COOKIE = "wes_gateway_sso_login"
HANDOFF_COOKIE = "wes_gateway_sso_handoff"
LOGIN_MAX_AGE = 600
HANDOFF_MAX_AGE = 60
SESSION_LIFETIME = timedelta(hours=8)
SESSION_TOKEN_NAME = "dashboard sign-in"


def _runtime() -> Runtime:
    return current()


def _signer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.signing_key, salt=f"wes-gateway-sso-{purpose}")


def _callback_url() -> str:
    return public_base_url() + CALLBACK_PATH


def _secure() -> bool:
    return public_base_url().startswith("https://")


def _refuse(status: int, message: str) -> flask.Response:
    """A sign-in that cannot go on: a plain page with a way back (no user data in it)."""
    response = flask.Response(
        f"Sign-in failed: {message}\n\nBack to the dashboard: /\n",
        status=status,
        mimetype="text/plain",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/sso")
    return response


def _sso(settings: Settings) -> OidcAuth | None:
    runtime = _runtime()
    if runtime.oidc is None or not settings.oidc_client_id:
        return None
    return runtime.oidc


def sso_login() -> flask.Response:
    runtime = _runtime()
    sso = _sso(runtime.settings)
    if sso is None:
        return _refuse(404, "single sign-on is not configured")
    try:
        endpoint = sso.provider.metadata()["authorization_endpoint"]
    except (ProviderUnavailable, KeyError):
        log.warning("OpenID provider unavailable", exc_info=True)
        return _refuse(503, "the OpenID provider did not answer")
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": runtime.settings.oidc_client_id,
            "redirect_uri": _callback_url(),
            "scope": "openid profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    response = flask.redirect(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", 302)
    kept = _signer(runtime.settings, "login").dumps([state, nonce, verifier])
    response.set_cookie(
        LOGIN_COOKIE,
        kept,
        max_age=LOGIN_MAX_AGE,
        path="/sso",
        httponly=True,
        secure=_secure(),
        samesite="Lax",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _exchange(sso: OidcAuth, settings: Settings, code: str, verifier: str) -> dict:
    endpoint = sso.provider.metadata()["token_endpoint"]
    body = urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": _callback_url(),
            "code_verifier": verifier,
        }
    ).encode()
    basic = base64.b64encode(
        f"{quote(settings.oidc_client_id or '', safe='')}:"
        f"{quote(settings.oidc_client_secret or '', safe='')}".encode()
    ).decode()
    request = urllib.request.Request(
        endpoint,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read(1024 * 1024))
    except urllib.error.HTTPError as exc:
        raise InvalidToken(f"the token endpoint refused the code ({exc.code})") from exc
    except (OSError, ValueError) as exc:
        raise ProviderUnavailable(f"{endpoint}: {exc}") from exc


def sso_callback() -> flask.Response:
    runtime = _runtime()
    settings = runtime.settings
    sso = _sso(settings)
    if sso is None:
        return _refuse(404, "single sign-on is not configured")
    args = flask.request.args
    if args.get("error"):
        return _refuse(400, f"error: the provider answered {args.get('error')[:100]!r}")
    try:
        state, nonce, verifier = _signer(settings, "login").loads(
            flask.request.cookies.get(LOGIN_COOKIE, ""), max_age=LOGIN_MAX_AGE
        )
    except BadSignature:
        return _refuse(400, "state: no sign-in under way in this browser (or it took too long)")
    if not hmac.compare_digest(str(args.get("state", "")), state):
        return _refuse(400, "state: does not match the sign-in under way")
    code = args.get("code")
    if not code:
        return _refuse(400, "code: missing")
    try:
        answer = _exchange(sso, settings, code, verifier)
        id_token = answer.get("id_token") if isinstance(answer, dict) else None
        if not isinstance(id_token, str):
            raise InvalidToken("the token endpoint answered no ID token")
        claims = sso.provider.verify(
            id_token, audiences=(settings.oidc_client_id or "",), nonce=nonce
        )
    except InvalidToken as exc:
        log.info("sign-in refused: %s", exc)
        return _refuse(401, "the provider's answer was not accepted")
    except ProviderUnavailable:
        log.warning("OpenID provider unavailable", exc_info=True)
        return _refuse(503, "the OpenID provider did not answer")
    with runtime.db.session() as session:
        try:
            who = sso.principal_for(session, claims)
        except InvalidField as exc:
            return _refuse(400, exc.message)
        user = session.get(User, who.user_id)
        _, token = create_token(
            session, user, description=SESSION_TOKEN_NAME, lifetime=SESSION_LIFETIME
        )
    response = flask.redirect("/#/runs", 302)
    response.delete_cookie(LOGIN_COOKIE, path="/sso")
    response.set_cookie(
        HANDOFF_COOKIE,
        _signer(settings, "handoff").dumps(token),
        max_age=HANDOFF_MAX_AGE,
        path=SESSION_PATH,
        httponly=True,
        secure=_secure(),
        samesite="Strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def sso_session() -> flask.Response:
    settings = _runtime().settings
    try:
        token = _signer(settings, "handoff").loads(
            flask.request.cookies.get(HANDOFF_COOKIE, ""), max_age=HANDOFF_MAX_AGE
        )
    except BadSignature:
        response = flask.jsonify({"message": "no sign-in to hand over"})
        response.status_code = 404
    else:
        response = flask.jsonify({"token": token})
    response.delete_cookie(HANDOFF_COOKIE, path=SESSION_PATH)
    response.headers["Cache-Control"] = "no-store"
    return response


def register(app) -> None:
    app.add_url_rule(LOGIN_PATH, "sso_login", sso_login)
    app.add_url_rule(CALLBACK_PATH, "sso_callback", sso_callback)
    app.add_url_rule(SESSION_PATH, "sso_session", sso_session, methods=["POST"])
