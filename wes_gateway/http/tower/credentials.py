"""Tower handlers for credentials (``/credentials``) and pipeline secrets
(``/pipeline-secrets``), and the views of their bodies, in Seqera's shapes. No answer
carries a secret: credentials show their non-secret ``keys``, secrets their names."""

from __future__ import annotations

from typing import Any

from connexion import NoContent

from wes_gateway.domain import credentials, pipeline_secrets
from wes_gateway.domain.models import Credential, PipelineSecret
from wes_gateway.http.runtime import current, request_session
from wes_gateway.http.tower.acting import acting
from wes_gateway.http.tower.views import tower_time
from wes_gateway.infra.sealing import Sealer


def _sealer() -> Sealer:
    return Sealer(current().settings.credentials_keys)


def credentials_view(row: Credential) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "provider": row.provider,
        "keys": credentials.public_keys(row),
        "deleted": False,
        "status": "AVAILABLE",
        "dateCreated": tower_time(row.created_at),
        "lastUpdated": tower_time(row.updated_at),
    }
    if row.description is not None:
        body["description"] = row.description
    if row.base_url is not None:
        body["baseUrl"] = row.base_url
    if row.last_used_at is not None:
        body["lastUsed"] = tower_time(row.last_used_at)
    return body


def secret_view(row: PipelineSecret) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "dateCreated": tower_time(row.created_at),
        "lastUpdated": tower_time(row.updated_at),
    }
    if row.last_used_at is not None:
        body["lastUsed"] = tower_time(row.last_used_at)
    return body


# --- credentials ----------------------------------------------------------------------


def list_credentials(token_info: dict, workspace_id=None, platform_id=None):
    who = acting(token_info, workspace_id, "ListCredentials")
    rows = credentials.list_credentials(request_session(), who, platform_id)
    return {"credentials": [credentials_view(row) for row in rows]}


def create_credentials(body: dict, token_info: dict, workspace_id=None, use_external_id=None):
    who = acting(token_info, workspace_id, "CreateCredentials")
    row = credentials.create(request_session(), who, body, _sealer(), use_external_id)
    return {"credentialsId": row.id}


def validate_credentials_name(token_info: dict, workspace_id=None, name=None):
    who = acting(token_info, workspace_id, "ValidateCredentialsName")
    credentials.validate_name(request_session(), who, name)
    return NoContent, 204


def describe_credentials(credentials_id: str, token_info: dict, workspace_id=None):
    who = acting(token_info, workspace_id, "DescribeCredentials")
    row = credentials.get(request_session(), who, credentials_id)
    return {"credentials": credentials_view(row)}


def update_credentials(
    credentials_id: str, body: dict, token_info: dict, workspace_id=None, use_external_id=None
):
    who = acting(token_info, workspace_id, "UpdateCredentials")
    credentials.update(request_session(), who, credentials_id, body, _sealer(), use_external_id)
    return NoContent, 204


def delete_credentials(credentials_id: str, token_info: dict, workspace_id=None, checked=None):
    who = acting(token_info, workspace_id, "DeleteCredentials")
    users = credentials.delete(request_session(), who, credentials_id)
    if users:
        names = ", ".join(env.name for env in users)
        return {
            "message": f"credentialsId: compute environments use these credentials: {names}",
            "credentialsId": credentials_id,
            "conflicts": [{"type": "compute_env", "id": env.id, "name": env.name} for env in users],
        }, 409
    return NoContent, 204


# --- pipeline secrets -----------------------------------------------------------------


def list_pipeline_secrets(token_info: dict, workspace_id=None):
    who = acting(token_info, workspace_id, "ListPipelineSecrets")
    rows = pipeline_secrets.list_secrets(request_session(), who)
    return {"pipelineSecrets": [secret_view(row) for row in rows], "totalSize": len(rows)}


def create_pipeline_secret(body: dict, token_info: dict, workspace_id=None):
    who = acting(token_info, workspace_id, "CreatePipelineSecret")
    row = pipeline_secrets.create(request_session(), who, body, _sealer())
    return {"secretId": row.id}


def validate_pipeline_secret_name(token_info: dict, workspace_id=None, name=None):
    who = acting(token_info, workspace_id, "ValidatePipelineSecretName")
    pipeline_secrets.validate_name(request_session(), who, name)
    return NoContent, 204


def describe_pipeline_secret(secret_id: int, token_info: dict, workspace_id=None):
    who = acting(token_info, workspace_id, "DescribePipelineSecret")
    row = pipeline_secrets.get(request_session(), who, secret_id)
    return {"pipelineSecret": secret_view(row)}


def update_pipeline_secret(secret_id: int, body: dict, token_info: dict, workspace_id=None):
    who = acting(token_info, workspace_id, "UpdatePipelineSecret")
    pipeline_secrets.update(request_session(), who, secret_id, body, _sealer())
    return NoContent, 204


def delete_pipeline_secret(secret_id: int, token_info: dict, workspace_id=None):
    who = acting(token_info, workspace_id, "DeletePipelineSecret")
    pipeline_secrets.delete(request_session(), who, secret_id)
    return NoContent, 204
