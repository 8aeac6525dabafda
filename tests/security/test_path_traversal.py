"""Names from clients never reach outside a run's folder: attachment file names on
submit, ``fileName`` on both download endpoints (plain, URL-encoded, absolute), and task
folders that a trace call claims. Refusals are 4xx, and nothing is written anywhere."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import WES
from tests.security.conftest import (
    OUTPUT,
    TRACE,
    Victim,
    private_text,
    start_traced_run,
    task_folder,
)
from tests.security.evidence import run_count, tree

BOUNDARY = "sEcUrItYbOuNdArY"

# Attachment names, as the bytes of a Content-Disposition parameter, that must be refused.
REFUSED_NAMES = [
    b'filename="../x.nf"',
    b'filename="../../../../tmp/escape.nf"',
    b'filename="/etc/cron.d/escape"',
    b'filename="//etc/passwd"',
    b'filename="a/../../escape.nf"',
    b'filename="./../escape.nf"',
    b'filename="a/b/../../../escape.nf"',
    b'filename=".."',
    b'filename="a/.."',
    b'filename="\\\\etc\\\\passwd"',  # escaped in the header: the name is \etc\passwd
    b'filename="a\\\\..\\\\..\\\\x"',
    b'filename="evil\x00.nf"',
    b'filename="line\r\nbreak"',
    b'filename="tab\there"',
    b'filename=""',
    b"filename*=UTF-8''..%2F..%2Fescape.nf",  # RFC 2231: decoded to ../../escape.nf
    b"filename*=UTF-8''%2Fetc%2Fpasswd",
]
# Odd names that are plain file names on POSIX: they land inside the launch folder, as is.
LITERAL_NAMES = [
    "..%2f..%2fescape.nf",
    "%2e%2e/escape.nf",
    "\uff0e\uff0e/escape.nf",  # fullwidth full stops are not dots
    "\u2025/escape.nf",  # two dot leader
    "...",
    "a..b/c..d.nf",
    "params.json",  # the run's own files sit beside the launch folder, not in it
    "exitcode",
    "-with-docker",
]


def _submission(disposition: bytes, content: bytes = b"PWNED") -> bytes:
    out = b""
    for name, value in [
        ("workflow_type", "NFL"),
        ("workflow_type_version", "DSL2"),
        ("workflow_url", "nf-core/demo"),
    ]:
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    out += (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=workflow_attachment; ".encode()
        + disposition
        + b"\r\n\r\n"
        + content
        + b"\r\n"
    )
    return out + f"--{BOUNDARY}--\r\n".encode()


def _post(client, headers, body: bytes):
    return client.post(
        f"{WES}/runs",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        content=body,
    )


@pytest.fixture
def outside(settings) -> Path:
    """The folder that holds the data folder: nothing in it may change but the data folder."""
    return settings.data_dir.parent


@pytest.mark.parametrize("disposition", REFUSED_NAMES, ids=repr)
def test_attachment_names_leaving_the_run_folder_are_refused(
    client, alice, db, outside, disposition
):
    before, count = tree(outside), run_count(db)
    response = _post(client, alice, _submission(disposition))
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith("workflow_attachment:"), response.json()
    assert response.json()["status_code"] == 400
    assert tree(outside) == before
    assert run_count(db) == count


@pytest.mark.parametrize("name", LITERAL_NAMES, ids=repr)
def test_odd_attachment_names_stay_literal_inside_the_launch_folder(
    client, alice, settings, outside, run_dir, name
):
    before = tree(outside)
    disposition = b"filename*=UTF-8''" + quote(name, safe="").encode()
    response = _post(client, alice, _submission(disposition, b"attached"))
    assert response.status_code == 200, response.text
    folder = run_dir(response.json()["run_id"])
    assert (folder / "launch" / name).read_bytes() == b"attached"
    written = {outside / path for path in set(tree(outside)) - set(before)}
    assert written and all(path.is_relative_to(settings.data_dir) for path in written)
    in_runs = {path for path in written if path.is_relative_to(settings.runs_dir)}
    assert {p for p in in_runs if not p.is_relative_to(folder / "launch")} <= {
        folder,
        settings.runs_dir,
    }


def _download(client, headers, run_id: str, name: str, task: int | None = None, raw=False):
    path = f"/api/workflow/{run_id}/download" + (f"/{task}" if task is not None else "")
    if raw:  # the name goes into the URL as written: %2e%2e%2f reaches the server as such
        return client.get(f"{path}?fileName={name}", headers=headers)
    return client.get(path, headers=headers, params={"fileName": name})


RUN_FILE_NAMES = [
    "../../../../../../etc/passwd",
    "/etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "{own}/../../{other}/{other_console}",
    "../{other}/{other_console}",
    "{other_console}",
    "./{own_console}",
    "{own_console}/",
    "{own_console}/../../../../etc/passwd",
    "params.json",
    "nextflow.config",
    "head.pid",
    "launch/note.txt",
    ".command.out",
    "NF-{own}.TXT",
]


@pytest.mark.parametrize("template", RUN_FILE_NAMES)
@pytest.mark.parametrize("raw", [False, True], ids=["encoded", "raw"])
def test_run_downloads_serve_their_allow_list_only(
    client, alice, db, run_dir, outside, victim: Victim, template, raw
):
    """alice asks for her own run's files, by names that would lead elsewhere."""
    other = start_traced_run(client, alice, db, run_dir)
    name = template.format(
        own=victim.run_id,
        other=other.run_id,
        own_console=f"nf-{victim.run_id}.txt",
        other_console=f"nf-{other.run_id}.txt",
    )
    before = tree(outside)
    response = _download(client, alice, victim.run_id, name, raw=raw)
    assert response.status_code == 400, (name, response.text)
    assert response.json()["message"].startswith("fileName:"), response.text
    assert "root:" not in response.text and "private to run" not in response.text
    assert tree(outside) == before


TASK_FILE_NAMES = [
    "../../../../../../../../etc/passwd",
    "/etc/passwd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "../../02/cafe/.command.out",
    ".command.sh",
    ".command.env",
    ".command.run",
    ".exitcode",
    ".command.out/../../../../nf-{own}.txt",
    "./.command.out",
    ".COMMAND.OUT",
]


@pytest.mark.parametrize("template", TASK_FILE_NAMES)
@pytest.mark.parametrize("raw", [False, True], ids=["encoded", "raw"])
def test_task_downloads_serve_their_allow_list_only(
    client, alice, outside, victim: Victim, template, raw
):
    name = template.format(own=victim.run_id)
    folder = task_folder(victim.run_dir, victim.task_ids[0])
    (folder / ".command.env").write_text("export AWS_SECRET_ACCESS_KEY=hunter2\n")
    before = tree(outside)
    response = _download(client, alice, victim.run_id, name, task=victim.task_ids[0], raw=raw)
    assert response.status_code == 400, (name, response.text)
    assert response.json()["message"].startswith("fileName:"), response.text
    assert "hunter2" not in response.text and "private to run" not in response.text
    assert tree(outside) == before


# Output paths, as written into the URL after /outputs/: (path, status).
OUTPUT_PATHS = [
    ("..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd", 400),
    ("standin%2F..%2F..%2F..%2Fnf-{own}.txt", 400),
    ("standin/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{other}/nf-{other}.txt", 400),
    ("%2e%2e%2f%2e%2e%2fparams.json", 400),
    ("..%5C..%5Cparams.json", 400),
    ("standin//out.txt", 400),
    (".%2Fstandin/out.txt", 400),
    ("standin/out.txt%00", 400),
    ("%2Fetc%2Fpasswd", 404),  # an empty first component: no route has it
    ("%2F{runs}/{other}/launch/results/standin/out.txt", 404),
    ("{runs}/{other}/launch/results/standin/out.txt", 404),  # not listed
    ("../{other}/launch/results/standin/out.txt", 404),  # the client drops the ../
    ("params.json", 404),
    ("nf-{own}.txt", 404),
    ("standin", 404),
    ("STANDIN/OUT.TXT", 404),
]


@pytest.mark.parametrize("template,status", OUTPUT_PATHS)
def test_run_outputs_serve_their_list_only(
    client, alice, db, run_dir, outside, victim: Victim, template, status
):
    """alice asks for her own run's outputs, by paths that would lead elsewhere."""
    other = start_traced_run(client, alice, db, run_dir)
    path = template.format(
        own=victim.run_id, other=other.run_id, runs=str(victim.run_dir.parent).lstrip("/")
    )
    before = tree(outside)
    response = client.get(f"{WES}/runs/{victim.run_id}/outputs/{path}", headers=alice)
    assert response.status_code == status, (path, response.text)
    if status == 400:  # the path parameter named, or the URL as a whole (a NUL)
        assert response.json()["msg"].startswith(("path:", "URL:")), response.text
    assert "root:" not in response.text and "private to run" not in response.text
    assert tree(outside) == before
    listed = client.get(f"{WES}/runs/{victim.run_id}/outputs/{OUTPUT}", headers=alice)
    assert listed.status_code == 200 and private_text(victim.run_id) in listed.text


def test_a_listed_output_that_became_a_link_out_of_the_run_is_not_followed(
    client, alice, db, run_dir, victim: Victim
):
    other = start_traced_run(client, alice, db, run_dir)
    published = victim.run_dir / "launch" / "results" / OUTPUT
    published.unlink()
    published.symlink_to(other.run_dir / f"nf-{other.run_id}.txt")
    response = client.get(f"{WES}/runs/{victim.run_id}/outputs/{OUTPUT}", headers=alice)
    assert response.status_code == 404, response.text
    assert private_text(other.run_id) not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/ga4gh/wes/v1/runs/{own}%2F..%2F{other}/outputs/standin/out.txt",
        "/ga4gh/wes/v1/runs/..%2F{other}/outputs/standin/out.txt",
        "/api/workflow/{own}/download/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/workflow/{own}/download/1%2F..%2F..%2F2",
        "/api/workflow/..%2F{other}/download",
        "/api/workflow/{own}%2F..%2F{other}/download",
        "/api/workflow/{own}/../{other}/download",
        "/api/workflow/{own}/log/..%2F2",
        "/ga4gh/wes/v1/runs/{own}%2F..%2F{other}/stdout",
        "/ga4gh/wes/v1/runs/..%2F{other}/stdout",
    ],
)
def test_ids_in_the_path_are_ids_not_paths(client, alice, bob, db, run_dir, victim: Victim, path):
    """bob names his own run, then walks to alice's through the path itself."""
    bobs = start_traced_run(client, bob, db, run_dir)
    url = path.format(own=bobs.run_id, other=victim.run_id)
    response = client.get(url, headers=bob)
    assert 400 <= response.status_code < 500, (url, response.text)
    assert private_text(victim.run_id) not in response.text and "alice" not in response.text


HOSTILE_WORKDIRS = [
    "/etc",
    "/",
    "{runs}",
    "{run}/..",
    "{run}/../{other}/launch/work/01/cafe",
    "{run}/launch/../../{other}/launch/work/01/cafe",
    "../../..",
    "work/01/cafe",
    "s3://bucket/work/01/cafe",
    "file:///etc",
    "{run}/launch/work/link-out",  # a symlink inside the run folder, to another run's task
]


@pytest.mark.parametrize("template", HOSTILE_WORKDIRS)
def test_a_task_folder_outside_its_run_is_never_served(
    client, alice, db, run_dir, outside, victim: Victim, template
):
    """The run's own token (a pipeline may read it) claims a task folder elsewhere:
    another run of the same user, or the system. None of its files are served."""
    other = start_traced_run(client, alice, db, run_dir)
    (victim.run_dir / "launch" / "work" / "link-out").symlink_to(
        task_folder(other.run_dir, other.task_ids[0])
    )
    workdir = template.format(run=victim.run_dir, runs=victim.run_dir.parent, other=other.run_id)
    progress = {"tasks": [{"taskId": 7, "status": "COMPLETED", "workdir": workdir}]}
    response = client.put(
        f"{TRACE}/{victim.run_id}/progress", headers=victim.trace_headers, json=progress
    )
    assert response.status_code == 200
    before = tree(outside)
    for name in (".command.out", ".command.err", ".command.log"):
        response = client.get(
            f"/api/workflow/{victim.run_id}/download/7", headers=alice, params={"fileName": name}
        )
        assert response.status_code == 404, (workdir, name, response.text)
        assert set(response.json()) == {"message"}
        assert private_text(other.run_id) not in response.text
    log = client.get(f"/api/workflow/{victim.run_id}/log/7", headers=alice)
    assert log.status_code in (200, 404) and "private to run" not in log.text
    stdout = client.get(f"{WES}/runs/{victim.run_id}/tasks/7", headers=alice).json()["stdout"]
    assert "private to run" not in client.get(stdout, headers=alice).text
    assert tree(outside) == before


@pytest.mark.parametrize("name", [".command.out", ".command.err", ".command.log"])
def test_a_task_file_that_is_a_symlink_out_of_the_run_is_not_followed(
    client, alice, db, run_dir, victim: Victim, name
):
    """A pipeline can leave a symbolic link where a task file should be."""
    other = start_traced_run(client, alice, db, run_dir)
    target = other.run_dir / f"nf-{other.run_id}.txt"
    link = task_folder(victim.run_dir, victim.task_ids[1]) / name
    link.unlink()
    link.symlink_to(target)
    response = client.get(
        f"/api/workflow/{victim.run_id}/download/{victim.task_ids[1]}",
        headers=alice,
        params={"fileName": name},
    )
    assert response.status_code == 404, response.text
    assert private_text(other.run_id) not in response.text
    log = client.get(f"/api/workflow/{victim.run_id}/log/{victim.task_ids[1]}", headers=alice)
    assert private_text(other.run_id) not in log.text


@pytest.mark.parametrize("kind", ["txt", "log"])
def test_a_run_file_that_is_a_symlink_out_of_the_run_is_not_followed(
    client, alice, db, run_dir, victim: Victim, kind
):
    other = start_traced_run(client, alice, db, run_dir)
    own = victim.run_dir / f"nf-{victim.run_id}.{kind}"
    own.unlink()
    own.symlink_to(other.run_dir / f"nf-{other.run_id}.{kind}")
    for response in (
        client.get(
            f"/api/workflow/{victim.run_id}/download",
            headers=alice,
            params={"fileName": own.name},
        ),
        client.get(f"/api/workflow/{victim.run_id}/log", headers=alice),
        client.get(f"{WES}/runs/{victim.run_id}/stdout", headers=alice),
        client.get(f"{WES}/runs/{victim.run_id}/stderr", headers=alice),
    ):
        assert private_text(other.run_id) not in response.text, response.url
