"""Attachment names are client input: traversal, absolute paths, NUL bytes and symlinks
are refused with a 400, and nothing is written outside (or inside) the run folder."""

from __future__ import annotations

import io
import os

import pytest

from tests.conftest import WES
from wes_gateway.domain import run_files
from wes_gateway.domain.errors import InvalidField

HOSTILE_NAMES = [
    b"../x",
    b"/etc/passwd",
    b"a/../../x",
    b"ok/../../../escape.nf",
    b"..",
    b"sub/..",
    b"evil\x00.nf",
    b"dir\\\\..\\\\x",  # backslash-escaped in the header; the name is dir\..\x
    b"line\nbreak",
    b"",
]


def _upload(name: bytes, boundary: str = "zzBOUNDARYzz") -> bytes:
    parts = [
        ("workflow_type", b"NFL"),
        ("workflow_type_version", b"DSL2"),
        ("workflow_url", b"main.nf"),
    ]
    out = b""
    for field, value in parts:
        out += (
            (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n').encode()
            + value
            + b"\r\n"
        )
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="workflow_attachment"; '
        f'filename="main.nf"\r\n\r\n'
    ).encode() + b"workflow {}\r\n"
    out += (
        (f'--{boundary}\r\nContent-Disposition: form-data; name="workflow_attachment"; ').encode()
        + b'filename="'
        + name
        + b'"\r\n\r\n'
        + b"PWNED\r\n"
    )
    return out + f"--{boundary}--\r\n".encode()


def _tree(path) -> set[str]:
    return {
        os.path.join(root, name) for root, dirs, files in os.walk(path) for name in dirs + files
    }


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_hostile_names_are_refused(client, alice, settings, name):
    data_root = settings.data_dir
    before = _tree(data_root.parent)
    response = client.post(
        f"{WES}/runs",
        headers={**alice, "Content-Type": "multipart/form-data; boundary=zzBOUNDARYzz"},
        content=_upload(name),
    )
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith("workflow_attachment:")
    assert _tree(data_root.parent) == before
    assert client.get(f"{WES}/runs", headers=alice).json()["runs"] == []


def test_duplicate_names_are_refused(client, alice):
    files = [
        ("workflow_attachment", ("main.nf", b"1")),
        ("workflow_attachment", ("./main.nf", b"2")),
    ]
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data={"workflow_type": "NFL", "workflow_type_version": "DSL2", "workflow_url": "main.nf"},
        files=files,
    )
    assert response.status_code == 400
    assert "twice" in response.json()["msg"]


@pytest.mark.backing_independent
def test_file_and_folder_of_one_name_are_refused():
    with pytest.raises(InvalidField, match="both a file and a folder"):
        run_files.check_names(["lib", "lib/util.nf"])


@pytest.mark.backing_independent
def test_staging_never_follows_a_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "run" / "attachments"
    # A folder that already holds a symlink: staging refuses to write through it.
    root.parent.mkdir()
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(InvalidField, match="symbolic link"):
        run_files._write(root.resolve(), "link/x.nf", io.BytesIO(b"data"))
    (root / "file.nf").symlink_to(outside / "target.nf")
    with pytest.raises((InvalidField, OSError)):
        run_files._write(root.resolve(), "file.nf", io.BytesIO(b"data"))
    assert list(outside.iterdir()) == []


@pytest.mark.backing_independent
def test_failed_staging_leaves_no_folder(tmp_path):
    class Broken(io.BytesIO):
        def read(self, *_):
            raise OSError("disk full")

    root = tmp_path / "run" / "attachments"
    with pytest.raises(OSError):
        run_files.stage(root, [("a.nf", io.BytesIO(b"ok")), ("b.nf", Broken())])
    assert not root.exists()
