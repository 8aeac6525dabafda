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

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from wes_gateway.domain import compute_envs, head_job_env, run_files
from wes_gateway.domain.launch import RunSnapshot, build_command
from wes_gateway.domain.states import BackendStatus
from workers.backends.base import JobReport, SubmitError

LAUNCH_DIR = head_job_env.LAUNCH_DIR

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


# How the launcher starts Nextflow: its console copied to NXF_OUT_FILE as well.
_START_COPYING = '"$@" > >(tee "$NXF_OUT_FILE") 2>&1 &'


def launcher(copy_console: bool = True) -> str:
    """The launcher; without ``copy_console``, Nextflow writes to the job's own output
    alone (where that is the console: no tee that a signal to the whole job would stop
    before Nextflow has said why it stops)."""
    return LAUNCHER if copy_console else LAUNCHER.replace(_START_COPYING, '"$@" 2>&1 &')


managed_config = head_job_env.managed_config


def check_pipeline(run: RunSnapshot, cloud: str) -> None:
    """A cloud head job clones its pipeline; it cannot see files sent to the gateway."""
    if run.pipeline_is_local:
        raise SubmitError(
            f"a pipeline sent as an attachment cannot run on {cloud}; "
            "give a git repository (owner/repo or an https URL)"
        )


def run_name(run: RunSnapshot) -> str:
    """The ``-name`` of a cloud head job. It runs without Nextflow's history file
    (NXF_IGNORE_RESUME_HISTORY), where Nextflow generates no name and refuses to run
    without one; ``nf-<run id>`` keeps its run-name rule (a letter first, - between two
    letters or digits)."""
    return run.run_name or f"nf-{run.run_id}"


def command(run: RunSnapshot) -> list[str]:
    """The nextflow argv, with file paths as the head job sees them."""
    return build_command(
        replace(run, run_name=run_name(run)),
        executable="nextflow",
        log_file=run_files.nextflow_log_name(run.run_id),
        params_file="params.json" if run.params else None,
        config_file=None,  # ./nextflow.config in the launch dir is read by Nextflow itself
        timeline_file=run_files.timeline_name(run.run_id),
    )


def container_command(argv: list[str]) -> list[str]:
    return ["bash", "-c", LAUNCHER, "nf-launch", *argv]


def environment(platform: str, config: Mapping[str, Any], run: RunSnapshot) -> dict[str, str]:
    """The head job's variables (built as at accept, by ``head_job_env``). Raises
    SubmitError when they would not fit."""
    try:
        return head_job_env.environment(platform, config, head_job_run(run))
    except head_job_env.EnvTooLarge as exc:
        raise SubmitError(str(exc)) from None


def head_job_run(run: RunSnapshot) -> head_job_env.HeadJobRun:
    return head_job_env.HeadJobRun(
        run_id=run.run_id,
        params=run.params,
        config_text=run.config_text,
        session_id=run.session_id,
        work_dir=run.work_dir,
        pre_run_script=run.pre_run_script,
        post_run_script=run.post_run_script,
        tower_url=run.tower_url,
        tower_token=run.tower_token,
        engine_version=run.engine_version,
    )


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


def resources(config: Mapping[str, Any], run: RunSnapshot | None = None) -> tuple[int, int]:
    """Head job CPUs and memory (MiB): the launch's own, else the compute environment's."""
    cpus = run.head_job_cpus if run else None
    memory = run.head_job_memory_mb if run else None
    return (
        int(cpus or config.get("headJobCpus") or compute_envs.DEFAULT_HEAD_CPUS),
        int(memory or config.get("headJobMemoryMb") or compute_envs.DEFAULT_HEAD_MEMORY_MB),
    )


def image(config: Mapping[str, Any], run: RunSnapshot | None = None) -> str:
    """The compute environment's pinned head image; else the ``nextflow/nextflow`` image of
    the version the run asked for, or the default one."""
    if config.get("headJobImage"):
        return config["headJobImage"]
    if run is not None and run.engine_version:
        return f"{compute_envs.DEFAULT_HEAD_IMAGE.rsplit(':', 1)[0]}:{run.engine_version}"
    return compute_envs.DEFAULT_HEAD_IMAGE
