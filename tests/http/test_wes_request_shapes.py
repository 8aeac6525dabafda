"""POST /runs in the shapes real clients send: the engine and its version, Nextflow's run
options as command-line flags, Seqera's names in workflow_engine_parameters, and params
keys in Nextflow's command-line form; each mapped onto the one launch, each refusal a 400
naming the key at fault."""

from __future__ import annotations

import json

import pytest

from tests.conftest import WES, submit
from tests.http.test_launchpad import label
from wes_gateway.domain.launch import build_command
from wes_gateway.domain.models import Run
from workers.execution import snapshot


def _argv(db, run_dir, run_id: str) -> list[str]:
    """The nextflow argv a worker will build for the run."""
    with db.session() as session:
        run = session.get(Run, run_id)
        return build_command(snapshot(run, run_dir(run_id)))


def _post(client, headers, **fields):
    """Multipart, the objects as JSON text parts (as the WES spec has them sent)."""
    body = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
        **fields,
    }
    data = {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in body.items()
    }
    return client.post(
        f"{WES}/runs",
        headers=headers,
        data=data,
        files=[("workflow_attachment", ("note.txt", b"x"))],
    )


@pytest.mark.parametrize("engine", ["nextflow", "NEXTFLOW", "Nextflow"])
@pytest.mark.parametrize("version", ["24.10.3", "23.10.0", "25.04.2", "25.05.0-edge", "22.10.0"])
def test_any_nextflow_version_is_taken_and_echoed(client, alice, engine, version):
    run_id = submit(client, alice, workflow_engine=engine, workflow_engine_version=version)
    request = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["request"]
    assert request["workflow_engine"] == "nextflow"
    assert request["workflow_engine_version"] == version


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ("24.10", "not a Nextflow version"),
        ("latest", "not a Nextflow version"),
        ("24.10.3-beta", "not a Nextflow version"),
        ("v24.10.3", "not a Nextflow version"),
        ("24.10.3; rm -rf /", "not a Nextflow version"),
        ("21.04.0", "older than 22.10.0"),
        ("22.04.5", "older than 22.10.0"),
    ],
)
def test_a_version_nextflow_could_not_have_is_refused(client, alice, version, problem):
    response = _post(client, alice, workflow_engine="nextflow", workflow_engine_version=version)
    assert response.status_code == 400
    assert response.json()["msg"].startswith("workflow_engine_version: ")
    assert problem in response.json()["msg"]


def test_nextflow_flags_are_the_named_options(client, alice, db, run_dir):
    flags = {
        "-r": "1.0.2",
        "-profile": "test,docker",
        "-entry": "MAIN",
        "-main-script": "workflows/main.nf",
        "-name": "irida-run-7",
        "-latest": "",
        "-stub": "",
        "-preview": True,
        "-dump-hashes": "true",
        "-with-report": "report.html",
        "-with-trace": "",
        "-with-dag": "flow.mmd",
        "-with-timeline": "",
    }
    response = _post(client, alice, workflow_engine_parameters=flags)
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    echoed = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["request"]
    assert echoed["workflow_engine_parameters"] == {
        "revision": "1.0.2",
        "profile": "test,docker",
        "entry": "MAIN",
        "main_script": "workflows/main.nf",
        "run_name": "irida-run-7",
        "latest": "true",
        "stub_run": "true",
        "preview": "true",
        "dump_hashes": "true",
        "with_report": "report.html",
        "with_trace": "true",
        "with_dag": "flow.mmd",
        "with_timeline": "true",
    }
    argv = _argv(db, run_dir, run_id)
    assert argv[argv.index("-r") + 1] == "1.0.2"
    assert argv[argv.index("-profile") + 1] == "test,docker"
    assert argv[argv.index("-entry") + 1] == "MAIN"
    assert argv[argv.index("-main-script") + 1] == "workflows/main.nf"
    assert argv[argv.index("-name") + 1] == "irida-run-7"
    assert argv[argv.index("-with-report") + 1] == "report.html"
    assert argv[argv.index("-with-dag") + 1] == "flow.mmd"
    assert argv[argv.index("-with-trace") + 1].startswith("-")  # the flag alone
    for flag in ("-latest", "-stub-run", "-preview", "-dump-hashes"):
        assert flag in argv


def test_resume_as_a_flag_takes_the_named_option_s_values(client, alice):
    response = _post(client, alice, workflow_engine_parameters={"-resume": "not-a-session"})
    assert response.status_code == 400
    assert response.json()["msg"].startswith("workflow_engine_parameters.-resume: ")


def test_seqera_names_are_the_same_options(client, alice, db, run_dir):
    parameters = {
        "revision": "dev",
        "profiles": ["test", "docker"],
        "configText": "process.cpus = 2",
        "pullLatest": True,
        "mainScript": "main.nf",
        "entryName": "ALT",
        "runName": "seqera-run",
        "labelIds": [],
        "resume": False,
    }
    response = _post(client, alice, workflow_engine_parameters=parameters)
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    argv = _argv(db, run_dir, run_id)
    assert argv[argv.index("-profile") + 1] == "test,docker"
    assert argv[argv.index("-name") + 1] == "seqera-run"
    assert argv[argv.index("-entry") + 1] == "ALT"
    assert "-latest" in argv and "-resume" not in argv
    with db.session() as session:
        assert session.get(Run, run_id).config_text == "process.cpus = 2"


@pytest.mark.parametrize(
    ("parameters", "named", "problem"),
    [
        ({"-with-docker": "ubuntu:20.04"}, "-with-docker", "unknown option"),
        ({"-dsl1": ""}, "-dsl1", "unknown option"),
        ({"-process.executor": "slurm"}, "-process.executor", "unknown option"),
        ({"-c": "/etc/passwd"}, "-c", "unknown option"),
        ({"-w": "/tmp"}, "-w", "unknown option"),
        ({"-r": "1.0", "revision": "1.1"}, "revision", "the same option as '-r'"),
        ({"-stub": "", "-stub-run": ""}, "-stub-run", "the same option as '-stub'"),
        ({"-profile": "--help"}, "-profile", "comma-separated profile"),
        ({"-r": "-latest"}, "-r", "not a valid git revision"),
        ({"-name": "last"}, "-name", "reserved"),
        ({"-name": "9lives"}, "-name", "start with a letter"),
        ({"-with-report": "../escape.html"}, "-with-report", "file name in the launch folder"),
        ({"-with-trace": "/tmp/trace.txt"}, "-with-trace", "file name in the launch folder"),
        ({"-with-timeline": "mine.html"}, "-with-timeline", "timeline-<run id>.html"),
        ({"-latest": "yes"}, "-latest", "true or false"),
        ({"-r": ""}, "-r", "needs a value"),
        ({"-name": ""}, "-name", "needs a value"),
        ({"labelIds": [3]}, "labelIds", "no label 3 in this workspace"),
        ({"labelIds": "3,x"}, "labelIds", "must be label ids"),
        ({"labelIds": [True]}, "labelIds", "must be label ids"),
        ({"labelIds": ",".join(str(n) for n in range(101))}, "labelIds", "at most 100"),
        ({"profiles": ["ok", 3]}, "profiles", "list of profile names"),
    ],
)
def test_unknown_and_bad_flags_are_named(client, alice, parameters, named, problem):
    response = _post(client, alice, workflow_engine_parameters=parameters)
    assert response.status_code == 400, response.text
    message = response.json()["msg"]
    assert message.startswith(f"workflow_engine_parameters.{named}: "), message
    assert problem in message


def test_params_in_command_line_form_are_nextflow_params(client, alice, db):
    params = {
        "--input": "/data/run/samplesheet.csv",
        "--outdir": "/data/run/output/",
        "--max_cpus": "4",
        "--skip_qc": "true",
        "--ratio": "0.5",
        "--assembler": "stub",
        "--nested.level": "x",
        "--dotted\\.name": "y",
        "genome": "GRCh38",
        "count": 3,
    }
    response = _post(client, alice, workflow_params=json.dumps(params))
    assert response.status_code == 200, response.text
    with db.session() as session:
        stored = session.get(Run, response.json()["run_id"]).params
    assert stored == {
        "input": "/data/run/samplesheet.csv",
        "outdir": "/data/run/output/",
        "max_cpus": 4,
        "skip_qc": True,
        "ratio": 0.5,
        "assembler": "stub",
        "nested": {"level": "x"},
        "dotted.name": "y",
        "genome": "GRCh38",
        "count": 3,
    }


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"input": "a.csv", "--input": "b.csv"}, "--input"),
        ({"a": {"b": 1}, "--a.b": "2"}, "--a.b"),
        ({"a": "text", "--a.b": "2"}, "--a.b"),
        ({"-r": "1.0"}, "-r"),
        ({"--": "x"}, "--"),
        ({"--a..b": "x"}, "--a..b"),
    ],
)
def test_a_param_in_both_forms_or_a_run_option_is_refused(client, alice, params, named):
    response = _post(client, alice, workflow_params=params)
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith(f"workflow_params.{named}: ")


@pytest.mark.parametrize("as_sent", ["list", "text"])
def test_label_ids_put_the_workspace_s_labels_on_the_run(client, alice, as_sent):
    """Seqera's WES takes labelIds among the engine parameters: the run carries them, as
    a Tower launch's labelIds do (a list, or a form value's comma-separated text)."""
    ids = [label(client, alice, "qc"), label(client, alice, "env", "prod")]
    sent = ids if as_sent == "list" else ",".join(str(i) for i in ids)
    response = _post(client, alice, workflow_engine_parameters={"labelIds": sent})
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    answer = client.get(
        f"/api/workflow/{run_id}", headers=alice, params={"attributes": "labels"}
    ).json()
    assert sorted((lab["name"], lab.get("value")) for lab in answer["labels"]) == [
        ("env", "prod"),
        ("qc", None),
    ]
    found = client.get("/api/workflow", headers=alice, params={"search": "label:qc"}).json()
    assert [w["workflow"]["id"] for w in found["workflows"]] == [run_id]


def test_another_user_s_labels_are_not_put_on_a_run(client, alice, bob):
    theirs = label(client, bob, "theirs")
    response = _post(client, alice, workflow_engine_parameters={"labelIds": [theirs]})
    assert response.status_code == 400
    assert response.json()["msg"].startswith("workflow_engine_parameters.labelIds: no label")
    assert client.get(f"{WES}/runs", headers=alice).json()["runs"] == []
