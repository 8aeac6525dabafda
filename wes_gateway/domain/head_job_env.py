"""The environment of a cloud head job, built in one place: the workers build it to
submit the job, and a run is checked against it when accepted, so a run whose params and
config cannot travel to its compute environment is refused up front (a 400 naming the
field), not accepted and then failed at submit.

A cloud head job gets its params and config files as base64 variables (the launcher
writes them out), and the cloud API takes only so many bytes of variables in one request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wes_gateway.domain import compute_envs, run_files

LAUNCH_DIR = "/tmp/nf-launch"
# Environment values travel in the cloud API request; keep well under its size limits.
MAX_ENV_BYTES = 20_000


class EnvTooLarge(ValueError):
    """The head job's variables take more than MAX_ENV_BYTES."""

    def __init__(self, size: int, parts: Mapping[str, int]) -> None:
        self.size = size
        self.parts = dict(parts)  # "params", "config": the bytes each takes in the variables
        super().__init__(
            f"the head job's params, config and variables take {size} bytes; "
            f"a cloud head job takes at most {MAX_ENV_BYTES}"
        )


@dataclass(frozen=True)
class HeadJobRun:
    """What of a run goes into its head job's variables."""

    run_id: str
    params: Mapping[str, Any]
    config_text: str | None = None
    session_id: str | None = None
    work_dir: str | None = None  # the run's own work dir; the compute environment's if None
    pre_run_script: str | None = None  # the launch's own; the compute environment's if None
    post_run_script: str | None = None
    tower_url: str | None = None
    tower_token: str | None = None
    engine_version: str | None = None  # NXF_VER: the Nextflow version the run asked for


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def managed_config(platform: str, config: Mapping[str, Any], work_dir: str | None = None) -> str:
    """The Nextflow settings the compute environment implies (Tower's managed part)."""
    lines = [f"workDir = {_quote(work_dir or config['workDir'])}"]
    if platform == compute_envs.AWS_BATCH:
        lines += [
            "process.executor = 'awsbatch'",
            f"process.queue = {_quote(config.get('computeQueue') or config['headQueue'])}",
            f"aws.region = {_quote(config['region'])}",
            "aws.batch.logsGroup = "
            + _quote(config.get("logGroup") or compute_envs.DEFAULT_AWS_LOG_GROUP),
        ]
        if config.get("computeJobRole"):
            lines.append(f"aws.batch.jobRole = {_quote(config['computeJobRole'])}")
        if config.get("executionRole"):
            lines.append(f"aws.batch.executionRole = {_quote(config['executionRole'])}")
        if config.get("cliPath"):
            lines.append(f"aws.batch.cliPath = {_quote(config['cliPath'])}")
    elif platform == compute_envs.GOOGLE_BATCH:
        lines += [
            "process.executor = 'google-batch'",
            f"google.project = {_quote(config['projectId'])}",
            f"google.location = {_quote(config['location'])}",
        ]
        if config.get("spot"):
            lines.append("google.batch.spot = true")
        for key, option in (
            ("serviceAccount", "serviceAccountEmail"),
            ("network", "network"),
            ("subnetwork", "subnetwork"),
        ):
            if config.get(key):
                lines.append(f"google.batch.{option} = {_quote(config[key])}")
        if config.get("usePrivateAddress"):
            lines.append("google.batch.usePrivateAddress = true")
        if config.get("bootDiskSizeGb"):
            lines.append(f"google.batch.bootDiskSize = '{config['bootDiskSizeGb']} GB'")
    elif platform == compute_envs.SLURM:
        lines.append("process.executor = 'slurm'")
        queue = config.get("computeQueue") or config.get("headQueue")
        if queue:
            lines.append(f"process.queue = {_quote(queue)}")
        if config.get("maxQueueSize"):
            lines.append(f"executor.queueSize = {int(config['maxQueueSize'])}")
        if config.get("propagateHeadJobOptions") and config.get("headJobOptions"):
            lines.append(f"process.clusterOptions = {_quote(config['headJobOptions'])}")
    return "\n".join(lines) + "\n"


def environment(platform: str, config: Mapping[str, Any], run: HeadJobRun) -> dict[str, str]:
    """The head job's variables: Tower's, Nextflow's, then the compute environment's own
    head-job variables. Raises EnvTooLarge when they would not fit."""
    work_dir = run.work_dir or config["workDir"]
    # Lowest priority first: the environment's global config, its managed settings, and
    # the run's own config text last, so it wins.
    parts = (
        config.get("nextflowConfig"),
        managed_config(platform, config, work_dir),
        run.config_text,
    )
    nextflow_config = "\n".join(text for text in parts if text)
    env: dict[str, str] = {
        "NXF_LAUNCH_DIR": LAUNCH_DIR,
        "NXF_WORK": work_dir,
        "NXF_LOG_FILE": run_files.nextflow_log_name(run.run_id),
        "NXF_OUT_FILE": run_files.console_name(run.run_id),
        "NXF_TML_FILE": run_files.timeline_name(run.run_id),
        "NXF_IGNORE_RESUME_HISTORY": "true",
        "NXF_ANSI_LOG": "false",
        "NXF_CONFIG_BASE64": _b64(nextflow_config),
    }
    if platform != compute_envs.SLURM:  # a cluster's work dir is a shared file system
        env["NXF_CLOUDCACHE_PATH"] = f"{work_dir}/cloudcache/.cache"
    if run.params:
        env["NXF_PARAMS_BASE64"] = _b64(json.dumps(run.params))
    if run.session_id:
        env["NXF_UUID"] = run.session_id
    if run.engine_version:
        env["NXF_VER"] = run.engine_version
    scripts = (
        (run.pre_run_script or config.get("preRunScript"), "NXF_PRERUN_BASE64"),
        (run.post_run_script or config.get("postRunScript"), "NXF_POSTRUN_BASE64"),
    )
    for script, name in scripts:
        if script:
            env[name] = _b64(script)
    if run.tower_url and run.tower_token:
        env.update(
            TOWER_API_ENDPOINT=run.tower_url,
            TOWER_ACCESS_TOKEN=run.tower_token,
            TOWER_WORKFLOW_ID=run.run_id,
            TOWER_ALLOW_NEXTFLOW_LOGS="true",
        )
    for item in config.get("environment") or ():
        if item.get("head", True):
            env[item["name"]] = item["value"]
    size = sum(len(key) + len(value) for key, value in env.items())
    if size > MAX_ENV_BYTES:
        run_config = len(_b64(run.config_text)) if run.config_text else 0
        params = len(env.get("NXF_PARAMS_BASE64", ""))
        raise EnvTooLarge(size, {"params": params, "config": run_config})
    return env
