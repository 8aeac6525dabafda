"""The compute environments API: Tower's shapes, Seqera's config fields, checked on
create, credentials never shown, admins manage them, runs pick one or the primary."""

from __future__ import annotations

import pytest

from tests.conftest import WES, submit

AWS = {
    "name": "aws-head",
    "platform": "aws-batch",
    "config": {
        "region": "eu-west-1",
        "headQueue": "head-queue",
        "computeQueue": "work-queue",
        "workDir": "s3://bucket/work",
        "headJobCpus": 2,
        "headJobMemoryMb": 4096,
        "environment": [
            {"name": "NXF_OPTS", "value": "-Xms1g", "head": True, "compute": False},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "hunter2", "head": True},
        ],
        "endpointUrl": "http://127.0.0.1:5000",
        "waveEnabled": False,
    },
}
GOOGLE = {
    "name": "gcp-head",
    "platform": "google-batch",
    "config": {"projectId": "my-project-1", "location": "europe-west2", "workDir": "gs://bkt/w"},
}


def create(client, headers, spec) -> str:
    response = client.post("/api/compute-envs", headers=headers, json={"computeEnv": spec})
    assert response.status_code == 200, response.text
    return response.json()["computeEnvId"]


def test_the_builtin_local_environment_is_there_and_primary(client, alice):
    response = client.get("/api/compute-envs", headers=alice)
    assert response.status_code == 200
    (local,) = response.json()["computeEnvs"]
    assert local["id"] == "local" and local["platform"] == "local-platform"
    assert local["primary"] is True and local["status"] == "AVAILABLE"


def test_create_describe_and_list(client, admin, alice):
    env_id = create(client, admin, AWS)
    described = client.get(f"/api/compute-envs/{env_id}", headers=alice).json()["computeEnv"]
    assert described["name"] == "aws-head" and described["platform"] == "aws-batch"
    config = described["config"]
    assert config["discriminator"] == "aws-batch"
    assert config["headQueue"] == "head-queue" and config["workDir"] == "s3://bucket/work"
    assert config["headJobImage"].startswith("nextflow/nextflow:")
    assert config["logGroup"] == "/aws/batch/job"
    values = {item["name"]: item["value"] for item in config["environment"]}
    assert values == {"NXF_OPTS": "********", "AWS_SECRET_ACCESS_KEY": "********"}
    as_admin = client.get(f"/api/compute-envs/{env_id}", headers=admin)
    values = {
        item["name"]: item["value"]
        for item in as_admin.json()["computeEnv"]["config"]["environment"]
    }
    assert values == {"NXF_OPTS": "-Xms1g", "AWS_SECRET_ACCESS_KEY": "********"}
    assert "hunter2" not in as_admin.text
    listed = client.get("/api/compute-envs", headers=alice).json()["computeEnvs"]
    entry = next(item for item in listed if item["id"] == env_id)
    assert entry["region"] == "eu-west-1" and entry["workDir"] == "s3://bucket/work"
    assert "hunter2" not in client.get("/api/compute-envs", headers=alice).text
    only = client.get("/api/compute-envs?status=INVALID", headers=alice).json()
    assert only["computeEnvs"] == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({**AWS, "platform": "mainframe"}, "computeEnv.platform"),
        ({**AWS, "name": "bad name!"}, "computeEnv.name"),
        ({**AWS, "config": {**AWS["config"], "region": "moon"}}, "computeEnv.config.region"),
        ({**AWS, "config": {**AWS["config"], "workDir": "/tmp/x"}}, "computeEnv.config.workDir"),
        ({**AWS, "config": {**AWS["config"], "headJobCpus": 0}}, "computeEnv.config.headJobCpus"),
        ({**AWS, "config": {**AWS["config"], "queue": "x"}}, "computeEnv.config.queue"),
        ({**AWS, "config": {**AWS["config"], "waveEnabled": True}}, "config.waveEnabled"),
        ({**AWS, "config": {"region": "eu-west-1", "workDir": "s3://bkt"}}, "config.headQueue"),
        (
            {**AWS, "config": {**AWS["config"], "headJobRole": "admin"}},
            "computeEnv.config.headJobRole",
        ),
        (
            {**AWS, "config": {**AWS["config"], "endpointUrl": "file:///etc"}},
            "computeEnv.config.endpointUrl",
        ),
        (
            {**AWS, "config": {**AWS["config"], "environment": [{"name": "1X", "value": ""}]}},
            "computeEnv.config.environment[0].name",
        ),
        ({**GOOGLE, "config": {**GOOGLE["config"], "projectId": "X"}}, "config.projectId"),
        ({**GOOGLE, "config": {**GOOGLE["config"], "workDir": "s3://b/w"}}, "config.workDir"),
        ({**AWS, "credentialsId": "abc"}, "computeEnv.credentialsId"),
        ({"name": "l2", "platform": "local-platform", "config": {"x": 1}}, "config.x"),
    ],
)
def test_a_bad_config_is_a_400_naming_the_field(client, admin, spec, field):
    response = client.post("/api/compute-envs", headers=admin, json={"computeEnv": spec})
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]


def test_only_admins_manage_compute_environments(client, admin, alice):
    response = client.post("/api/compute-envs", headers=alice, json={"computeEnv": AWS})
    assert response.status_code == 403 and set(response.json()) == {"message"}
    env_id = create(client, admin, AWS)
    assert client.delete(f"/api/compute-envs/{env_id}", headers=alice).status_code == 403
    assert client.post(f"/api/compute-envs/{env_id}/primary", headers=alice).status_code == 403
    again = client.post("/api/compute-envs", headers=admin, json={"computeEnv": AWS})
    assert again.status_code == 409


def test_runs_go_to_the_named_or_the_primary_environment(client, admin, alice, db):
    from wes_gateway.domain.models import Run

    aws = create(client, admin, AWS)
    google = create(client, admin, GOOGLE)
    default_run = submit(client, alice)
    named = submit(client, alice, workflow_engine_parameters=f'{{"compute_env_id": "{aws}"}}')
    assert client.post(f"/api/compute-envs/{google}/primary", headers=admin).status_code == 204
    primary_run = submit(client, alice)
    launched = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": "nf-core/demo", "computeEnvId": aws}},
    ).json()["workflowId"]
    with db.session() as session:
        assert session.get(Run, default_run).compute_env_id == "local"
        assert session.get(Run, named).compute_env_id == aws
        assert session.get(Run, primary_run).compute_env_id == google
        assert session.get(Run, launched).compute_env_id == aws
    listed = client.get("/api/compute-envs", headers=alice).json()["computeEnvs"]
    assert [env["id"] for env in listed if env["primary"]] == [google]
    described = client.get(f"/api/workflow/{launched}", headers=alice).json()
    assert described["platform"] == {"id": "aws-batch", "name": "Amazon Batch"}
    launch = client.get(f"/api/workflow/{launched}/launch", headers=alice).json()["launch"]
    assert launch["computeEnv"]["id"] == aws and launch["computeEnv"]["platform"] == "aws-batch"
    # A deleted one takes no new runs; its runs are still there.
    assert client.delete(f"/api/compute-envs/{aws}", headers=admin).status_code == 204
    assert client.get(f"/api/compute-envs/{aws}", headers=alice).status_code == 404
    refused = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": "nf-core/demo", "computeEnvId": aws}},
    )
    assert refused.status_code == 400 and "computeEnvId" in refused.json()["message"]
    assert client.get(f"{WES}/runs/{named}", headers=alice).status_code == 200


EXECUTION = {
    "nextflowConfig": "aws.batch.cliPath = '/opt/private/aws'",
    "preRunScript": "export PRIVATE_STEP=1",
    "postRunScript": "curl -s https://hooks.example.org/private",
    "environment": [
        {"name": "NXF_OPTS", "value": "-Dprivate=1", "head": True, "compute": False},
        {"name": "EMPTY", "value": "", "head": True, "compute": False},
    ],
}
PRIVATE = ("/opt/private/aws", "PRIVATE_STEP", "hooks.example.org", "-Dprivate=1")


def _config_as(client, headers, env_id: str, run_id: str) -> list[dict]:
    """The config the caller is shown, by every route that shows one; each route's answer
    must give away none of the private values when masked."""
    described = client.get(f"/api/compute-envs/{env_id}", headers=headers)
    launch = client.get(f"/api/workflow/{run_id}/launch", headers=headers)
    assert described.status_code == 200 and launch.status_code == 200, launch.text
    return [
        described.json()["computeEnv"]["config"],
        launch.json()["launch"]["computeEnv"]["config"],
    ]


def test_execution_settings_show_to_administrators_only(client, admin, alice, db):
    """nextflowConfig, the pre- and post-run scripts and the environment's values configure
    how runs execute: an administrator reads them; another user, and a run's own token
    (even one of an administrator's run), sees each key with a masked string."""
    from tests.domain.test_trace import run_token

    env_id = create(client, admin, {**AWS, "config": {**AWS["config"], **EXECUTION}})
    params = f'{{"compute_env_id": "{env_id}"}}'
    alices_run = submit(client, alice, workflow_engine_parameters=params)
    admins_run = submit(client, admin, workflow_engine_parameters=params)
    masked = {
        "alice": (alice, alices_run),
        "alice's run token": (run_token(db, alices_run, "alice"), alices_run),
        "the admin's run token": (run_token(db, admins_run, "root"), admins_run),
    }
    for who, (headers, run_id) in masked.items():
        for config in _config_as(client, headers, env_id, run_id):
            for key in ("nextflowConfig", "preRunScript", "postRunScript"):
                assert config[key] == "********", (who, key, config)
            values = {item["name"]: item["value"] for item in config["environment"]}
            assert values == {"NXF_OPTS": "********", "EMPTY": ""}, (who, values)
            assert not any(secret in str(config) for secret in PRIVATE), (who, config)
        listed = client.get("/api/compute-envs", headers=headers)
        assert not any(secret in listed.text for secret in PRIVATE), who
    for config in _config_as(client, admin, env_id, admins_run):
        assert {
            key: config[key] for key in ("nextflowConfig", "preRunScript", "postRunScript")
        } == {key: EXECUTION[key] for key in ("nextflowConfig", "preRunScript", "postRunScript")}
        values = {item["name"]: item["value"] for item in config["environment"]}
        assert values == {"NXF_OPTS": "-Dprivate=1", "EMPTY": ""}


def test_a_run_too_large_for_a_cloud_head_job_is_refused_at_accept(client, admin, alice):
    """A cloud head job gets its params and config as variables of at most 20,000 bytes
    in all: a run that would not fit is a 400 naming its larger part, built by the very
    function the workers submit with, not an accepted run that fails at submit."""
    import json

    aws = create(client, admin, AWS)
    config = "// " + "x" * 16 * 1024 + "\n"
    launched = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": "nf-core/demo", "computeEnvId": aws, "configText": config}},
    )
    assert launched.status_code == 400, launched.text
    assert launched.json()["message"].startswith("launch.configText:")
    assert "20000" in launched.json()["message"]
    options = {"compute_env_id": aws, "config": config}
    wes = client.post(
        f"{WES}/runs",
        headers=alice,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "nf-core/demo",
            "workflow_engine_parameters": json.dumps(options),
        },
    )
    assert wes.status_code == 400 and wes.json()["msg"].startswith(
        "workflow_engine_parameters.config:"
    )
    params = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={
            "launch": {
                "pipeline": "nf-core/demo",
                "computeEnvId": aws,
                "paramsText": json.dumps({"big": "y" * 16 * 1024}),
            }
        },
    )
    assert params.status_code == 400 and params.json()["message"].startswith("launch.paramsText:")
    assert client.get(f"{WES}/runs", headers=alice).json()["runs"] == []
    # The same config runs on the local platform, and a smaller one on the cloud.
    assert submit(client, alice, workflow_engine_parameters=json.dumps({"config": config}))
    small = {"compute_env_id": aws, "config": config[: 8 * 1024]}
    assert submit(client, alice, workflow_engine_parameters=json.dumps(small))


def test_cloud_launch_settings_are_checked_against_the_platform(client, admin, alice):
    aws = create(client, admin, AWS)

    def launch(**fields):
        body = {"launch": {"pipeline": "nf-core/demo", "computeEnvId": aws, **fields}}
        return client.post("/api/workflow/launch", headers=alice, json=body)

    wrong = launch(workDir="gs://bucket/work")
    assert wrong.status_code == 400 and wrong.json()["message"].startswith("launch.workDir:")
    accepted = launch(workDir="s3://bucket/other", headJobCpus=4, headJobMemoryMb=8192)
    assert accepted.status_code == 200, accepted.text
    run_id = accepted.json()["workflowId"]
    echoed = client.get(f"/api/workflow/{run_id}/launch", headers=alice).json()["launch"]
    assert echoed["workDir"] == "s3://bucket/other"
    assert (echoed["headJobCpus"], echoed["headJobMemoryMb"]) == (4, 8192)
