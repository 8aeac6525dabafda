"""What a cloud head job is given: its command, environment and files, for any cloud.

A head job is one container (the ``nextflow/nextflow`` image by default) that runs
``bash -c LAUNCHER nf-launch <nextflow argv>``. The launcher writes the config and params
files from base64 variables, runs the compute environment's pre-run script, runs Nextflow
with its console copied to ``NXF_OUT_FILE``, forwards a stop request (SIGTERM) to it, runs
the post-run script with ``NXF_EXIT_STATUS`` set, and exits with Nextflow's status.
Nextflow reports to the gateway through ``TOWER_*`` and reads the ``NXF_*`` variables
itself, as in a Tower launch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from wes_gateway import compute_config
from workers.backends.base import BackendStatus, JobReport, RunSnapshot, SubmitError
from workers.command import build_command

LAUNCH_DIR = "/tmp/nf-launch"
# Environment values travel in the cloud API request; keep well under its size limits.
MAX_FILES_BYTES = 20_000

LAUNCHER = r"""
set -u
mkdir -p "$NXF_LAUNCH_DIR" && cd "$NXF_LAUNCH_DIR" || exit 70
decode() { printf %s "$1" | base64 -d > "$2" || exit 70; }
[ -n "${NXF_PARAMS_BASE64:-}" ] && decode "$NXF_PARAMS_BASE64" params.json
[ -n "${NXF_CONFIG_BASE64:-}" ] && decode "$NXF_CONFIG_BASE64" nextflow.config
if [ -n "${NXF_PRERUN_BASE64:-}" ]; then
  decode "$NXF_PRERUN_BASE64" pre-run.sh
  . ./pre-run.sh || exit 71
fi
"$@" > >(tee "$NXF_OUT_FILE") 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' TERM INT
wait $pid
status=$?
while kill -0 $pid 2>/dev/null; do wait $pid; status=$?; done
export NXF_EXIT_STATUS=$status
if [ -n "${NXF_POSTRUN_BASE64:-}" ]; then
  decode "$NXF_POSTRUN_BASE64" post-run.sh
  bash ./post-run.sh || echo "post-run script failed ($?)" >&2
fi
exit $status
"""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def managed_config(platform: str, config: Mapping[str, Any]) -> str:
    """The Nextflow settings the compute environment implies (Tower's managed part)."""
    lines = [f"workDir = {_quote(config['workDir'])}"]
    if platform == compute_config.AWS_BATCH:
        lines += [
            "process.executor = 'awsbatch'",
            f"process.queue = {_quote(config.get('computeQueue') or config['headQueue'])}",
            f"aws.region = {_quote(config['region'])}",
            "aws.batch.logsGroup = "
            + _quote(config.get("logGroup") or compute_config.DEFAULT_AWS_LOG_GROUP),
        ]
        if config.get("computeJobRole"):
            lines.append(f"aws.batch.jobRole = {_quote(config['computeJobRole'])}")
        if config.get("executionRole"):
            lines.append(f"aws.batch.executionRole = {_quote(config['executionRole'])}")
        if config.get("cliPath"):
            lines.append(f"aws.batch.cliPath = {_quote(config['cliPath'])}")
    elif platform == compute_config.GOOGLE_BATCH:
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
    return "\n".join(lines) + "\n"


def check_pipeline(run: RunSnapshot, cloud: str) -> None:
    """A cloud head job clones its pipeline; it cannot see files sent to the gateway."""
    if run.pipeline_is_local:
        raise SubmitError(
            f"a pipeline sent as an attachment cannot run on {cloud}; "
            "give a git repository (owner/repo or an https URL)"
        )


def command(run: RunSnapshot) -> list[str]:
    """The nextflow argv, with file paths as the head job sees them."""
    return build_command(
        run,
        executable="nextflow",
        log_file=f"nf-{run.run_id}.log",
        params_file="params.json" if run.params else None,
        config_file=None,  # ./nextflow.config in the launch dir is read by Nextflow itself
        timeline_file=f"timeline-{run.run_id}.html",
    )


def container_command(argv: list[str]) -> list[str]:
    return ["bash", "-c", LAUNCHER, "nf-launch", *argv]


def environment(platform: str, config: Mapping[str, Any], run: RunSnapshot) -> dict[str, str]:
    """The head job's variables: Tower's, Nextflow's, then the compute environment's own
    head-job variables. Raises SubmitError when the files would not fit."""
    work_dir = config["workDir"]
    # Lowest priority first: the environment's global config, its managed settings, and
    # the run's own config text last, so it wins.
    parts = (config.get("nextflowConfig"), managed_config(platform, config), run.config_text)
    nextflow_config = "\n".join(text for text in parts if text)
    env: dict[str, str] = {
        "NXF_LAUNCH_DIR": LAUNCH_DIR,
        "NXF_WORK": work_dir,
        "NXF_CLOUDCACHE_PATH": f"{work_dir}/cloudcache/.cache",
        "NXF_LOG_FILE": f"nf-{run.run_id}.log",
        "NXF_OUT_FILE": f"nf-{run.run_id}.txt",
        "NXF_TML_FILE": f"timeline-{run.run_id}.html",
        "NXF_IGNORE_RESUME_HISTORY": "true",
        "NXF_ANSI_LOG": "false",
        "NXF_CONFIG_BASE64": _b64(nextflow_config),
    }
    if run.params:
        env["NXF_PARAMS_BASE64"] = _b64(json.dumps(run.params))
    if run.session_id:
        env["NXF_UUID"] = run.session_id
    scripts = (("preRunScript", "NXF_PRERUN_BASE64"), ("postRunScript", "NXF_POSTRUN_BASE64"))
    for key, name in scripts:
        if config.get(key):
            env[name] = _b64(config[key])
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
    if size > MAX_FILES_BYTES:
        raise SubmitError(
            f"the head job's params, config and variables take {size} bytes; "
            f"a cloud head job takes at most {MAX_FILES_BYTES}"
        )
    return env


def failed(exit_code: int | None, reason: str, cloud: str) -> JobReport:
    """A failed head job whose platform gave no cause of its own: a non-zero exit is
    Nextflow's (the workflow failed); without one the head job itself failed."""
    if exit_code not in (None, 0):
        return JobReport(
            BackendStatus.FAILED,
            exit_code=exit_code,
            message=f"nextflow exited with status {exit_code}",
        )
    return JobReport(
        BackendStatus.SYSTEM_FAILED,
        exit_code=exit_code,
        message=f"the head job failed: {reason or cloud + ' gave no reason'}",
    )


def resources(config: Mapping[str, Any]) -> tuple[int, int]:
    """Head job CPUs and memory (MiB)."""
    return (
        int(config.get("headJobCpus") or compute_config.DEFAULT_HEAD_CPUS),
        int(config.get("headJobMemoryMb") or compute_config.DEFAULT_HEAD_MEMORY_MB),
    )


def image(config: Mapping[str, Any]) -> str:
    return config.get("headJobImage") or compute_config.DEFAULT_HEAD_IMAGE
