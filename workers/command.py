"""The ``nextflow run`` command of a head job, built in one place from the run.

An argv list, never a shell string: every value is one argument, so nothing a user sends
can become a second command. The values were validated when the run was accepted (see
``wes_gateway.nextflow``); this module only arranges them.
"""

from __future__ import annotations

from wes_gateway.nextflow import check_launch_option, check_pipeline
from workers.backends.base import RunSnapshot


def build_command(
    run: RunSnapshot,
    *,
    executable: str = "nextflow",
    log_file: str | None = None,
    params_file: str | None = None,
    config_file: str | None = None,
    timeline_file: str | None = None,
) -> list[str]:
    """The argv of ``nextflow run`` for ``run``. File arguments are paths as the head job
    sees them (the backend writes the files); ``None`` leaves that option out."""
    argv = [executable]
    if log_file:
        argv += ["-log", log_file]
    if config_file:
        argv += ["-c", config_file]
    pipeline = run.pipeline if run.pipeline_is_local else check_pipeline("pipeline", run.pipeline)
    argv += ["run", pipeline]
    if run.run_name:
        argv += ["-name", run.run_name]
    if run.revision:
        argv += ["-r", check_launch_option("revision", run.revision, "revision")]
    if run.profile:
        argv += ["-profile", check_launch_option("profile", run.profile, "profile")]
    if params_file:
        argv += ["-params-file", params_file]
    if run.main_script:
        argv += ["-main-script", check_launch_option("main_script", run.main_script, "main_script")]
    if run.entry:
        argv += ["-entry", check_launch_option("entry", run.entry, "entry")]
    if run.resume and run.resume != "false":
        argv += ["-resume"] + ([run.resume] if run.resume != "true" else [])
    if run.latest and not run.pipeline_is_local:
        argv += ["-latest"]
    if run.stub_run:
        argv += ["-stub-run"]
    if run.work_dir:
        argv += ["-w", run.work_dir]
    if timeline_file:
        argv += ["-with-timeline", timeline_file]
    if run.tower_url:
        argv += ["-with-tower", run.tower_url]
    # Plain text in the console file, not terminal redraws.
    argv += ["-ansi-log", "false"]
    return argv
