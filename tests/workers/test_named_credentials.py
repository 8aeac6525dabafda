"""A compute environment that names credentials is driven with exactly those: the AWS
stand-in (moto's server) reads the access key each call was signed with, the Google
stand-in which service account each call's token stands for. Without named credentials
the SDK's default chain is used, as before."""

from __future__ import annotations

import time

import pytest

from tests.cloud import system_logs, wes_run
from tests.fakes.google_cloud import DEFAULT_PROJECT, SERVICE_ACCOUNT_EMAIL, held_plan
from wes_gateway.domain.models import Credential, Run
from wes_gateway.domain.states import State
from workers import execution
from workers.backends import aws_batch, google_batch

API = "/api"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DUMMY_KEY = "testing"  # the stand-in's environment (the SDK default chain)
ROLE = "arn:aws:iam::123456789012:role/batch-runner"


def add_credentials(client, headers, name, provider, keys) -> str:
    body = {"credentials": {"name": name, "provider": provider, "keys": keys}}
    response = client.post(f"{API}/credentials", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()["credentialsId"]


def aws_env(client, admin, aws, credentials_id=None) -> str:
    config = {
        "region": "eu-west-1",
        "headQueue": "head-queue",
        "workDir": "s3://bucket/work",
        "endpointUrl": aws.endpoint_url,
    }
    body = {
        "computeEnv": {
            "name": f"aws-{time.monotonic_ns()}",
            "platform": "aws-batch",
            "config": config,
            "credentialsId": credentials_id,
        }
    }
    response = client.post(f"{API}/compute-envs", headers=admin, json=body)
    assert response.status_code == 200, response.text
    return response.json()["computeEnvId"]


@pytest.fixture(autouse=True)
def _fresh_worker():
    aws_batch._definitions.clear()
    aws_batch._assumed.clear()
    google_batch._clients.clear()
    yield
    google_batch._clients.clear()


def test_aws_batch_calls_are_signed_with_the_named_access_key(
    client, admin, alice, db, aws, executor
):
    keys = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    credentials_id = add_credentials(client, admin, "batch-keys", "aws", keys)
    env_id = aws_env(client, admin, aws, credentials_id)
    execution.check_compute_env(executor, env_id)  # DescribeJobQueues
    run_id = wes_run(client, alice, env_id)
    execution.submit(executor, run_id)
    with db.session() as session:
        assert session.get(Run, run_id).backend_handle  # submitted
    execution.poll_active(executor)
    for operation in ("DescribeJobQueues", "SubmitJob", "ListJobs", "DescribeJobs"):
        signers = aws.signed_by(operation)
        assert signers and set(signers) == {ACCESS_KEY}, (operation, signers)
    # Nothing about the keys reaches the head job or the API.
    (sent,) = aws.submitted
    assert SECRET_KEY not in str(sent) and ACCESS_KEY not in str(sent)
    described = client.get(f"{API}/workflow/{run_id}", headers=alice).text
    assert SECRET_KEY not in described


def test_a_role_named_by_the_credentials_is_assumed_first(client, admin, alice, db, aws, executor):
    keys = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY, "assumeRoleArn": ROLE}
    credentials_id = add_credentials(client, admin, "batch-role", "aws", keys)
    run_id = wes_run(client, alice, aws_env(client, admin, aws, credentials_id))
    execution.submit(executor, run_id)
    execution.poll_active(executor)
    assert aws.signed_by("AssumeRole") == [ACCESS_KEY]  # once: the role's keys are kept
    (submitter,) = aws.signed_by("SubmitJob")
    assert submitter not in (ACCESS_KEY, DUMMY_KEY, None)  # the role's temporary key
    assert set(aws.signed_by("DescribeJobs")) == {submitter}


def test_without_named_credentials_the_sdk_default_chain_signs(client, admin, alice, aws, executor):
    run_id = wes_run(client, alice, aws_env(client, admin, aws))
    execution.submit(executor, run_id)
    assert aws.signed_by("SubmitJob") == [DUMMY_KEY]
    assert aws.calls["AssumeRole"] == 0


def test_credentials_no_key_opens_make_the_run_a_system_error(
    client, admin, alice, db, aws, executor
):
    keys = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    credentials_id = add_credentials(client, admin, "batch-keys", "aws", keys)
    run_id = wes_run(client, alice, aws_env(client, admin, aws, credentials_id))
    rotated = executor.settings.model_copy(update={"credentials_key": "a-new-key-only"})
    execution.submit(execution.Executor(db=db, settings=rotated), run_id)
    with db.session() as session:
        assert session.get(Run, run_id).state is State.SYSTEM_ERROR
    (why,) = [line for line in system_logs(client, alice, run_id) if "batch-keys" in line]
    assert "cannot be opened" in why and SECRET_KEY not in why
    assert aws.calls["SubmitJob"] == 0
    # With the old key kept after the new one, they open again.
    both = executor.settings.model_copy(
        update={"credentials_key": f"a-new-key-only,{executor.settings.secret_key}"}
    )
    with db.session() as session:
        sealed = session.get(Credential, credentials_id).sealed
    assert execution.Executor(db=db, settings=both).sealer.open(sealed)["secretKey"] == SECRET_KEY


# --- Google Batch ---------------------------------------------------------------------

LOCATION = "us-central1"
RUNNER = "runner@fake-project.invalid"


@pytest.fixture
def google(google_adc):
    google_adc.locations = {LOCATION}
    google_adc.plan_for = lambda job: held_plan()
    return google_adc


def google_env(client, admin, google, credentials_id=None) -> str:
    config = {
        "projectId": DEFAULT_PROJECT,
        "location": LOCATION,
        "workDir": "gs://bucket/work",
        "endpointUrl": google.rest_endpoint,
    }
    body = {
        "computeEnv": {
            "name": f"gcp-{time.monotonic_ns()}",
            "platform": "google-batch",
            "config": config,
            "credentialsId": credentials_id,
        }
    }
    response = client.post(f"{API}/compute-envs", headers=admin, json=body)
    assert response.status_code == 200, response.text
    return response.json()["computeEnvId"]


def test_google_batch_calls_carry_the_named_service_accounts_token(
    client, admin, alice, google, executor
):
    key = google.service_account_key(RUNNER)
    credentials_id = add_credentials(client, admin, "gcp-runner", "google", {"data": key})
    env_id = google_env(client, admin, google, credentials_id)
    execution.check_compute_env(executor, env_id)
    run_id = wes_run(client, alice, env_id)
    execution.submit(executor, run_id)
    execution.poll_active(executor)
    callers = {method: caller for method, caller in google.callers}
    assert {"ListJobs", "CreateJob"} <= set(callers)
    assert set(caller for _, caller in google.callers) == {RUNNER}
    shown = client.get(f"{API}/credentials/{credentials_id}", headers=admin).json()
    assert shown["credentials"]["keys"] == {
        "discriminator": "google",
        "serviceAccountEmail": RUNNER,
    }
    assert "PRIVATE KEY" not in str(shown)


def test_google_without_named_credentials_uses_application_default_credentials(
    client, admin, alice, google, executor
):
    run_id = wes_run(client, alice, google_env(client, admin, google))
    execution.submit(executor, run_id)
    assert set(caller for _, caller in google.callers) == {SERVICE_ACCOUNT_EMAIL}
