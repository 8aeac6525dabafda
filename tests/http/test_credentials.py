"""Credentials and pipeline secrets over the Tower API, in Seqera's shapes (every answer
checked against Seqera's spec): what is shown back (never a secret), what is refused
(400 naming the field, 409 for a name taken or credentials in use), who may do what,
and that the stored rows hold the secrets sealed, not in clear."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.http.test_tenancy import add_participant, create_org, create_workspace
from tests.oracle import seqera
from tests.ssh_keys import body_of, openssh_key
from wes_gateway.domain.models import Credential, PipelineSecret

API = "/api"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SA_KEY = json.dumps(
    {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key_id": "k1",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIBVQ==\n-----END PRIVATE KEY-----\n",
        "client_email": "runner@fake-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
)
SSH_PASSPHRASE = "hunter2-passphrase"
SSH_KEY = openssh_key(SSH_PASSPHRASE)
GIT_TOKEN = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"
SECRETS = (SECRET_KEY, SA_KEY, "MIIBVQ", body_of(SSH_KEY), GIT_TOKEN, SSH_PASSPHRASE)


def ssh_body(private_key: str, passphrase: str | None = None) -> dict:
    keys = {"privateKey": private_key, "passphrase": passphrase}
    return {"credentials": {"name": "s", "provider": "ssh", "keys": keys}}


@pytest.fixture
def seqera_client(client):
    """Every answer of the credentials and secrets operations checked against Seqera's
    spec, and searched for the secrets these tests send."""
    seen: list[str] = []

    def check(response):
        path = response.request.url.path
        if path.startswith((f"{API}/credentials", f"{API}/pipeline-secrets")):
            seqera.check(response)
            seen.append(response.text)

    client.event_hooks["response"].append(check)
    client.seen = seen
    return client


def aws_body(name="aws-keys", **keys):
    return {
        "credentials": {
            "name": name,
            "provider": "aws",
            "keys": {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY, **keys},
        }
    }


def create(client, headers, body, **params):
    response = client.post(f"{API}/credentials", headers=headers, json=body, params=params)
    assert response.status_code == 200, response.text
    return response.json()["credentialsId"]


def test_each_provider_is_stored_and_shown_without_its_secrets(seqera_client, alice, db):
    client = seqera_client
    ids = {
        "aws": create(
            client,
            alice,
            aws_body(assumeRoleArn="arn:aws:iam::123456789012:role/batch-runner"),
        ),
        "google": create(
            client,
            alice,
            {"credentials": {"name": "gcp", "provider": "google", "keys": {"data": SA_KEY}}},
        ),
        "ssh": create(
            client,
            alice,
            {
                "credentials": {
                    "name": "cluster",
                    "provider": "ssh",
                    "keys": {"privateKey": SSH_KEY, "passphrase": SSH_PASSPHRASE},
                }
            },
        ),
        "github": create(
            client,
            alice,
            {
                "credentials": {
                    "name": "gh",
                    "provider": "github",
                    "keys": {"username": "alice", "password": GIT_TOKEN},
                }
            },
        ),
    }
    listed = client.get(f"{API}/credentials", headers=alice).json()["credentials"]
    assert {c["name"]: c["provider"] for c in listed} == {
        "aws-keys": "aws",
        "gcp": "google",
        "cluster": "ssh",
        "gh": "github",
    }
    described = {
        provider: client.get(f"{API}/credentials/{ident}", headers=alice).json()["credentials"]
        for provider, ident in ids.items()
    }
    assert described["aws"]["keys"] == {
        "discriminator": "aws",
        "mode": "keys",
        "accessKey": ACCESS_KEY,
        "assumeRoleArn": "arn:aws:iam::123456789012:role/batch-runner",
    }
    assert described["google"]["keys"] == {
        "discriminator": "google",
        "serviceAccountEmail": "runner@fake-project.iam.gserviceaccount.com",
    }
    assert described["ssh"]["keys"] == {"discriminator": "ssh"}
    assert described["github"]["keys"] == {"discriminator": "github", "username": "alice"}
    for text in client.seen:
        for secret in SECRETS:
            assert secret not in text
    # At rest: sealed, never in clear.
    with db.session() as session:
        stored = " ".join(
            row.sealed + json.dumps(row.keys) for row in session.scalars(select(Credential))
        )
    assert stored.count("v1.") == 4
    for secret in SECRETS:
        assert secret not in stored


def test_list_by_platform_is_what_tw_compute_envs_add_asks(seqera_client, alice):
    create(seqera_client, alice, aws_body())
    create(
        seqera_client,
        alice,
        {"credentials": {"name": "gcp", "provider": "google", "keys": {"data": SA_KEY}}},
    )
    for platform, names in (
        ("aws-batch", ["aws-keys"]),
        ("google-batch", ["gcp"]),
        ("slurm-platform", []),
    ):
        listed = seqera_client.get(
            f"{API}/credentials", headers=alice, params={"platformId": platform}
        ).json()["credentials"]
        assert [c["name"] for c in listed] == names
    unknown = seqera_client.get(f"{API}/credentials", headers=alice, params={"platformId": "k8s"})
    assert unknown.status_code == 400 and unknown.json()["message"].startswith("platformId:")


@pytest.mark.parametrize(
    "body,field",
    [
        ({"credentials": {"name": "x", "provider": "azure", "keys": {}}}, "credentials.provider"),
        ({"credentials": {"name": "a b", "provider": "aws"}}, "credentials.name"),
        (aws_body(accessKey="not a key"), "credentials.keys.accessKey"),
        (
            {"credentials": {"name": "x", "provider": "aws", "keys": {"accessKey": ACCESS_KEY}}},
            "credentials.keys.secretKey",
        ),
        (aws_body(assumeRoleArn="admin"), "credentials.keys.assumeRoleArn"),
        (aws_body(mode="role"), "credentials.keys.mode"),
        (
            {"credentials": {"name": "g", "provider": "google", "keys": {"data": "{}"}}},
            "credentials.keys.data",
        ),
        (
            {"credentials": {"name": "g", "provider": "google", "keys": {"data": "not json"}}},
            "credentials.keys.data",
        ),
        (
            {"credentials": {"name": "s", "provider": "ssh", "keys": {"privateKey": "hello"}}},
            "credentials.keys.privateKey",
        ),
        (
            ssh_body(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"
            ),
            "credentials.keys.privateKey",
        ),
        (ssh_body(SSH_KEY), "credentials.keys.passphrase"),
        (ssh_body(SSH_KEY, "not the passphrase"), "credentials.keys.passphrase"),
        (ssh_body(openssh_key(), "a passphrase for a clear key"), "credentials.keys.passphrase"),
        (
            {"credentials": {"name": "h", "provider": "github", "keys": {"username": "a"}}},
            "credentials.keys.password",
        ),
        (
            {
                "credentials": {
                    "name": "h",
                    "provider": "gitea",
                    "baseUrl": "http://git.example",
                    "keys": {"password": "t"},
                }
            },
            "credentials.baseUrl",
        ),
        (
            {"credentials": {"name": "h", "provider": "github", "keys": {"secretKey": "t"}}},
            "credentials.keys.secretKey",
        ),
        ({"nothing": 1}, "credentials"),
    ],
)
def test_bad_credentials_are_a_400_naming_the_field(seqera_client, alice, body, field):
    response = seqera_client.post(f"{API}/credentials", headers=alice, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field}:"), response.text
    assert seqera_client.get(f"{API}/credentials", headers=alice).json()["credentials"] == []


def test_name_taken_validate_update_and_delete(seqera_client, alice, db):
    client = seqera_client
    ident = create(client, alice, aws_body())
    again = client.post(f"{API}/credentials", headers=alice, json=aws_body())
    assert again.status_code == 400 and again.json()["message"].startswith("credentials.name:")
    taken = client.get(f"{API}/credentials/validate", headers=alice, params={"name": "aws-keys"})
    assert taken.status_code == 409
    free = client.get(f"{API}/credentials/validate", headers=alice, params={"name": "other"})
    assert free.status_code == 204
    bad = client.get(f"{API}/credentials/validate", headers=alice, params={"name": "a b"})
    assert bad.status_code == 400 and bad.json()["message"].startswith("name:")
    with db.session() as session:
        sealed_before = session.get(Credential, ident).sealed
    # A new name, a new access key; the secret left out stays as it was.
    updated = client.put(
        f"{API}/credentials/{ident}",
        headers=alice,
        json={
            "credentials": {
                "name": "renamed",
                "provider": "aws",
                "keys": {"accessKey": "AKIAI44QH8DHBEXAMPLE"},
            }
        },
    )
    assert updated.status_code == 204, updated.text
    shown = client.get(f"{API}/credentials/{ident}", headers=alice).json()["credentials"]
    assert (shown["name"], shown["keys"]["accessKey"]) == ("renamed", "AKIAI44QH8DHBEXAMPLE")
    with db.session() as session:
        assert session.get(Credential, ident).sealed == sealed_before
    provider = client.put(
        f"{API}/credentials/{ident}",
        headers=alice,
        json={"credentials": {"name": "renamed", "provider": "google"}},
    )
    assert provider.status_code == 400
    assert provider.json()["message"].startswith("credentials.provider:")
    gone = client.delete(f"{API}/credentials/{ident}", headers=alice, params={"checked": "false"})
    assert gone.status_code == 204
    assert client.get(f"{API}/credentials/{ident}", headers=alice).status_code == 403


def test_credentials_in_use_by_a_compute_environment_are_not_deleted(seqera_client, admin):
    ident = create(seqera_client, admin, aws_body())
    env = seqera_client.post(
        f"{API}/compute-envs",
        headers=admin,
        json={
            "computeEnv": {
                "name": "batch",
                "platform": "aws-batch",
                "credentialsId": ident,
                "config": {
                    "region": "eu-west-1",
                    "headQueue": "head-queue",
                    "workDir": "s3://bucket/work",
                },
            }
        },
    )
    assert env.status_code == 200, env.text
    env_id = env.json()["computeEnvId"]
    described = seqera_client.get(f"{API}/compute-envs/{env_id}", headers=admin).json()
    assert described["computeEnv"]["credentialsId"] == ident
    refused = seqera_client.delete(f"{API}/credentials/{ident}", headers=admin)
    assert refused.status_code == 409
    assert refused.json()["conflicts"] == [{"type": "compute_env", "id": env_id, "name": "batch"}]
    assert seqera_client.delete(f"{API}/compute-envs/{env_id}", headers=admin).status_code == 204
    assert seqera_client.delete(f"{API}/credentials/{ident}", headers=admin).status_code == 204


def test_a_compute_environment_takes_credentials_of_its_provider_and_place(
    seqera_client, admin, alice
):
    google = create(
        seqera_client,
        admin,
        {"credentials": {"name": "gcp", "provider": "google", "keys": {"data": SA_KEY}}},
    )
    others = create(seqera_client, alice, aws_body())
    config = {"region": "eu-west-1", "headQueue": "head-queue", "workDir": "s3://bucket/work"}
    for credentials_id, problem in ((google, "takes aws credentials"), (others, "no credentials")):
        response = seqera_client.post(
            f"{API}/compute-envs",
            headers=admin,
            json={
                "computeEnv": {
                    "name": "b",
                    "platform": "aws-batch",
                    "config": config,
                    "credentialsId": credentials_id,
                }
            },
        )
        assert response.status_code == 400, response.text
        message = response.json()["message"]
        assert message.startswith("computeEnv.credentialsId:") and problem in message


def test_roles_admin_manages_credentials_and_secrets(seqera_client, make_user):
    ann, ben = make_user("ann"), make_user("ben")
    org = create_org(seqera_client, ann)
    ws = create_workspace(seqera_client, ann, org)
    add_participant(seqera_client, ann, org, ws, "ben", "launch")
    in_ws = {"workspaceId": ws}
    ident = create(seqera_client, ann, aws_body(), **in_ws)
    secret = seqera_client.post(
        f"{API}/pipeline-secrets", headers=ann, params=in_ws, json={"name": "TOKEN", "value": "v"}
    ).json()["secretId"]
    # ben (launch) sees the secrets' names, and nothing of the credentials.
    names = seqera_client.get(f"{API}/pipeline-secrets", headers=ben, params=in_ws).json()
    assert [s["name"] for s in names["pipelineSecrets"]] == ["TOKEN"]
    for method, path, body in (
        ("GET", "/credentials", None),
        ("GET", f"/credentials/{ident}", None),
        ("POST", "/credentials", aws_body("mine")),
        ("DELETE", f"/credentials/{ident}", None),
        ("POST", "/pipeline-secrets", {"name": "MINE", "value": "v"}),
        ("PUT", f"/pipeline-secrets/{secret}", {"value": "w"}),
        ("DELETE", f"/pipeline-secrets/{secret}", None),
    ):
        response = seqera_client.request(
            method, f"{API}{path}", headers=ben, params=in_ws, json=body
        )
        assert response.status_code == 403, (method, path, response.text)
    # The personal workspace's are the caller's own: ben sees none of ann's.
    assert seqera_client.get(f"{API}/credentials", headers=ben).json()["credentials"] == []
    assert seqera_client.get(f"{API}/credentials/{ident}", headers=ben).status_code == 403


def test_pipeline_secrets_crud(seqera_client, alice, db):
    client = seqera_client
    created = client.post(
        f"{API}/pipeline-secrets", headers=alice, json={"name": "DB_PASSWORD", "value": "s3cr3t!"}
    )
    assert created.status_code == 200, created.text
    secret_id = created.json()["secretId"]
    listed = client.get(f"{API}/pipeline-secrets", headers=alice).json()
    assert listed["totalSize"] == 1
    assert [s["name"] for s in listed["pipelineSecrets"]] == ["DB_PASSWORD"]
    one = client.get(f"{API}/pipeline-secrets/{secret_id}", headers=alice).json()
    assert one["pipelineSecret"]["name"] == "DB_PASSWORD" and "value" not in one["pipelineSecret"]
    taken = client.post(
        f"{API}/pipeline-secrets", headers=alice, json={"name": "DB_PASSWORD", "value": "x"}
    )
    assert taken.status_code == 400 and taken.json()["message"].startswith("name:")
    for body, field in (
        ({"name": "9lives", "value": "x"}, "name"),
        ({"name": "a__b", "value": "x"}, "name"),
        ({"name": "OK", "value": ""}, "value"),
    ):
        response = client.post(f"{API}/pipeline-secrets", headers=alice, json=body)
        assert response.status_code == 400 and response.json()["message"].startswith(f"{field}:")
    validate = client.get(
        f"{API}/pipeline-secrets/validate", headers=alice, params={"name": "DB_PASSWORD"}
    )
    assert validate.status_code == 409
    assert (
        client.put(
            f"{API}/pipeline-secrets/{secret_id}", headers=alice, json={"value": "n3w-v4lue"}
        ).status_code
        == 204
    )
    with db.session() as session:
        (row,) = session.scalars(select(PipelineSecret)).all()
        assert "n3w-v4lue" not in row.sealed and "s3cr3t!" not in row.sealed
    for text in client.seen:
        assert "s3cr3t!" not in text and "n3w-v4lue" not in text
    assert client.delete(f"{API}/pipeline-secrets/{secret_id}", headers=alice).status_code == 204
    assert client.get(f"{API}/pipeline-secrets/{secret_id}", headers=alice).status_code == 403


def test_a_launch_names_secrets_that_exist(client, alice):
    client.post(
        f"{API}/pipeline-secrets", headers=alice, json={"name": "DB_PASSWORD", "value": "v"}
    )
    launch = {"pipeline": "nf-core/demo", "workspaceSecrets": ["DB_PASSWORD"]}
    ok = client.post(f"{API}/workflow/launch", headers=alice, json={"launch": launch})
    assert ok.status_code == 200, ok.text
    for field, names in (
        ("workspaceSecrets", ["MISSING"]),
        ("userSecrets", ["MISSING"]),
        ("userSecrets", "DB_PASSWORD"),
        ("workspaceSecrets", ["a b"]),
    ):
        response = client.post(
            f"{API}/workflow/launch",
            headers=alice,
            json={"launch": {"pipeline": "nf-core/demo", field: names}},
        )
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith(f"launch.{field}:"), response.text


def test_an_ssh_key_is_stored_only_with_the_passphrase_that_opens_it(seqera_client, alice, db):
    """A new key replaces the stored pair: the old passphrase does not stay beside it."""
    ident = create(seqera_client, alice, ssh_body(SSH_KEY, SSH_PASSPHRASE))
    path = f"{API}/credentials/{ident}"

    def put(keys: dict):
        body = {"credentials": {"name": "s", "provider": "ssh", "keys": keys}}
        return seqera_client.put(path, headers=alice, json=body)

    clear = openssh_key()
    assert put({"privateKey": clear}).status_code == 204
    wrong = put({"passphrase": "not the passphrase"})
    assert wrong.status_code == 400
    assert wrong.json()["message"].startswith("credentials.keys.passphrase:")
    sealed_again = put({"privateKey": SSH_KEY})
    assert sealed_again.status_code == 400
    assert "protected by a passphrase" in sealed_again.json()["message"]
    assert put({"privateKey": SSH_KEY, "passphrase": SSH_PASSPHRASE}).status_code == 204
