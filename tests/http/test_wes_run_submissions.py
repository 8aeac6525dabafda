"""POST /runs with a multipart body, as it arrives over a connection: attachments reach
the run folder whole without the body ever being held in memory, and a body that is
too large, cut short or badly formed is a 4xx naming what is wrong that leaves no run
and no spooled file behind."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import WES
from tests.http.test_observability import samples, value
from tests.security.evidence import run_count
from wes_gateway.domain import run_files
from wes_gateway.http.app import create_app
from wes_gateway.http.wes.run_submissions import SPOOL_PREFIX, MultipartReader, Upload

BOUNDARY = "sTrEaMiNgBoUnDaRy"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
CHUNK = 64 * 1024
MIB = 1024 * 1024


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()
FIELDS = (
    part("workflow_type", b"NFL")
    + part("workflow_type_version", b"DSL2")
    + part("workflow_url", b"nf-core/demo")
)


def pattern(size: int) -> bytes:
    """``size`` bytes that are not all alike (a short read or a misplaced chunk shows)."""
    block = bytes(range(256)) * (CHUNK // 256)
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def spool(tmp_path, monkeypatch) -> Path:
    """Where uploads are spooled during the test (the system's temporary folder)."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def spooled(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{SPOOL_PREFIX}*"))


def post_streaming(
    app, headers: dict[str, str], chunks: Callable[[], AsyncIterator[bytes]]
) -> httpx.Response:
    """POST /runs with a body sent chunk by chunk, without a Content-Length, as a client
    streaming an upload does."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.post(
                f"{WES}/runs",
                headers={**headers, "Content-Type": CONTENT_TYPE},
                content=chunks(),
            )

    return asyncio.run(go())


def test_a_large_attachment_is_streamed_to_disk(app, alice, db, run_dir, spool):
    size = 24 * MIB
    data = pattern(size)
    seen_on_disk: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield FIELDS + part("workflow_attachment", b"", "data/big.bin")[:-2]
        for start in range(0, size, CHUNK):
            if start == size // 2:
                # Half the upload sent: its bytes so far are in a file, not in memory.
                seen_on_disk.extend(path.stat().st_size for path in spooled(spool))
            yield data[start : start + CHUNK]
        yield b"\r\n" + END

    count = run_count(db)
    tracemalloc.start()
    try:
        response = post_streaming(app, alice, chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    run_id = response.json()["run_id"]
    assert run_count(db) == count + 1
    assert len(seen_on_disk) == 1 and seen_on_disk[0] >= size // 2 - CHUNK, seen_on_disk
    staged = run_files.launch_dir(run_dir(run_id)) / "data" / "big.bin"
    assert staged.stat().st_size == size
    assert hashlib.sha256(staged.read_bytes()).digest() == hashlib.sha256(data).digest()
    # The test's own copy of the data is allocated before tracing starts.
    assert peak < size // 4, f"{peak} bytes held at once for a {size}-byte upload"
    assert spooled(spool) == []


@pytest.fixture(scope="module")
def one_mib_app(settings):
    return create_app(settings.model_copy(update={"max_request_mb": 1}))


def test_a_chunked_body_over_the_limit_is_413(one_mib_app, alice, db, spool):
    async def chunks() -> AsyncIterator[bytes]:
        yield FIELDS + part("workflow_attachment", b"", "big.bin")[:-2]
        for _ in range(2 * MIB // CHUNK):
            yield b"y" * CHUNK
        yield b"\r\n" + END

    count = run_count(db)
    response = post_streaming(one_mib_app, alice, chunks)
    assert response.status_code == 413, response.text
    assert response.json() == {"msg": "request body too large", "status_code": 413}
    assert run_count(db) == count
    assert spooled(spool) == []


@pytest.mark.parametrize("cut", [-len(END), -len(END) - 100], ids=["no-end", "mid-attachment"])
def test_a_body_cut_short_is_a_400(client, alice, db, spool, cut):
    body = FIELDS + part("workflow_attachment", pattern(10_000), "a.nf") + END
    count = run_count(db)
    response = client.post(
        f"{WES}/runs", headers={**alice, "Content-Type": CONTENT_TYPE}, content=body[:cut]
    )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "msg": "body: the multipart body ends before its closing boundary",
        "status_code": 400,
    }
    assert run_count(db) == count
    assert spooled(spool) == []


@pytest.mark.parametrize(
    "disposition",
    [b"form-data", b'form-data; filename="a.nf"', b'form-data; name=""'],
    ids=["text", "file", "empty-name"],
)
def test_a_part_without_a_name_is_a_400(client, alice, db, spool, disposition):
    body = FIELDS + f"--{BOUNDARY}\r\nContent-Disposition: ".encode() + disposition
    body += b"\r\n\r\nx\r\n" + END
    count = run_count(db)
    response = client.post(
        f"{WES}/runs", headers={**alice, "Content-Type": CONTENT_TYPE}, content=body
    )
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith("body: a part has no name")
    assert run_count(db) == count
    assert spooled(spool) == []


@pytest.mark.parametrize("name", ["workflow_type", "workflow_params", "workflow_url"])
def test_a_field_given_twice_is_a_400_naming_it(client, alice, db, name):
    value = b"{}" if name == "workflow_params" else b"NFL"
    body = FIELDS + part("workflow_params", b"{}") + part(name, value) + END
    if name == "workflow_params":
        body = FIELDS + part(name, value) + part(name, value) + END
    count = run_count(db)
    response = client.post(
        f"{WES}/runs", headers={**alice, "Content-Type": CONTENT_TYPE}, content=body
    )
    assert response.status_code == 400, response.text
    assert response.json() == {"msg": f"{name}: given more than once", "status_code": 400}
    assert run_count(db) == count


def test_a_refused_upload_leaves_no_spooled_file(client, alice, db, spool):
    """Refused after its attachments were spooled (its workflow_url names none of them)."""
    body = (
        part("workflow_type", b"NFL")
        + part("workflow_type_version", b"DSL2")
        + part("workflow_url", b"missing.nf")
        + part("workflow_attachment", pattern(100_000), "main.nf")
        + END
    )
    response = client.post(
        f"{WES}/runs", headers={**alice, "Content-Type": CONTENT_TYPE}, content=body
    )
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith("workflow_url:")
    assert spooled(spool) == []


def test_a_text_part_of_a_declared_charset(client, alice):
    """A part may say it is Latin-1; anything else is read as UTF-8."""
    latin1 = '{"greeting": "grüß"}'.encode("latin-1")
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="workflow_params"\r\n'
    head += "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
    body = FIELDS + head.encode() + latin1 + b"\r\n" + END
    response = client.post(
        f"{WES}/runs", headers={**alice, "Content-Type": CONTENT_TYPE}, content=body
    )
    assert response.status_code == 200, response.text
    run = client.get(f"{WES}/runs/{response.json()['run_id']}", headers=alice).json()
    assert run["request"]["workflow_params"] == {"greeting": "grüß"}


@pytest.mark.parametrize(
    "content_type,message",
    [
        ("multipart/form-data", "Content-Type: multipart/form-data needs a boundary parameter"),
        (
            "multipart/form-data; boundary=other",
            "body: no part begins with the boundary its Content-Type names",
        ),
    ],
    ids=["no-boundary", "another-boundary"],
)
def test_a_body_that_is_not_the_multipart_it_says(client, alice, db, content_type, message):
    count = run_count(db)
    response = client.post(
        f"{WES}/runs",
        headers={**alice, "Content-Type": content_type},
        content=FIELDS + END,
    )
    assert response.status_code == 400, response.text
    assert response.json() == {"msg": message, "status_code": 400}
    assert run_count(db) == count


@pytest.mark.parametrize("preamble", [b"", b"\r\n", b"This is a multipart body.\r\n"])
def test_a_preamble_before_the_first_part_is_ignored(client, alice, preamble):
    """As RFC 2046 says, whatever comes before the first delimiter line."""
    response = client.post(
        f"{WES}/runs",
        headers={**alice, "Content-Type": CONTENT_TYPE},
        content=preamble + FIELDS + part("workflow_attachment", b"x", "a.txt") + END,
    )
    assert response.status_code == 200, response.text
    run = client.get(f"{WES}/runs/{response.json()['run_id']}", headers=alice).json()
    assert run["request"]["workflow_url"] == "nf-core/demo"


def test_a_body_that_breaks_off_inside_a_part_s_headers(client, alice, db):
    body = FIELDS + f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=tags\r\n".encode()
    count = run_count(db)
    response = client.post(
        f"{WES}/runs",
        headers={**alice, "Content-Type": CONTENT_TYPE},
        content=body + b"{not a header\r\n\r\n{}\r\n" + END,
    )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "msg": "tags: the part's headers are not well-formed",
        "status_code": 400,
    }
    assert run_count(db) == count


def test_submissions_are_counted_by_operation(client, alice):
    name = "wes_gateway_http_request_duration_seconds_count"
    route = "/ga4gh/wes/v1 RunWorkflow"
    ok = {"route": route, "method": "POST", "status": "200"}
    refused = {**ok, "status": "400"}
    before = samples(client)
    headers = {**alice, "Content-Type": CONTENT_TYPE}
    assert client.post(f"{WES}/runs", headers=headers, content=FIELDS + END).status_code == 200
    assert client.post(f"{WES}/runs", headers=headers, content=FIELDS).status_code == 400
    after = samples(client)
    assert value(after, name, **ok) == value(before, name, **ok) + 1
    assert value(after, name, **refused) == value(before, name, **refused) + 1


@pytest.mark.parametrize("preamble", [b"", b"preamble\r\n"], ids=["none", "some"])
def test_a_body_read_a_byte_at_a_time(spool, preamble):
    """However the body is cut into messages, the same parts come out."""
    body = preamble + FIELDS + part("workflow_attachment", pattern(3000), "a/b.nf") + END
    upload = Upload()
    reader = MultipartReader(BOUNDARY.encode(), upload, max_field_bytes=1024, max_parts=10)
    try:
        for index in range(len(body)):
            reader.feed(body[index : index + 1])
        assert reader.ended
        assert upload.fields == {
            "workflow_type": ["NFL"],
            "workflow_type_version": ["DSL2"],
            "workflow_url": ["nf-core/demo"],
        }
        [(name, filename, stream)] = upload.files
        assert (name, filename, stream.read()) == ("workflow_attachment", "a/b.nf", pattern(3000))
    finally:
        upload.discard()
    assert spooled(spool) == []
