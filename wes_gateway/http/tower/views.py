"""Tower API response bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from wes_gateway.domain import compute_envs, run_stats, task_loads
from wes_gateway.domain.models import ApiToken, ComputeEnv, Run, Task, TaskLoad
from wes_gateway.domain.states import TOWER_STATUS, State, is_terminal
from wes_gateway.domain.tokens import token_name


def watch_url(base_url: str, run_id: str) -> str:
    return f"{base_url}/api/workflow/{run_id}"


def trace_created(run_id: str, base_url: str) -> dict[str, Any]:
    return {"workflowId": run_id, "watchUrl": watch_url(base_url, run_id)}


def trace_begun(run_id: str, base_url: str) -> dict[str, Any]:
    return {"status": "OK", "workflowId": run_id, "watchUrl": watch_url(base_url, run_id)}


def trace_ok(run_id: str) -> dict[str, Any]:
    return {"status": "OK", "workflowId": run_id}


def heartbeat_ok() -> dict[str, Any]:
    return {"message": "OK"}


def tower_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# The keys of Tower's workflow and task records. Seqera's schema types each as a value
# (none is nullable), so a key with no value is left out, as Seqera leaves it: a client
# deserialising into Seqera's types reads an absent key as unset.
WORKFLOW_KEYS = (
    "launchId",
    "scriptId",
    "scriptName",
    "scriptFile",
    "configFiles",
    "manifest",
    "nextflow",
    "container",
    "containerEngine",
    "homeDir",
    "projectDir",
    "resume",
    "peakLoadCpus",
    "peakLoadTasks",
    "peakLoadMemory",
)
TASK_KEYS = (
    "hash",
    "tag",
    "module",
    "container",
    "attempt",
    "script",
    "scratch",
    "workdir",
    "queue",
    "cpus",
    "memory",
    "disk",
    "time",
    "env",
    "errorAction",
    "exit",
    "duration",
    "realtime",
    "pcpu",
    "pmem",
    "rss",
    "vmem",
    "peakRss",
    "peakVmem",
    "rchar",
    "wchar",
    "syscr",
    "syscw",
    "readBytes",
    "writeBytes",
    "volCtxt",
    "invCtxt",
    "nativeId",
    "executor",
    "machineType",
    "cloudZone",
    "priceModel",
    "cost",
)


def workflow(run: Run, counts: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A run as Tower's workflow record: what Nextflow reported, under the gateway's
    own facts (id, status, times, owner), and the stats Tower derives: Nextflow's own
    once it sent them, else made of ``counts`` (``run_stats.COUNTS``) when given.
    A launched run's ``launchId`` is its own id (``GET /launch/{launchId}``)."""
    reported = {**dict.fromkeys(WORKFLOW_KEYS), **(run.workflow or {})}
    duration = None
    if run.start_time and run.end_time:
        duration = int((run.end_time - run.start_time).total_seconds() * 1000)
    record = {
        **reported,
        "id": run.id,
        "ownerId": run.owner_id,
        "submit": tower_time(run.created_at),
        "start": tower_time(run.start_time),
        "complete": tower_time(run.end_time),
        "dateCreated": tower_time(run.created_at),
        "lastUpdated": tower_time(run.updated_at),
        "runName": run.run_name,
        "sessionId": run.session_id,
        "projectName": run.project_name or run.pipeline,
        "repository": run.repository,
        "commitId": run.commit_id,
        "revision": run.revision,
        "profile": run.profile or reported.get("profile"),
        "commandLine": run.command_line,
        "params": run.params,
        "configText": run.config_text,
        "workDir": run.work_dir,
        "launchDir": run.launch_dir,
        # Tower's meaning: the platform user who launched (or reported) the run, not the
        # operating-system user Nextflow ran as.
        "userName": run.user_name or reported.get("userName"),
        "status": TOWER_STATUS[run.state].value,
        "exitStatus": run.exit_status,
        "errorMessage": run.error_message,
        "errorReport": run.error_report,
        "stats": (
            run_stats.stats(run.stats, counts or {}) if run.stats or counts is not None else None
        ),
        "manifest": run_stats.manifest(reported.get("manifest")),
        "launchId": run.id if run.source != "trace" else None,
        "duration": duration,
        "success": run.state is State.COMPLETE if is_terminal(run.state) else None,
    }
    return _present(record)


_COUNTERS = (
    "pending",
    "submitted",
    "running",
    "succeeded",
    "failed",
    "cached",
    "aborted",
    "ignored",
    "retries",
)
# The counters of tasks still to end: on a run that has ended, they ended too (aborted).
_UNFINISHED_COUNTERS = ("pending", "submitted", "running")


def _number(value: Any) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _load(process: str | None, kept: TaskLoad | None) -> dict[str, Any]:
    """Tower's WorkflowLoad / ProcessLoad from the kept counters (``task_loads``): tasks
    by status, and for finished tasks the sums of CPU time, CPU load, memory and I/O."""
    row = kept or TaskLoad(**dict.fromkeys(task_loads.SUMMED, 0))
    load: dict[str, Any] = dict.fromkeys(_COUNTERS, 0)
    for counter in task_loads.STATUS_COUNTER.values():
        load[counter] = getattr(row, counter) or 0
    cpu_time = row.cpu_time or 0
    cpu_load = (row.cpu_load_milli or 0) / 1000
    memory_rss, memory_req = row.memory_rss or 0, row.memory_req or 0
    load.update(
        cpus=row.cpus or 0,
        cpuTime=cpu_time,
        cpuLoad=int(cpu_load),
        memoryRss=memory_rss,
        memoryReq=memory_req,
        readBytes=row.read_bytes or 0,
        writeBytes=row.write_bytes or 0,
        volCtxSwitch=row.vol_ctx_switch or 0,
        invCtxSwitch=row.inv_ctx_switch or 0,
        loadTasks=row.running or 0,
        loadCpus=row.load_cpus or 0,
        loadMemory=row.load_memory or 0,
        peakTasks=row.peak_tasks or 0,
        peakCpus=row.peak_cpus or 0,
        peakMemory=row.peak_memory or 0,
    )
    load["cpuEfficiency"] = round(100 * cpu_load / cpu_time, 6) if cpu_time else 0.0
    load["memoryEfficiency"] = round(100 * memory_rss / memory_req, 6) if memory_req else 0.0
    if process is not None:
        load["process"] = process
    return load


def _stamped(load: dict[str, Any], run: Run) -> dict[str, Any]:
    return {
        **load,
        "dateCreated": tower_time(run.created_at),
        "lastUpdated": tower_time(run.updated_at),
    }


def progress(run: Run, loads: list[TaskLoad]) -> dict[str, Any]:
    """Tower's ProgressData: run-wide and per-process loads from the run's kept counters
    (``task_loads.read``); while no task was reported yet, the counters Nextflow last sent."""
    whole = next((row for row in loads if row.process == task_loads.WHOLE_RUN), None)
    workflow_load = _load(None, whole)
    workflow_load["executors"] = sorted(whole.executors or []) if whole else []
    reported = run.progress or {}
    if whole is None or not whole.tasks:
        for counter in _COUNTERS:
            workflow_load[counter] = int(_number(reported.get(counter)))
        if is_terminal(run.state):  # as its task records would be (transitions.transition)
            for counter in _UNFINISHED_COUNTERS:
                workflow_load["aborted"] += workflow_load[counter]
                workflow_load[counter] = 0
    by_process = sorted(
        (row for row in loads if row.process != task_loads.WHOLE_RUN and row.tasks),
        key=lambda row: row.process,
    )
    processes = [_stamped(_load(row.process, row), run) for row in by_process]
    workflow_load = _stamped(workflow_load, run)
    return {
        "workflowProgress": workflow_load,
        "processesProgress": processes,
        "totalProcesses": len(processes),
    }


def workflow_list(
    runs: list[Run],
    *,
    has_more: bool,
    total: int | None,
    labels: dict[str, list] | None = None,
    next_cursor: str | None = None,
) -> dict[str, Any]:
    """Seqera's ListWorkflowsResponse; ``totalSize`` only when it was counted, ``labels``
    of each run when they were asked for; ``nextCursor`` (ours) where the next page
    starts."""
    return _present(
        {
            "workflows": [
                _present(
                    {
                        "workflow": workflow(run),
                        "labels": labels.get(run.id, []) if labels is not None else None,
                        "starred": False,
                        "wesState": run.state.value,
                    }
                )
                for run in runs
            ],
            "totalSize": total,
            "hasMore": has_more,
            "nextCursor": next_cursor,
        }
    )


def task(record: Task) -> dict[str, Any]:
    data = {**dict.fromkeys(TASK_KEYS), **(record.data or {})}
    return _present(
        {
            **data,
            "id": record.id,
            "taskId": record.task_id,
            "status": record.status or "NEW",
            "name": record.name,
            "process": record.process,
            "exitStatus": record.exit_status,
            "submit": tower_time(record.submit),
            "start": tower_time(record.start),
            "complete": tower_time(record.complete),
            "dateCreated": tower_time(record.submit or record.updated_at),
            "lastUpdated": tower_time(record.updated_at),
        }
    )


def _platform(run: Run) -> dict[str, str] | None:
    """Where a launched run runs (Tower's ``platform``); None for a monitored run."""
    if run.source == "trace":
        return None
    platform = run.compute_env.platform if run.compute_env else compute_envs.LOCAL
    return {"id": platform, "name": compute_envs.PLATFORM_NAMES[platform]}


def describe(run: Run, loads: list[TaskLoad], labels: list | None = None) -> dict[str, Any]:
    """Seqera's DescribeWorkflowResponse; a monitored run has no ``platform``. The stats
    are Nextflow's once it sent them; until then, the run's kept counts (``loads``)."""
    job = (
        _present(
            {
                "id": run.backend_handle,
                "status": TOWER_STATUS[run.state].value,
                "exitCode": run.exit_status,
                "message": run.error_message,
            }
        )
        if run.backend_handle
        else None
    )
    return _present(
        {
            "workflow": workflow(run, task_loads.stats_counts(loads)),
            "progress": progress(run, loads),
            "platform": _platform(run),
            "jobInfo": job,
            "labels": labels,
        }
    )


def log_page(
    page, *, pending: bool, downloads: list[dict[str, str]], message: str | None = None
) -> dict[str, Any]:
    return {
        "log": _present(
            {
                "entries": page.entries,
                "rewindToken": page.rewind_token,
                "forwardToken": page.forward_token,
                "pending": pending,
                "truncated": page.truncated,
                "message": message,
                "downloads": downloads,
            }
        )
    }


def metrics(run: Run, tasks: list) -> dict[str, Any]:
    """Tower's GetWorkflowMetricsResponse: Nextflow's per-process summaries, numbered,
    with the keys Tower adds (``warnings``) present; until Nextflow sent them, the same
    box stats computed from the run's task records. A series with no data is left out
    (Seqera's schema has no null series)."""
    sent = [entry for entry in run.metrics or [] if isinstance(entry, dict)]
    entries = []
    for number, entry in enumerate(sent or run_stats.metrics(tasks), start=1):
        series = {
            key: {"warnings": [], **_present(value)} if isinstance(value, dict) else value
            for key, value in entry.items()
            if value is not None
        }
        entries.append({"id": number, **series})
    return {"metrics": entries}


def _work_dir(env: ComputeEnv, local_work_dir: str | None) -> str | None:
    """An environment's work dir; the local one's is the folder its runs get their own
    work folders in (clients such as ``nextflow launch`` send it back with the launch)."""
    if env.platform == compute_envs.LOCAL:
        return local_work_dir
    return (env.config or {}).get("workDir")


def compute_env(
    env: ComputeEnv,
    *,
    admin: bool,
    primary_id: str | None,
    local_work_dir: str | None = None,
) -> dict[str, Any]:
    """Seqera's ComputeEnv shape; the config with defaults shown, secrets masked, and the
    execution settings masked unless the caller is an ``admin``; ``primary_id`` as for
    ``compute_env_entry``."""
    config = compute_envs.shown(env.platform, env.config or {}, admin=admin)
    if env.platform == compute_envs.LOCAL and local_work_dir:
        config["workDir"] = local_work_dir
    body = {
        "id": env.id,
        "name": env.name,
        "description": env.description,
        "platform": env.platform,
        "config": config,
        "credentialsId": env.credentials_id,
        "workspaceId": env.workspace_id,
        "status": env.status,
        "message": env.message,
        "primary": env.id == primary_id,
        "deleted": bool(env.deleted),
        "dateCreated": tower_time(env.created_at),
        "lastUpdated": tower_time(env.updated_at),
        "lastUsed": tower_time(env.last_used_at),
    }
    return _present(body)


def compute_env_entry(
    env: ComputeEnv, primary_id: str | None, local_work_dir: str | None = None
) -> dict[str, Any]:
    """``primary_id``: the primary where the caller acts (``compute_envs.primary_of``)."""
    config = env.config or {}
    return _present(
        {
            "id": env.id,
            "name": env.name,
            "description": env.description,
            "platform": env.platform,
            "status": env.status,
            "message": env.message,
            "lastUsed": tower_time(env.last_used_at),
            "primary": env.id == primary_id,
            "visibility": "SHARED",
            "workDir": _work_dir(env, local_work_dir),
            "region": config.get("region") or config.get("location"),
            "credentialsId": env.credentials_id,
        }
    )


def access_token(row: ApiToken) -> dict[str, Any]:
    """A token as Seqera's AccessToken (never its secret; no basicAuth, and no lastUsed
    before its first use: Seqera's schema types both as strings)."""
    body: dict[str, Any] = {
        "id": row.number,
        "name": token_name(row),
        "dateCreated": tower_time(row.created_at),
        "scope": row.scope,
    }
    if row.last_used_at is not None:
        body["lastUsed"] = tower_time(row.last_used_at)
    if row.workspace_id is not None:
        body["workspaceId"] = row.workspace_id
    if row.expires_at is not None:
        body["expiresAt"] = tower_time(row.expires_at)
    return body


def user_info(user_id: int, user_name: str, admin: bool) -> dict[str, Any]:
    """Seqera's DescribeUserResponse: no ``defaultWorkspaceId`` (the default is the
    personal workspace, which has no id), and no fields without a value."""
    return {
        "user": {"id": user_id, "userName": user_name, "admin": admin},
        "needConsent": False,
    }


def launch_record(
    run: Run, env: ComputeEnv, *, admin: bool, local_work_dir: str | None = None
) -> dict[str, Any]:
    """Tower's WorkflowLaunchResponse for a run: every launch field as it was sent (or as
    a WES request carried it), enough to relaunch or resume it, with ``env`` the compute
    environment it ran on (the built-in local one counts). Its execution settings show to
    an ``admin`` only. A local run's ``workDir`` is the local environment's (a relaunch
    gets a folder of its own), its ``resumeDir`` the session's work dir."""
    options = (run.request or {}).get("workflow_engine_parameters", {})
    resume = options.get("resume") not in (None, "", "false")
    profile = options.get("profile") or run.profile
    local = env.platform == compute_envs.LOCAL

    def integer(name: str) -> int | None:
        return int(options[name]) if options.get(name) else None

    secrets = {
        field: options[option].split(",")
        for field, option in (
            ("userSecrets", "user_secrets"),
            ("workspaceSecrets", "workspace_secrets"),
        )
        if options.get(option)
    }
    record = {
        "id": run.id,
        "computeEnv": compute_env(
            env,
            admin=admin,
            primary_id=env.id if env.primary else None,
            local_work_dir=local_work_dir,
        ),
        "pipeline": run.pipeline,
        "revision": options.get("revision") or run.revision,
        "commitId": run.commit_id,
        "workDir": local_work_dir if local and local_work_dir else run.work_dir,
        "sessionId": run.session_id,
        "configProfiles": profile.split(",") if profile else [],
        "configText": options.get("config") or None,
        "paramsText": json.dumps(run.params or {}),
        # A TRS workflow's launch is what it resolved to (pipeline, revision and script),
        # so a relaunch runs the same code.
        "mainScript": options.get("main_script") or (run.trs or {}).get("main_script") or None,
        "entryName": options.get("entry") or None,
        "resume": resume,
        "pullLatest": options.get("latest") == "true",
        "stubRun": options.get("stub_run") == "true",
        "headJobCpus": integer("head_job_cpus"),
        "headJobMemoryMb": integer("head_job_memory_mb"),
        "preRunScript": options.get("pre_run_script") or None,
        "postRunScript": options.get("post_run_script") or None,
        "resumeDir": run.work_dir,
        "resumeCommitId": run.commit_id,
        "runName": run.run_name,
        "dateCreated": tower_time(run.created_at),
        **secrets,  # the names of the secrets it named (a relaunch names them again)
    }
    return _present(record)


def launch_entity(
    run: Run, env: ComputeEnv, *, admin: bool, local_work_dir: str | None = None
) -> dict[str, Any]:
    """Seqera's LaunchDbDto (``GET /launch/{launchId}``): a launched run's launch, whose
    id is the run's ``launchId``; the same fields as its WorkflowLaunchResponse."""
    record = launch_record(run, env, admin=admin, local_work_dir=local_work_dir)
    for key in ("resumeDir", "resumeCommitId"):
        record.pop(key, None)
    return _present(
        {
            **record,
            "lastUpdated": tower_time(run.created_at),
            "workspaceId": run.workspace_id,
        }
    )


# --- tenancy (Seqera's DTOs; a field with no value is left out, as Seqera's
# non-nullable ones must be) ---------------------------------------------------------

# The Seqera API version this service answers as: the one current tw requires.
API_VERSION = "1.198.0"


def _present(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def service_info(version: str, heartbeat_seconds: int | None = None) -> dict[str, Any]:
    return {
        "serviceInfo": _present(
            {
                "version": version,
                "apiVersion": API_VERSION,
                "commitId": "unknown",
                "authTypes": ["token"],
                "loginPath": "/login",
                "allowInstanceCredentials": True,
                "allowLocalRepos": False,
                "allowNextflowCliLogs": True,
                "userWorkspaceEnabled": True,
                "waveEnabled": False,
                "groundswellEnabled": False,
                "seqeraCloud": False,
                "seqeraComputeEnabled": False,
                "llmEnabled": False,
                "evalWorkspaceIds": [],
                "groundswellAllowedWorkspaces": [],
                "heartbeatInterval": heartbeat_seconds,
            }
        )
    }


def organization(org: Any, member: Any | None) -> dict[str, Any]:
    return _present(
        {
            "orgId": org.id,
            "name": org.name,
            "fullName": org.full_name,
            "description": org.description,
            "location": org.location,
            "website": org.website,
            "memberId": member.id if member is not None else None,
            "memberRole": member.role if member is not None else None,
        }
    )


def member(row: Any, user: Any) -> dict[str, Any]:
    return _present(
        {
            "memberId": row.id,
            "userId": user.id,
            "userName": user.name,
            "email": user.email,
            "role": row.role,
        }
    )


def workspace_entry(ws: Any) -> dict[str, Any]:
    return _present(
        {
            "id": ws.id,
            "name": ws.name,
            "fullName": ws.full_name,
            "description": ws.description,
            "visibility": ws.visibility,
        }
    )


def workspace(ws: Any) -> dict[str, Any]:
    return {
        **workspace_entry(ws),
        "dateCreated": tower_time(ws.created_at),
        "lastUpdated": tower_time(ws.updated_at),
    }


def participant(view: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"participantId": view.participant.id, "wspRole": view.participant.role}
    if view.team is not None:
        body.update(type="TEAM", teamId=view.team.id, teamName=view.team.name)
    else:
        body.update(
            type="COLLABORATOR" if view.member.role == "collaborator" else "MEMBER",
            memberId=view.member.id,
            orgRole=view.member.role,
            userName=view.user.name,
        )
        if view.user.email:
            body["email"] = view.user.email
    return body


def place(entry: Any) -> dict[str, Any]:
    body = {
        "orgId": entry.org.id,
        "orgName": entry.org.name,
        "roles": entry.roles,
    }
    if entry.workspace is not None:
        body.update(
            workspaceId=entry.workspace.id,
            workspaceName=entry.workspace.name,
            workspaceFullName=entry.workspace.full_name,
            visibility=entry.workspace.visibility,
        )
    return body


def team(view: Any) -> dict[str, Any]:
    return _present(
        {
            "teamId": view.team.id,
            "name": view.team.name,
            "description": view.team.description,
            "membersCount": view.members_count,
        }
    )


def team_place(place: Any) -> dict[str, Any]:
    return {
        "orgId": place.workspace.org_id,
        "orgName": place.org_name,
        "workspaceId": place.workspace.id,
        "workspaceName": place.workspace.name,
        "workspaceFullName": place.workspace.full_name,
        "participantId": place.participant.id,
        "participantRole": place.participant.role,
    }
