"""Where and how an accepted run will run, decided at accept, so what is accepted runs:
its Nextflow session (a new one, the one asked for, or the one it resumes), the folder
whose history and cache a resumed run continues, its work dir, and the launch settings a
platform cannot honour (refused with a 400 naming the field, never dropped).

Nextflow resumes a session only where it finds the session's history
(``.nextflow/history``), its cache (``.nextflow/cache/<session>``) and its work dir. A
local run keeps them in its launch folder, so a resumed local run runs with the
``.nextflow`` and ``work`` of the run that began the session (its ``cache_run_id``). A
cloud head job keeps its cache in the work dir (``NXF_CLOUDCACHE_PATH``), so it resumes
in the session's work dir.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from wes_gateway.domain import compute_envs, head_job_env, tokens
from wes_gateway.domain.errors import BadRequest, InvalidField, NotFound
from wes_gateway.domain.launch import RunRequest
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import ACTIVE

OPTION = "workflow_engine_parameters."
BUCKET_SCHEMES = {compute_envs.AWS_BATCH: "s3://", compute_envs.GOOGLE_BATCH: "gs://"}
# A run-scoped token is at most this long (a 32-character id, a 48-digit secret).
_LONGEST_TOKEN = tokens.format_token("x" * 32, "0" * 48)


@dataclass(frozen=True)
class LaunchPlan:
    session_id: str
    work_dir: str | None
    cache_run_id: str | None  # the run whose folder holds the resumed session


def _resumed(options: Mapping[str, str], field_name: Callable[[str], str]) -> str | None:
    """The session a run resumes: "true" (find it), a session id, or None (no resume)."""
    resume = options.get("resume")
    given = options.get("session_id")
    if resume in (None, "", "false"):
        return None
    if resume != "true" and given and given != resume:
        raise InvalidField(
            field_name(OPTION + "session_id"), "differs from the session resume names"
        )
    return given if resume == "true" and given else resume


def _newest(session: Session, query: Select) -> Run | None:
    return session.execute(
        query.order_by(Run.created_at.desc(), Run.id.desc()).limit(1)
    ).scalar_one_or_none()


def plan(
    session: Session,
    visible_runs: Select,
    request: RunRequest,
    *,
    run_name: str | None,
    compute_env_id: str | None,
    platform: str,
    config: Mapping[str, Any],
    own_work_dir: str,
    local_work_root: str | None = None,
    launch_dir_of: Callable[[str], str],
    field_name: Callable[[str], str],
    pipeline: str | None = None,
) -> LaunchPlan:
    """The run's session, work dir and session folder; ``visible_runs`` selects the runs
    the caller may see (a session is resumed from those only: another user's is not
    found). On the local platform a work dir equal to ``local_work_root`` (the one the
    local compute environment shows, where every run gets a folder of its own) asks for
    nothing: clients send it back as the environment's work dir. ``pipeline``: what the
    run will run, when its workflow_url names it otherwise (a TRS workflow)."""
    options = request.workflow_engine_parameters
    pipeline = pipeline or request.workflow_url
    local = platform == compute_envs.LOCAL
    for name in ("head_job_cpus", "head_job_memory_mb"):
        if local and options.get(name):
            raise InvalidField(
                field_name(OPTION + name),
                "a local head job is a process of the workers' machine; its resources are "
                "not set per run",
            )
    work_dir = options.get("work_dir", "").rstrip("/") or None
    if local and local_work_root and work_dir == local_work_root.rstrip("/"):
        work_dir = None
    scheme = BUCKET_SCHEMES.get(platform, "/")  # a cluster's shared file system: a path
    if work_dir and not local and not work_dir.startswith(scheme):
        raise InvalidField(
            field_name(OPTION + "work_dir"),
            f"must be a {scheme} bucket path on {platform}"
            if scheme != "/"
            else f"must be an absolute path on {platform}",
        )
    wanted = _resumed(options, field_name)
    if wanted is None:
        if work_dir and local:
            raise InvalidField(
                field_name(OPTION + "work_dir"),
                "a local run works in its own folder; only a resumed run takes a work dir, "
                "its session's",
            )
        return LaunchPlan(
            session_id=_new_session(session, options.get("session_id")),
            work_dir=own_work_dir if local else work_dir or config.get("workDir"),
            cache_run_id=None,
        )

    resume_field = field_name(OPTION + "resume")
    if wanted == "true":
        previous = _newest(
            session,
            visible_runs.where(Run.pipeline == pipeline, Run.session_id.is_not(None)),
        )
        if previous is None:
            raise InvalidField(
                resume_field,
                f"no earlier run of {request.workflow_url} to resume; give the session id",
            )
    else:
        previous = _newest(session, visible_runs.where(Run.session_id == wanted))
        if previous is None:
            raise NotFound(f"{resume_field}: no run of yours has session {wanted}")
    root = session.get(Run, previous.cache_run_id or previous.id)
    if root is None or root.deleted_at is not None:
        raise NotFound(f"{resume_field}: the run that began session {wanted} was deleted")
    if root.compute_env_id != compute_env_id:
        raise InvalidField(
            field_name(OPTION + "compute_env_id"),
            f"session {previous.session_id} ran on compute environment "
            f"{root.compute_env_id!r}; resume it there",
        )
    busy = session.execute(
        select(Run.id)
        .where(
            (Run.id == root.id) | (Run.cache_run_id == root.id),
            Run.state.in_(ACTIVE),
            Run.deleted_at.is_(None),
        )
        .limit(1)
    ).scalar_one_or_none()
    if busy is not None:
        raise BadRequest(
            f"{resume_field}: session {previous.session_id} is in use by run {busy}; "
            "Nextflow locks a session while a run uses it"
        )
    if local:
        session_work = launch_dir_of(root.id) + "/work"
        if work_dir and work_dir != session_work:
            raise InvalidField(
                field_name(OPTION + "work_dir"),
                f"a resumed local run works in its session's work dir, {session_work}",
            )
        if run_name is not None:
            used = session.execute(
                select(Run.id).where(
                    (Run.id == root.id) | (Run.cache_run_id == root.id),
                    Run.run_name == run_name,
                )
            ).first()
            if used is not None:
                raise InvalidField(
                    field_name("run_name"),
                    f"`{run_name}` has been already used in session {previous.session_id} "
                    "(Nextflow refuses a run name its history holds)",
                )
        work_dir = session_work
    else:
        work_dir = work_dir or root.work_dir or config.get("workDir")
    return LaunchPlan(session_id=previous.session_id, work_dir=work_dir, cache_run_id=root.id)


SCRIPTS = (("pre_run_script", "preRunScript"), ("post_run_script", "postRunScript"))


def scripts(
    request: RunRequest,
    platform: str,
    config: Mapping[str, Any],
    *,
    local_allowed: bool,
    field_name: Callable[[str], str],
) -> RunRequest:
    """The request with its pre/post-run scripts checked against where it runs: a cloud
    head job runs them; the local platform only where the operator allows it (a 400
    that says so otherwise). A script equal to the compute environment's own, or to its
    mask as a non-administrator reads it, is the environment's: `tw launch` copies those
    into the launch, and they are left to the environment rather than refused."""
    options = dict(request.workflow_engine_parameters)
    for name, key in SCRIPTS:
        value = options.get(name)
        if not value:
            continue
        if value in (config.get(key), compute_envs.MASK):
            del options[name]
        elif platform == compute_envs.LOCAL and not local_allowed:
            raise InvalidField(
                field_name(OPTION + name),
                "scripts around a run are off on the local platform (they would run as the "
                "service's user); the operator turns them on with WES_GATEWAY_LOCAL_SCRIPTS",
            )
    if options == request.workflow_engine_parameters:
        return request
    return replace(request, workflow_engine_parameters=options)


def _new_session(session: Session, asked: str | None) -> str:
    """The session of a run not resumed: the one asked for while no run has it, else a
    new one. A session that ran is taken up again only by resuming it, as `nextflow run`
    begins a new session unless resumed (`tw runs relaunch --no-resume` sends the
    relaunched run's session id with ``resume: false``)."""
    if asked:
        taken = session.execute(select(Run.id).where(Run.session_id == asked).limit(1)).first()
        if taken is None:
            return asked
    return str(uuid.uuid4())


def check_head_job_fits(
    platform: str,
    config: Mapping[str, Any],
    run_id: str,
    request: RunRequest,
    launch: LaunchPlan,
    *,
    tower_url: str | None,
    field_name: Callable[[str], str],
) -> None:
    """Build the cloud head job's variables as the workers will (the same function), and
    refuse the run, naming its larger part, when they would not fit."""
    run = head_job_env.HeadJobRun(
        run_id=run_id,
        params=request.workflow_params,
        config_text=request.option("config"),
        session_id=launch.session_id,
        work_dir=launch.work_dir,
        pre_run_script=request.option("pre_run_script"),
        post_run_script=request.option("post_run_script"),
        tower_url=(tower_url.rstrip("/") + "/api") if tower_url else None,
        tower_token=_LONGEST_TOKEN if tower_url else None,
    )
    try:
        head_job_env.environment(platform, config, run)
    except head_job_env.EnvTooLarge as exc:
        if not exc.parts["params"] and not exc.parts["config"]:
            field = OPTION + "compute_env_id"
        elif exc.parts["params"] >= exc.parts["config"]:
            field = "workflow_params"
        else:
            field = OPTION + "config"
        raise InvalidField(field_name(field), str(exc)) from None
