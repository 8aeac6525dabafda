"""The launchpad: pipelines saved in a workspace with the launch to start them with
(pipeline, revision, profiles, parameters, config, compute environment, work directory,
pre/post-run scripts), as Seqera's ``/pipelines`` has them.

A saved launch is checked when it is saved exactly as a launch is checked when it is
sent (``launch.run_request``), so a pipeline that could not be launched is not saved;
its compute environment must be one offered in the workspace. Launching a saved
pipeline is a launch like any other: a client reads ``GET /pipelines/{id}/launch`` and
sends it (with its own overrides) to ``POST /workflow/launch``, as ``tw launch <name>``
does.

A pipeline belongs to the workspace it was saved in (in the personal workspace, to its
maker). Pipelines shared from other workspaces are not offered: ``visibility=shared``
lists none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wes_gateway.domain import compute_envs, labels, launch
from wes_gateway.domain.errors import Conflict, InvalidField, NotFound
from wes_gateway.domain.ids import random_id
from wes_gateway.domain.models import (
    ComputeEnv,
    Label,
    Organization,
    Pipeline,
    PipelineLabel,
    User,
    Workspace,
)
from wes_gateway.domain.tokens import Principal
from wes_gateway.infra.db import utcnow

# Seqera's rule for pipeline names: letters and digits, with - _ or . between them.
NAME = re.compile(r"^[a-zA-Z\d](?:[a-zA-Z\d]|[-_.](?=[a-zA-Z\d])){1,98}$")
NAME_RULE = (
    "2 to 99 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, "
    "no two of '-', '_', '.' in a row"
)
VISIBILITIES = ("private", "shared", "all")
SORT_BY = {"CREATED": Pipeline.created_at, "MODIFIED": Pipeline.updated_at, "NAME": Pipeline.name}
ATTRIBUTES = ("optimized", "labels", "computeEnv")
LAUNCH_ID_LENGTH = 22
SCRIPT_LIMIT = 64 * 1024
# The launch fields a pipeline saves (Seqera's WorkflowLaunchRequest names). The others
# describe one launch, not a pipeline: ``id``, ``dateCreated``, ``sessionId``, ``resume``.
SAVED = (
    "pipeline",
    "revision",
    "computeEnvId",
    "workDir",
    "configProfiles",
    "configText",
    "paramsText",
    "preRunScript",
    "postRunScript",
    "mainScript",
    "entryName",
    "pullLatest",
    "stubRun",
    "headJobCpus",
    "headJobMemoryMb",
    "runName",
    "labelIds",
)
_NOT_SAVED = ("id", "dateCreated", "sessionId", "resume")


@dataclass(frozen=True)
class Saved:
    """A pipeline with what its answers show: its maker, workspace and organization,
    its labels and its compute environment (None when it names none, or one gone)."""

    pipeline: Pipeline
    user: User | None
    workspace: Workspace | None
    org: Organization | None
    labels: list[Label]
    compute_env: ComputeEnv | None


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidField(field, "is required (an object)")
    return value


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InvalidField(field, f"must be {NAME_RULE}")
    return value


def _optional_text(body: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidField(key, f"must be a string of at most {limit} characters")
    return value


def _env(session: Session, principal: Principal, env_id: Any, field: str) -> ComputeEnv:
    if not isinstance(env_id, str):
        raise InvalidField(field, "must be a compute environment id")
    try:
        return compute_envs.get(session, env_id, principal)
    except NotFound:
        raise InvalidField(field, f"no compute environment {env_id!r} here") from None


def check_launch(
    session: Session,
    principal: Principal,
    body: Any,
    *,
    engine_versions: list[str],
    max_field_bytes: int,
) -> dict[str, Any]:
    """The launch fields to save, checked as a launch is: 400s name ``launch.<field>``."""
    spec = _object(body, "launch")
    kept = {key: value for key, value in spec.items() if key not in _NOT_SAVED}
    for key in ("preRunScript", "postRunScript"):
        value = kept.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > SCRIPT_LIMIT):
            raise InvalidField(f"launch.{key}", "must be a script of at most 64 KiB")
    # The scripts are the compute environment's business when a run starts; the rest is
    # what any launch is held to.
    checked = {k: v for k, v in kept.items() if k not in ("preRunScript", "postRunScript")}
    launch.run_request(checked, engine_versions=engine_versions, max_field_bytes=max_field_bytes)
    if kept.get("computeEnvId"):
        _env(session, principal, kept["computeEnvId"], "launch.computeEnvId")
    labels.resolve(session, principal, kept.get("labelIds"), "launch.labelIds")
    return {key: kept[key] for key in SAVED if kept.get(key) not in (None, "", [])}


def _saved(session: Session, pipelines: list[Pipeline]) -> list[Saved]:
    tags = labels.of_pipelines(session, [p.id for p in pipelines])
    found = []
    for pipeline in pipelines:
        ws = session.get(Workspace, pipeline.workspace_id) if pipeline.workspace_id else None
        env_id = (pipeline.launch or {}).get("computeEnvId")
        env = session.get(ComputeEnv, env_id) if env_id else None
        found.append(
            Saved(
                pipeline=pipeline,
                user=session.get(User, pipeline.owner_id),
                workspace=ws,
                org=session.get(Organization, ws.org_id) if ws else None,
                labels=tags[pipeline.id],
                compute_env=env if env is not None and not env.deleted else None,
            )
        )
    return found


def _taken(session: Session, principal: Principal, name: str, but: int | None = None) -> bool:
    query = labels.in_scope(select(Pipeline.id), principal, Pipeline).where(
        func.lower(Pipeline.name) == name.lower()
    )
    if but is not None:
        query = query.where(Pipeline.id != but)
    return session.execute(query.limit(1)).first() is not None


def create(
    session: Session,
    principal: Principal,
    body: Mapping[str, Any],
    *,
    engine_versions: list[str],
    max_field_bytes: int,
) -> Saved:
    labels.person(principal)
    body = _object(body, "body")
    name = _name(body.get("name"), "name")
    saved_launch = check_launch(
        session,
        principal,
        body.get("launch"),
        engine_versions=engine_versions,
        max_field_bytes=max_field_bytes,
    )
    tags = labels.resolve(session, principal, body.get("labelIds"), "labelIds")
    if _taken(session, principal, name):
        raise Conflict(f"name: a pipeline named {name!r} already exists in this workspace")
    pipeline = Pipeline(
        workspace_id=principal.workspace_id,
        owner_id=principal.user_id,
        name=name,
        description=_optional_text(body, "description", 1000),
        icon=_optional_text(body, "icon", 255),
        launch_id=random_id(LAUNCH_ID_LENGTH),
        launch=saved_launch,
    )
    session.add(pipeline)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"name: a pipeline named {name!r} already exists") from None
    labels.set_pipeline_labels(session, [pipeline.id], tags)  # commits
    return _saved(session, [pipeline])[0]


def _pipeline(session: Session, principal: Principal, pipeline_id: int) -> Pipeline:
    found = session.execute(
        labels.in_scope(select(Pipeline), principal, Pipeline).where(Pipeline.id == pipeline_id)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"pipelineId: no pipeline {pipeline_id} in this workspace")
    return found


def get(session: Session, principal: Principal, pipeline_id: int) -> Saved:
    return _saved(session, [_pipeline(session, principal, pipeline_id)])[0]


def _attributes(attributes: list[str] | None) -> set[str]:
    wanted: set[str] = set()
    for item in attributes or []:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            if part not in ATTRIBUTES:
                raise InvalidField("attributes", f"must be some of {', '.join(ATTRIBUTES)}")
            wanted.add(part)
    return wanted


check_attributes = _attributes


def _search(query, text: str):
    """Seqera's pipeline search: a quoted name is that exact name (as ``tw`` sends a
    name it resolves); otherwise a part of the name, description or repository, and
    ``label:`` filters."""
    text = text.strip()
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        exact = text[1:-1].replace('\\"', '"')
        return query.where(func.lower(Pipeline.name) == exact.lower())
    for value in re.findall(r"label:(\S+)", text):
        wanted = [part for part in value.split(",") if part]
        tagged = select(PipelineLabel.pipeline_id).join(Label, Label.id == PipelineLabel.label_id)
        conditions = []
        for part in wanted:
            name, _, label_value = part.partition("=")
            condition = Label.name == name
            if label_value:
                condition = condition & (Label.value == label_value)
            conditions.append(condition)
        query = query.where(Pipeline.id.in_(tagged.where(or_(*conditions))))
    rest = re.sub(r"label:\S+", " ", text).strip()
    if rest:
        pattern = labels._like(rest)
        query = query.where(
            or_(
                func.lower(Pipeline.name).like(pattern, escape="\\"),
                func.lower(func.coalesce(Pipeline.description, "")).like(pattern, escape="\\"),
            )
        )
    return query


def list_pipelines(
    session: Session,
    principal: Principal,
    *,
    max_: int | None = None,
    offset: int | None = None,
    search: str | None = None,
    visibility: str | None = None,
    sort_by: str | None = None,
    sort_dir: str | None = None,
) -> tuple[list[Saved], int]:
    labels.person(principal)
    size, start = labels.page_bounds(max_, offset)
    seen = (visibility or "private").lower()
    if seen not in VISIBILITIES:
        raise InvalidField("visibility", f"must be one of {', '.join(VISIBILITIES)}")
    if sort_by is not None and sort_by not in SORT_BY:
        raise InvalidField("sortBy", f"must be one of {', '.join(SORT_BY)}")
    if sort_dir is not None and sort_dir not in ("ASCENDING", "DESCENDING"):
        raise InvalidField("sortDir", "must be ASCENDING or DESCENDING")
    if seen == "shared":
        return [], 0
    query = labels.in_scope(select(Pipeline), principal, Pipeline)
    if search:
        query = _search(query, search)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    column = SORT_BY[sort_by or "NAME"]
    descending = sort_dir == "DESCENDING" or (
        sort_dir is None and sort_by in ("CREATED", "MODIFIED")
    )
    order = column.desc() if descending else column.asc()
    found = session.execute(query.order_by(order, Pipeline.id).limit(size).offset(start))
    return _saved(session, list(found.scalars())), total


def update(
    session: Session,
    principal: Principal,
    pipeline_id: int,
    body: Mapping[str, Any],
    *,
    engine_versions: list[str],
    max_field_bytes: int,
) -> Saved:
    """Seqera's update: a ``name``, ``description`` or ``icon`` given replaces that one,
    a ``launch`` given replaces the saved launch, ``labelIds`` given replace its labels."""
    pipeline = _pipeline(session, principal, pipeline_id)
    body = _object(body, "body")
    if body.get("launch") is not None:
        pipeline.launch = check_launch(
            session,
            principal,
            body["launch"],
            engine_versions=engine_versions,
            max_field_bytes=max_field_bytes,
        )
    if body.get("name") is not None:
        name = _name(body["name"], "name")
        if _taken(session, principal, name, but=pipeline.id):
            raise Conflict(f"name: a pipeline named {name!r} already exists in this workspace")
        pipeline.name = name
    for key in ("description", "icon"):
        if key in body:
            setattr(pipeline, key, _optional_text(body, key, 1000 if key == "description" else 255))
    tags = None
    if body.get("labelIds") is not None:
        tags = labels.resolve(session, principal, body["labelIds"], "labelIds")
    pipeline.updated_at = utcnow()
    session.commit()
    if tags is not None:
        labels.set_pipeline_labels(session, [pipeline.id], tags)
    return _saved(session, [pipeline])[0]


def check_name(session: Session, principal: Principal, name: str | None) -> None:
    """Whether ``name`` may name a new pipeline of the workspace: a 400 naming ``name``
    when it breaks the rule, a 409 when it is taken."""
    labels.person(principal)
    name = _name(name, "name")
    if _taken(session, principal, name):
        raise Conflict(f"name: a pipeline named {name!r} already exists in this workspace")


def update_version(
    session: Session,
    principal: Principal,
    pipeline_id: int,
    version: str,
    body: Mapping[str, Any],
    **limits: Any,
) -> Saved:
    """A pipeline has one version: updating it updates the pipeline in place."""
    saved_launch(session, principal, pipeline_id, version or "-")
    return update(session, principal, pipeline_id, body, **limits)


def delete(session: Session, principal: Principal, pipeline_id: int) -> None:
    session.delete(_pipeline(session, principal, pipeline_id))
    session.commit()


def version_id(pipeline: Pipeline) -> str:
    """The id of a pipeline's one version (versions are not kept apart here): its
    saved launch's id."""
    return pipeline.launch_id


def saved_launch(
    session: Session, principal: Principal, pipeline_id: int, version: str | None = None
) -> Saved:
    """The pipeline whose launch ``GET /pipelines/{id}/launch`` shows."""
    saved = get(session, principal, pipeline_id)
    if version not in (None, "", version_id(saved.pipeline)):
        raise NotFound(f"versionId: pipeline {pipeline_id} has no version {version!r}")
    return saved


@dataclass(frozen=True)
class RepositoryInfo:
    project_name: str
    simple_name: str
    repository_url: str
    clone_url: str
    provider: str
    revision: str | None
    main_script: str | None


_PROVIDERS = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "bitbucket.org": "bitbucket",
    "gitea.com": "gitea",
}


def repository_info(
    principal: Principal,
    name: str | None,
    revision: str | None = None,
    main_script: str | None = None,
) -> RepositoryInfo:
    """What ``GET /pipelines/info`` can tell without reaching the git host: the names
    and URLs a pipeline's name or URL stands for. Revisions, profiles and the manifest
    are in the repository, which this service does not read here."""
    labels.person(principal)
    if not name:
        raise InvalidField("name", "is required: a pipeline name (owner/repo) or https git URL")
    launch.check_pipeline("name", name)
    if revision:
        launch.check_launch_option("revision", revision, "revision")
    if main_script:
        launch.check_launch_option("main_script", main_script, "mainScript")
    if launch.is_pipeline_name(name):
        host, project = "github.com", name
        url = f"https://github.com/{name}"
    else:
        parts = urlsplit(name)
        host = parts.hostname or ""
        project = parts.path.strip("/").removesuffix(".git")
        url = f"https://{parts.netloc}/{project}"
    return RepositoryInfo(
        project_name=project,
        simple_name=project.rsplit("/", 1)[-1],
        repository_url=url,
        clone_url=f"{url}.git",
        provider=_PROVIDERS.get(host, "git"),
        revision=revision or None,
        main_script=main_script or None,
    )
