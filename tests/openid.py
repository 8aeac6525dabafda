"""A real OpenID provider for the tests: tests/oidc_provider/provider.mjs (the npm package
oidc-provider) in a child process, over HTTP on 127.0.0.1. Its packages are installed with
``npm ci`` from the committed lock file on first use; without node or npm the tests that
need it skip, saying so."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.live import free_port

FOLDER = Path(__file__).resolve().parent / "oidc_provider"
AUDIENCE = "urn:wes-gateway:api"  # the provider's default resource
DASHBOARD_ID = "dashboard"
DASHBOARD_SECRET = "dashboard-secret"


def ensure_installed() -> None:
    """node_modules from package-lock.json (npm ci), or a skip naming what is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the OpenID provider the OIDC tests use")
    if (FOLDER / "node_modules" / "oidc-provider" / "package.json").is_file():
        return
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm ci in {FOLDER} failed:\n{done.stdout}\n{done.stderr}")


def key_set(kid: str) -> dict:
    key = RSAKey.generate_key(
        2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True
    )
    return {"keys": [key.as_dict(private=True)]}


class Provider:
    """One provider process; ``restart`` starts it again on the same port with other keys
    (a key rotation, as the gateway sees it)."""

    def __init__(self, folder: Path, *, issuer: str | None = None, redirect_uri: str = "") -> None:
        self.folder = folder
        self.port = free_port()
        self.issuer = issuer or f"http://127.0.0.1:{self.port}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.redirect_uri = redirect_uri
        self.process: subprocess.Popen | None = None
        self.log = folder / f"provider-{self.port}.log"
        # client id -> groups, read by the provider at each token (see provider.mjs)
        self.groups_file = folder / f"groups-{self.port}.json"

    def start(self, keys: dict) -> None:
        keys_file = self.folder / f"keys-{self.port}-{time.monotonic_ns()}.json"
        keys_file.write_text(json.dumps(keys))
        env = {
            **os.environ,
            "PORT": str(self.port),
            "ISSUER": self.issuer,
            "KEYS_FILE": str(keys_file),
            "REDIRECT_URI": self.redirect_uri,
            "GROUPS_FILE": str(self.groups_file),
        }
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                ["node", str(FOLDER / "provider.mjs")],
                cwd=FOLDER,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening"):
            self.stop()
            raise RuntimeError(f"the OpenID provider did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, keys: dict) -> None:
        self.stop()
        self.start(keys)

    def set_groups(self, client_id: str, groups: list[str]) -> None:
        """The groups the next tokens of ``client_id`` carry."""
        known = json.loads(self.groups_file.read_text()) if self.groups_file.exists() else {}
        known[client_id] = groups
        self.groups_file.write_text(json.dumps(known))

    def client_token(self, client_id: str, *, resource: str | None = None) -> str:
        """A JWT access token for a program client (client credentials)."""
        data = {"grant_type": "client_credentials", "scope": "api"}
        if resource:
            data["resource"] = resource
        answer = httpx.post(
            f"{self.url}/token", data=data, auth=(client_id, f"{client_id}-secret"), timeout=10
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]


@contextmanager
def provider(
    folder: Path, *, issuer: str | None = None, keys: dict | None = None, redirect_uri: str = ""
) -> Iterator[Provider]:
    ensure_installed()
    running = Provider(folder, issuer=issuer, redirect_uri=redirect_uri)
    running.start(keys or key_set("first"))
    try:
        yield running
    finally:
        running.stop()


def unsigned(token: str) -> str:
    """``token`` re-headed as alg "none", its signature dropped."""
    _, payload, _ = token.split(".")
    header = {"alg": "none", "typ": "JWT"}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{head}.{payload}."
