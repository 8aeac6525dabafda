"""A GA4GH TRS v2 registry on 127.0.0.1 for the tests: the paths and answer shapes of the
TRS 2.0 spec (ga4gh/tool-registry-service-schemas, openapi/openapi.yaml), filled as
Dockstore fills them for a Nextflow workflow (its ToolVersion with ``name`` the git
branch or tag, its NFL file list with ``nextflow.config`` the primary descriptor, its
FileWrapper with a raw.githubusercontent.com ``url``).

Paths served, under ``/ga4gh/trs/v2``:
  GET /tools/{id}/versions/{version_id}
  GET /tools/{id}/versions/{version_id}/{type}/files
  GET /tools/{id}/versions/{version_id}/{type}/descriptor
Anything else, or a tool or version it does not hold, is a 404 with the spec's Error
body. ``requests`` lists the paths asked, decoded, in order. A tool id ``slow`` answers
after ``slow_seconds``; ``drip`` sends its answer a byte at a time over
``slow_seconds``; ``huge`` answers with more JSON than a registry ever sends.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote

BASE_PATH = "/ga4gh/trs/v2"
RNASEQ = "#workflow/github.com/nf-core/rnaseq"


@dataclass
class ToolVersion:
    name: str
    descriptor_types: list[str] = field(default_factory=lambda: ["NFL"])
    # (path, file_type) of the version's files for its descriptor type
    files: list[tuple[str, str]] = field(
        default_factory=lambda: [
            ("nextflow.config", "PRIMARY_DESCRIPTOR"),
            ("main.nf", "SECONDARY_DESCRIPTOR"),
        ]
    )
    descriptor_url: str | None = None


def dockstore_tools() -> dict[str, dict[str, ToolVersion]]:
    """The tools a test registry holds unless a test gives its own."""
    return {
        RNASEQ: {
            "3.14.0": ToolVersion(
                "3.14.0",
                descriptor_url="https://raw.githubusercontent.com/nf-core/rnaseq/3.14.0/nextflow.config",
            )
        },
        "#workflow/github.com/dockstore/hello_world": {
            "master": ToolVersion(
                "master",
                descriptor_types=["CWL"],
                files=[("/Dockstore.cwl", "PRIMARY_DESCRIPTOR")],
            )
        },
    }


class Registry:
    def __init__(self, tools: dict[str, dict[str, ToolVersion]], slow_seconds: float) -> None:
        self.tools = tools
        self.slow_seconds = slow_seconds
        self.requests: list[str] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}{BASE_PATH}"

    def uri(self, tool_id: str, version: str) -> str:
        """The TRS URI of a tool version here."""
        return f"trs://{self.host}/{quote(tool_id, safe='')}/{quote(version, safe='')}"

    def answer(self, path: str) -> tuple[int, Any]:
        if not path.startswith(BASE_PATH + "/tools/"):
            return 404, {"code": 404, "message": "not a TRS path"}
        # Split before decoding: the id and version are URL-encoded path segments.
        parts = path[len(BASE_PATH + "/tools/") :].split("/")
        if len(parts) < 3 or parts[1] != "versions":
            return 404, {"code": 404, "message": "not a path of this registry"}
        tool_id, version_id, rest = unquote(parts[0]), unquote(parts[2]), parts[3:]
        self.requests.append("/".join([tool_id, version_id, *rest]))
        if tool_id == "slow":
            time.sleep(self.slow_seconds)
        if tool_id == "huge":
            return 200, {"name": "1", "padding": "x" * (2 * 1024 * 1024)}
        version = self.tools.get(tool_id, {}).get(version_id)
        if version is None:
            return 404, {"code": 404, "message": "Tool or version not found"}
        url = (
            f"{self.base_url}/tools/{quote(tool_id, safe='')}/versions/{quote(version_id, safe='')}"
        )
        if not rest:
            return 200, {
                "author": ["Harshil Patel", "Phil Ewels", "Rickard Hammarén"],
                "containerfile": False,
                "descriptor_type": version.descriptor_types,
                "descriptor_type_version": {t: [] for t in version.descriptor_types},
                "id": f"{tool_id}:{version_id}",
                "images": [],
                "included_apps": [],
                "is_production": False,
                "meta_version": "2024-02-06 12:00:00.0",
                "name": version.name,
                "signed": False,
                "url": url,
                "verified": False,
                "verified_source": [],
            }
        if len(rest) == 2 and rest[0] in version.descriptor_types and rest[1] == "files":
            return 200, [{"file_type": kind, "path": path} for path, kind in version.files]
        if len(rest) == 2 and rest[0] in version.descriptor_types and rest[1] == "descriptor":
            return 200, {
                "checksum": [{"checksum": "0" * 64, "type": "sha-256"}],
                "content": "manifest { mainScript = 'main.nf' }\n",
                "url": version.descriptor_url,
            }
        return 404, {"code": 404, "message": "The tool can not be output in the specified type."}


@contextmanager
def serve(
    tools: dict[str, dict[str, ToolVersion]] | None = None, slow_seconds: float = 5.0
) -> Iterator[Registry]:
    registry = Registry(dockstore_tools() if tools is None else tools, slow_seconds)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            if "/tools/drip/" in self.path:
                self._drip()
                return
            status, body = registry.answer(self.path.split("?")[0])
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a client that gave up on a slow answer

        def _drip(self) -> None:
            """A JSON answer sent a byte at a time, never long silent, over slow_seconds."""
            registry.requests.append("drip")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            ends = time.monotonic() + registry.slow_seconds
            try:
                self.wfile.write(b'{"name": "')
                while time.monotonic() < ends:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
                self.wfile.write(b'"}')
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    registry.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
