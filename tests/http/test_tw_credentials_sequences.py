"""The request sequences of tw's credentials, compute environment and secrets commands
(seqeralabs/tower-cli), replayed call by call as its source makes them, every answer
checked against Seqera's spec:

- `tw credentials add aws|google|ssh|github -w org/ws -n NAME ...`: the workspace
  resolved (GET /user-info, GET /user/{id}/workspaces), then AbstractAddCmd's
  createCredentials(request, wspId, useExternalId=false) with the provider's
  SecurityKeys (AwsProvider: accessKey, secretKey, assumeRoleArn; GoogleProvider: the key
  file as `data`; SshProvider: privateKey, passphrase; GithubProvider: username,
  password; baseUrl from --base-url). `--overwrite` first lists the credentials and
  deletes the one of that name (deleteCredentials(id, wspId, checked=false)).
- `tw credentials list|delete`: listCredentials(wspId, null), then by name.
- `tw compute-envs add aws-batch manual ... --credentials NAME`: AbstractAddCmd's
  credentialsByRef lists GET /credentials?platformId=aws-batch and takes the one whose
  id or name is NAME; without --credentials, findWorkspaceCredentials needs exactly one
  there. Then createComputeEnv with AwsBatchManualPlatform's config.
- `tw secrets add -n NAME -v VALUE [--overwrite]`: createPipelineSecret(name, value),
  after listPipelineSecrets and deletePipelineSecret(id) with --overwrite.
"""

from __future__ import annotations

import json

import pytest

from tests.http.test_tenancy import create_org, create_workspace
from tests.http.test_tw_sequences import API, Tw
from tests.oracle import seqera
from tests.ssh_keys import openssh_key

SA_KEY = json.dumps(
    {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
        "client_email": "tw@fake-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
)
SSH_KEY = openssh_key()


@pytest.fixture
def tw_world(client, make_user):
    """ann owns acme/lab; every Tower answer is checked against Seqera's spec."""
    client.event_hooks["response"].append(_oracle)
    ann = make_user("ann")
    org = create_org(client, ann)
    ws = create_workspace(client, ann, org)
    return client, ann, ws


def _oracle(response):
    if response.request.url.path.startswith(
        (f"{API}/credentials", f"{API}/pipeline-secrets", f"{API}/user")
    ):
        seqera.check(response)


def credentials_add(client, headers, ws, provider, name, keys, base_url=None, overwrite=False):
    """tw credentials add <provider> -w acme/lab -n NAME ... (AbstractAddCmd.exec)."""
    tw = Tw(client, headers)
    _, wsp_id = tw.workspace("acme/lab")
    assert wsp_id == ws
    if overwrite:  # tryDeleteCredentials: findCredentialsByName, then deleteCredentialsById
        listed = tw.get("/credentials", workspaceId=wsp_id)["credentials"]
        for found in [c for c in listed if c["name"] == name]:
            deleted = client.delete(
                f"{API}/credentials/{found['id']}",
                headers=headers,
                params={"workspaceId": wsp_id, "checked": "false"},
            )
            assert deleted.status_code == 204, deleted.text
    body = {
        "credentials": {
            "keys": {"discriminator": provider, **keys},
            "name": name,
            "baseUrl": base_url,
            "provider": provider,
        }
    }
    response = client.post(
        f"{API}/credentials",
        headers=headers,
        params={"workspaceId": wsp_id, "useExternalId": "false"},
        json=body,
    )
    assert response.status_code == 200, response.text
    return response.json()["credentialsId"]


def test_tw_credentials_add_each_provider_then_list(tw_world):
    client, ann, ws = tw_world
    aws = credentials_add(
        client,
        ann,
        ws,
        "aws",
        "aws-keys",
        {
            "accessKey": "AKIAIOSFODNN7EXAMPLE",
            "secretKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "assumeRoleArn": "arn:aws:iam::123456789012:role/tw",
        },
    )
    credentials_add(client, ann, ws, "google", "gcp", {"data": SA_KEY})
    credentials_add(
        client,
        ann,
        ws,
        "ssh",
        "cluster",
        {
            "privateKey": SSH_KEY,
            "passphrase": None,
        },
    )
    credentials_add(
        client,
        ann,
        ws,
        "github",
        "gh",
        {"username": "ann", "password": "ghp_secret"},
        base_url="https://github.com",
    )
    # tw credentials list: listCredentials(wspId, null)
    listed = Tw(client, ann).get("/credentials", workspaceId=ws)["credentials"]
    assert sorted((c["name"], c["provider"]) for c in listed) == [
        ("aws-keys", "aws"),
        ("cluster", "ssh"),
        ("gcp", "google"),
        ("gh", "github"),
    ]
    assert [c["baseUrl"] for c in listed if c["name"] == "gh"] == ["https://github.com"]
    text = json.dumps(listed)
    for secret in ("wJalrXUtnFEMI", "PRIVATE KEY", "ghp_secret", "b3Bl"):
        assert secret not in text
    # tw credentials add aws --overwrite with the same name: the old one is replaced.
    again = credentials_add(
        client,
        ann,
        ws,
        "aws",
        "aws-keys",
        {"accessKey": "AKIAI44QH8DHBEXAMPLE", "secretKey": "other"},
        overwrite=True,
    )
    assert again != aws
    shown = Tw(client, ann).get(f"/credentials/{again}", workspaceId=ws)["credentials"]
    assert shown["keys"]["accessKey"] == "AKIAI44QH8DHBEXAMPLE"


AWS_BATCH_CONFIG = {
    # AwsBatchManualPlatform.computeConfig(): what tw sends for
    # `--work-dir s3://bucket/work -r eu-west-1 --head-queue head-queue --compute-queue work`
    "discriminator": "aws-batch",
    "region": "eu-west-1",
    "fusion2Enabled": False,
    "waveEnabled": False,
    "nvnmeStorageEnabled": False,
    "headQueue": "head-queue",
    "computeQueue": "work-queue",
    "cliPath": None,
    "executionRole": None,
    "computeJobRole": None,
    "headJobCpus": None,
    "headJobMemoryMb": None,
    "headJobRole": None,
    "workDir": "s3://bucket/work",
    "preRunScript": None,
    "postRunScript": None,
    "nextflowConfig": None,
    "environment": [],
}


def compute_envs_add_aws_batch(client, headers, ws, credentials_ref=None):
    """tw compute-envs add aws-batch manual -w acme/lab -n batch ... [--credentials REF]."""
    tw = Tw(client, headers)
    _, wsp_id = tw.workspace("acme/lab")
    listed = tw.get("/credentials", workspaceId=wsp_id, platformId="aws-batch")["credentials"]
    if credentials_ref is None:  # findWorkspaceCredentials: exactly one
        assert len(listed) == 1, listed
        credentials_id = listed[0]["id"]
    else:  # credentialsByRef: by id or by name
        (found,) = [c for c in listed if credentials_ref in (c["id"], c["name"])]
        credentials_id = found["id"]
    body = {
        "computeEnv": {
            "name": "batch",
            "description": None,
            "platform": "aws-batch",
            "credentialsId": credentials_id,
            "config": AWS_BATCH_CONFIG,
            "fusionMetricsCollectionEnabled": None,
        },
        "labelIds": None,
    }
    response = client.post(
        f"{API}/compute-envs", headers=headers, params={"workspaceId": wsp_id}, json=body
    )
    assert response.status_code == 200, response.text
    return response.json()["computeEnvId"], credentials_id


@pytest.mark.parametrize("ref", ["by-name", "by-id", None])
def test_tw_compute_envs_add_aws_batch_with_credentials(tw_world, ref):
    client, ann, ws = tw_world
    keys = {"accessKey": "AKIAIOSFODNN7EXAMPLE", "secretKey": "s"}
    aws = credentials_add(client, ann, ws, "aws", "aws-keys", keys)
    # A google one does not count among those an aws-batch environment takes.
    credentials_add(client, ann, ws, "google", "gcp", {"data": SA_KEY})
    credentials_ref = {"by-name": "aws-keys", "by-id": aws, None: None}[ref]
    env_id, used = compute_envs_add_aws_batch(client, ann, ws, credentials_ref)
    assert used == aws
    described = client.get(
        f"{API}/compute-envs/{env_id}", headers=ann, params={"workspaceId": ws}
    ).json()["computeEnv"]
    assert described["credentialsId"] == aws and described["platform"] == "aws-batch"


def test_tw_secrets_add_and_overwrite(tw_world):
    client, ann, ws = tw_world
    tw = Tw(client, ann)
    _, wsp_id = tw.workspace("acme/lab")

    def secrets_add(name, value, overwrite=False):
        if overwrite:  # tryDeleteSecret: secretByName, then deletePipelineSecret(id, wspId)
            listed = tw.get("/pipeline-secrets", workspaceId=wsp_id)["pipelineSecrets"]
            for found in [s for s in listed if s["name"] == name]:
                deleted = client.delete(
                    f"{API}/pipeline-secrets/{found['id']}",
                    headers=ann,
                    params={"workspaceId": wsp_id},
                )
                assert deleted.status_code == 204
        response = client.post(
            f"{API}/pipeline-secrets",
            headers=ann,
            params={"workspaceId": wsp_id},
            json={"name": name, "value": value},
        )
        return response

    first = secrets_add("DB_PASSWORD", "one")
    assert first.status_code == 200, first.text
    assert secrets_add("DB_PASSWORD", "two").status_code == 400  # taken, without --overwrite
    second = secrets_add("DB_PASSWORD", "two", overwrite=True)
    assert second.status_code == 200 and second.json()["secretId"] != first.json()["secretId"]
    # tw secrets list / view
    listed = tw.get("/pipeline-secrets", workspaceId=wsp_id)
    assert [s["name"] for s in listed["pipelineSecrets"]] == ["DB_PASSWORD"]
    one = tw.get(f"/pipeline-secrets/{second.json()['secretId']}", workspaceId=wsp_id)
    assert one["pipelineSecret"]["name"] == "DB_PASSWORD"
    assert "two" not in json.dumps(listed) + json.dumps(one)
