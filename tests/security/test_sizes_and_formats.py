"""Bodies no one should send: too large, too many parts, nested ten thousand levels,
numbers JSON cannot hold, the wrong Content-Type, bytes that are not UTF-8. Every
body-taking operation of both specs answers each with a clear 4xx in its API's error
shape (never a 500), and nothing is stored or written."""

from __future__ import annotations

import json
import re
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests import oracle
from tests.conftest import WES, submit
from tests.security.evidence import run_count, tree
from tests.security.operations import Operation, all_operations, ids_of
from wes_gateway.domain.compute_envs import BUILTIN_ID
from wes_gateway.http.app import create_app

BODY_OPERATIONS = [op for op in all_operations() if op.body_types]
JSON_OPERATIONS = [op for op in BODY_OPERATIONS if "application/json" in op.body_types]
LIMIT_MB, FIELD_KB, MAX_ATTACHMENTS = 1, 1, 3
DEEP = "[" * 10_000 + "]" * 10_000


def _ids(operation: Operation) -> str:
    return operation.operation_id


def _url(operation: Operation, run_id: str) -> str:
    return operation.url(
        {"run_id": run_id, "workflowId": run_id, "launchId": run_id, "computeEnvId": BUILTIN_ID}
        | ids_of(1)
    )


@pytest.fixture
def target(client, alice) -> str:
    """A run of alice's that the requests name (an administrator sends them)."""
    return submit(client, alice)


# "<field path>: <problem>": workflow_params, launch.paramsText, tags.a, body[0] (a key)...
FIELD_FIRST = re.compile(r"^[A-Za-z_][\w.\-\[\]]*( \(a key\))?: \S")


def assert_refused(response: httpx.Response, statuses=(400,)) -> None:
    """A 4xx in the documented shape of the API that was called; a 400 or 413 names the
    field at fault first."""
    assert response.status_code in statuses, (response.status_code, response.text)
    body = response.json()
    if response.url.path.startswith("/api/"):
        assert set(body) == {"message"}, body
        message = body["message"]
    else:
        assert set(body) == {"msg", "status_code"}, body
        assert body["status_code"] == response.status_code
        message = body["msg"]
    assert "Traceback" not in response.text
    if response.status_code == 400:
        assert FIELD_FIRST.match(message), message


@pytest.fixture
def unchanged(db, settings):
    """Asserts, at the end of the test, that no run was added and no file written."""
    count, files = run_count(db), tree(settings.data_dir)
    yield
    assert run_count(db) == count
    assert tree(settings.data_dir) == files


@pytest.fixture(scope="module")
def small_app(settings):
    """The same service and database with tiny limits: 1 MiB bodies, 1 KiB form parts,
    three attachments."""
    return create_app(
        settings.model_copy(
            update={
                "max_request_mb": LIMIT_MB,
                "max_field_kb": FIELD_KB,
                "max_attachments": MAX_ATTACHMENTS,
            }
        )
    )


@pytest.fixture
def small(small_app):
    with small_app.test_client() as test_client:
        test_client.event_hooks["response"].append(oracle.check_response)
        yield test_client


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=_ids)
@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
def test_a_body_over_the_limit_is_413(operation, chunked, small, admin, target: str, unchanged):
    kind = operation.body_types[0]
    if chunked and not (operation.body_required or kind.startswith("multipart/")):
        pytest.skip("a body without Content-Length is never read where none is required")
    boundary = "x" * 20
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="workflow_attachment"; '
    head += 'filename="big.bin"\r\n\r\n'
    prefix = head.encode() if kind.startswith("multipart/") else b'{"padding": "'
    body = prefix + b"y" * (LIMIT_MB * 1024 * 1024)
    content_type = f"{kind}; boundary={boundary}" if kind.startswith("multipart/") else kind

    def chunks():
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = small.request(
        operation.method.upper(),
        _url(operation, target),
        headers={**admin, "Content-Type": content_type},
        content=chunks() if chunked else body,
    )
    # Connexion refuses a JSON body without Content-Length before reading it (a 400).
    assert_refused(response, (400, 413) if chunked and "json" in kind else (413,))


@pytest.mark.parametrize("part", ["workflow_params", "tags", "workflow_engine_parameters"])
@pytest.mark.parametrize("encoding", ["multipart", "url-encoded"])
def test_a_form_part_over_the_limit_is_413(small, alice, part, encoding, unchanged):
    response = small.post(
        f"{WES}/runs",
        headers=alice,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "nf-core/demo",
            part: json.dumps({"a": "z" * (FIELD_KB * 1024 + 1)}),
        },
        files=[("workflow_attachment", ("a.nf", b"x"))] if encoding == "multipart" else None,
    )
    assert_refused(response, (413,))


def _attachments(count: int) -> list:
    return [("workflow_attachment", (f"file{n}.nf", b"x")) for n in range(count)]


def _fields() -> dict[str, str]:
    return {"workflow_type": "NFL", "workflow_type_version": "DSL2", "workflow_url": "file0.nf"}


def test_too_many_attachments(small, alice, unchanged):
    response = small.post(
        f"{WES}/runs", headers=alice, data=_fields(), files=_attachments(MAX_ATTACHMENTS + 1)
    )
    assert_refused(response)
    assert response.json()["msg"].startswith("workflow_attachment:")
    # Far too many parts are refused while they are read, before any is kept.
    response = small.post(
        f"{WES}/runs", headers=alice, data=_fields(), files=_attachments(MAX_ATTACHMENTS + 60)
    )
    assert_refused(response, (413,))


def test_the_limits_let_a_run_within_them_through(small, alice, db):
    """So the refusals above are the limits at work."""
    count = run_count(db)
    response = small.post(
        f"{WES}/runs", headers=alice, data=_fields(), files=_attachments(MAX_ATTACHMENTS)
    )
    assert response.status_code == 200, response.text
    assert run_count(db) == count + 1


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("operation", JSON_OPERATIONS, ids=_ids)
@pytest.mark.parametrize(
    "body",
    [DEEP, '{"launch": ' + DEEP + "}", '{"x": ' + _nested(101) + "}"],
    ids=["bare", "in-a-field", "101-levels"],
)
def test_deeply_nested_json_bodies(operation, body, client, admin, target: str, unchanged):
    response = client.request(
        operation.method.upper(),
        _url(operation, target),
        headers={**admin, "Content-Type": "application/json"},
        content=body.encode(),
    )
    assert_refused(response)
    assert "nested more than 100 levels" in response.text


@pytest.mark.parametrize("part", ["workflow_params", "tags", "workflow_engine_parameters"])
@pytest.mark.parametrize("depth", [10_000, 101])
def test_deeply_nested_json_in_form_parts(client, alice, part, depth, unchanged):
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "nf-core/demo",
            part: '{"a": ' + _nested(depth) + "}",
        },
    )
    assert_refused(response)
    assert response.json()["msg"] == f"{part}: arrays and objects nested more than 100 levels deep"


@pytest.mark.parametrize(
    "params",
    [
        '{"a": ' + DEEP + "}",
        "a: " + _nested(2_000),
        '{"a": ' + _nested(101) + "}",
        "a: .nan",
        "a: -.inf",
        "a: 2026-13-45",
        "a: " + "9" * 5_000,
    ],
    ids=["deep-json", "deep-yaml", "101-levels", "nan", "infinity", "bad-date", "huge-number"],
)
def test_unusable_params_text_of_a_launch(client, alice, params, unchanged):
    launch = {"pipeline": "nf-core/demo", "paramsText": params}
    response = client.post("/api/workflow/launch", headers=alice, json={"launch": launch})
    assert_refused(response)
    assert response.json()["message"].startswith("launch.paramsText:")


def _laughs(levels: int, width: int) -> str:
    """YAML of nested aliases: ``levels`` lists, each ``width`` aliases of the one before,
    so the text grows by ``width`` characters a level and the value by ``width`` times."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


BILLION_LAUGHS = _laughs(10, 9)  # about 500 bytes for 9**10 (3.5 billion) strings
SMALL_BOMB = _laughs(5, 10)  # about 300 bytes; the old service stored 4.3 MB of params


@contextmanager
def memory_ceiling(headroom_mb: int) -> Iterator[None]:
    """At most ``headroom_mb`` more address space for this process while the block runs,
    so a regression fails (a MemoryError, a 500) rather than eating the machine."""
    status = Path("/proc/self/status").read_text()
    size_kb = int(re.search(r"VmSize:\s+(\d+) kB", status).group(1))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, ((size_kb * 1024) + headroom_mb * 2**20, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


@pytest.mark.parametrize("params", [BILLION_LAUGHS, SMALL_BOMB], ids=["billion", "small"])
def test_yaml_aliases_in_params_text_are_refused_at_once(client, alice, params, unchanged):
    """A launch (what the dashboard's Parameters box posts) whose paramsText is a YAML
    alias bomb: a 400 naming the field in well under a second, the process no larger, and
    no run (so no params file of megabytes) stored."""
    assert len(params) < 600
    launch = {"pipeline": "nf-core/demo", "paramsText": params}
    peak = _peak_rss_mb()
    started = time.monotonic()
    with memory_ceiling(512):
        response = client.post("/api/workflow/launch", headers=alice, json={"launch": launch})
    elapsed = time.monotonic() - started
    assert_refused(response)
    message = response.json()["message"]
    assert message.startswith("launch.paramsText: YAML anchors and aliases"), message
    assert elapsed < 0.5, elapsed
    assert _peak_rss_mb() - peak < 50


def test_an_anchor_alone_is_refused_too(client, alice, unchanged):
    launch = {"pipeline": "nf-core/demo", "paramsText": "a: &x 1\nb: 2\n"}
    response = client.post("/api/workflow/launch", headers=alice, json={"launch": launch})
    assert_refused(response)
    assert response.json()["message"].startswith("launch.paramsText: YAML anchors"), response.text


def test_params_text_is_held_to_the_field_limit(small, alice, unchanged):
    """As text (a 413, as a form part over the limit), and once parsed: YAML that grows
    past the limit when written out as the params file is a 400."""
    too_long = {"pipeline": "nf-core/demo", "paramsText": "a: " + "z" * (FIELD_KB * 1024)}
    response = small.post("/api/workflow/launch", headers=alice, json={"launch": too_long})
    assert_refused(response, (413,))
    assert response.json()["message"] == f"launch.paramsText: larger than {FIELD_KB} KiB"
    grows = "".join(f"k{n}: v\n" for n in range(140))  # 6-7 bytes a line, 10-11 as JSON
    assert len(grows) < FIELD_KB * 1024 < len(json.dumps(dict.fromkeys(range(140), "v")))
    response = small.post(
        "/api/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": "nf-core/demo", "paramsText": grows}},
    )
    assert_refused(response)
    assert response.json()["message"] == (
        f"launch.paramsText: larger than {FIELD_KB} KiB once parsed"
    )


@pytest.mark.parametrize("part", ["workflow_params", "tags", "workflow_engine_parameters"])
def test_an_object_of_a_json_body_is_held_to_the_field_limit(small, alice, part, unchanged):
    """A part sent as an object of a JSON RunRequest has the limit of the same part sent as
    form text."""
    value = {"config": "z" * (FIELD_KB * 1024)} if part != "tags" else {"a": "z" * 2000}
    body = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
        part: value,
    }
    response = small.post(f"{WES}/runs", headers=alice, json=body)
    assert_refused(response, (413,))
    assert response.json()["msg"] == f"{part}: larger than {FIELD_KB} KiB"


def test_the_nesting_limit_is_100_levels(client, alice, db):
    count = run_count(db)
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "nf-core/demo",
            "workflow_params": '{"a": ' + _nested(99) + "}",
        },
    )
    assert response.status_code == 200, response.text
    assert run_count(db) == count + 1


@pytest.mark.parametrize("operation", JSON_OPERATIONS, ids=_ids)
@pytest.mark.parametrize(
    "body",
    ['{"a": NaN}', '{"a": [Infinity]}', '{"a": -Infinity}', '{"a": ' + "1" * 5_000 + "}"],
    ids=["nan", "infinity", "minus-infinity", "huge-number"],
)
def test_numbers_json_cannot_hold(operation, body, client, admin, target: str, unchanged):
    response = client.request(
        operation.method.upper(),
        _url(operation, target),
        headers={**admin, "Content-Type": "application/json"},
        content=body.encode(),
    )
    assert_refused(response)
    assert "body: " in response.text


@pytest.mark.parametrize("value", ['{"a": NaN}', '{"a": 1e999}', '{"a": ' + "7" * 5_000 + "}"])
def test_numbers_json_cannot_hold_in_form_parts(client, alice, value, unchanged):
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "nf-core/demo",
            "workflow_params": value,
        },
    )
    assert_refused(response)
    assert response.json()["msg"].startswith("workflow_params:")


WRONG_TYPES = [
    "text/plain",
    "application/xml",
    "application/octet-stream",
    "image/png",
    "multipart/form-data; boundary=abc",
    "application/x-www-form-urlencoded",
    None,  # no Content-Type at all
]


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=_ids)
@pytest.mark.parametrize("kind", WRONG_TYPES, ids=str)
def test_a_body_of_the_wrong_type(operation, kind, client, admin, target: str, unchanged):
    if kind is not None and kind.split(";")[0] in operation.body_types:
        pytest.skip(f"{operation.operation_id} takes {kind}")
    headers = dict(admin)
    if kind is not None:
        headers["Content-Type"] = kind
    response = client.request(
        operation.method.upper(),
        _url(operation, target),
        headers=headers,
        content=b'{"workflowId": "x", "launch": {"pipeline": "nf-core/demo"}}',
    )
    assert_refused(response, (400, 415))


@pytest.mark.parametrize("operation", JSON_OPERATIONS, ids=_ids)
@pytest.mark.parametrize(
    "body",
    [b'{"launch": {"pipeline": "\xff\xfe"}}', b'{"\xc3": 1}', b"\xef\xbb\xbf{}", b"\x00{}"],
    ids=["invalid-bytes", "truncated-sequence", "byte-order-mark", "nul"],
)
def test_json_that_is_not_utf8_text(operation, body, client, admin, target: str, unchanged):
    response = client.request(
        operation.method.upper(),
        _url(operation, target),
        headers={**admin, "Content-Type": "application/json"},
        content=body,
    )
    assert_refused(response)


BOUNDARY = "utf8BoUnDaRy"


def _multipart(parts: list[tuple[bytes, bytes]]) -> bytes:
    out = b""
    for disposition, value in parts:
        out += (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; ".encode()
            + disposition
            + b"\r\n\r\n"
            + value
            + b"\r\n"
        )
    return out + f"--{BOUNDARY}--\r\n".encode()


REQUIRED_PARTS = [
    (b'name="workflow_type"', b"NFL"),
    (b'name="workflow_type_version"', b"DSL2"),
]


@pytest.mark.parametrize(
    "part,named",
    [
        ((b'name="workflow_url"', b"nf-core/d\xffmo"), "workflow_url"),
        ((b'name="workflow_params"', b'{"a": "\xff\xfe"}'), "workflow_params"),
        ((b'name="tags"', b'{"\xe2\x82": "x"}'), "tags"),
        ((b'name="workflow_engine_parameters"', b'{"revision": "\xc0\xaf"}'), None),
    ],
    ids=["url", "params", "tags", "engine-parameters"],
)
def test_multipart_text_parts_that_are_not_utf8(client, alice, part, named, unchanged):
    parts = [*REQUIRED_PARTS, part]
    if part[0] != b'name="workflow_url"':
        parts.append((b'name="workflow_url"', b"nf-core/demo"))
    response = client.post(
        f"{WES}/runs",
        headers={**alice, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        content=_multipart(parts),
    )
    assert_refused(response)
    expected = named or "workflow_engine_parameters"
    assert response.json()["msg"].startswith(f"{expected}:"), response.json()


@pytest.mark.parametrize(
    "body",
    [
        b"workflow_type=NFL&workflow_type_version=DSL2&workflow_url=nf-core/demo"
        b"&workflow_params=%7B%22a%22%3A%22%FF%FE%22%7D",
        b"workflow_type=NFL&workflow_type_version=DSL2&workflow_url=nf-core/d\xffmo",
    ],
    ids=["escaped", "raw"],
)
def test_url_encoded_forms_that_are_not_utf8(client, alice, body, unchanged):
    response = client.post(
        f"{WES}/runs",
        headers={**alice, "Content-Type": "application/x-www-form-urlencoded"},
        content=body,
    )
    assert_refused(response)
    assert "UTF-8" in response.json()["msg"]


def test_utf8_text_is_of_course_accepted(client, alice, db):
    """The refusals above are about the bytes, not about text beyond ASCII."""
    count = run_count(db)
    parts = [
        *REQUIRED_PARTS,
        (b'name="workflow_url"', b"nf-core/demo"),
        (b'name="workflow_params"', '{"greeting": "grüß dich, 世界"}'.encode()),
        ('name="workflow_attachment"; filename="données.txt"'.encode(), b"x"),
    ]
    response = client.post(
        f"{WES}/runs",
        headers={**alice, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        content=_multipart(parts),
    )
    assert response.status_code == 200, response.text
    run = client.get(f"{WES}/runs/{response.json()['run_id']}", headers=alice).json()
    assert run["request"]["workflow_params"] == {"greeting": "grüß dich, 世界"}
    assert run_count(db) == count + 1
