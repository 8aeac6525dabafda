"""Where a run's files live in its folder under the data directory.

``<run>/launch/`` is the head job's launch directory: attachments are staged there and
Nextflow runs there (its ``work/`` and ``.nextflow/`` appear inside). The files the gateway
and the head job wrapper write sit beside it, so no attachment name can collide with them;
the console and log files carry Tower's names, which the download endpoint serves.
"""

from __future__ import annotations

from pathlib import Path

LAUNCH = "launch"


def launch_dir(run_dir: Path) -> Path:
    return run_dir / LAUNCH


def console_file(run_dir: Path, run_id: str) -> Path:
    """The head job's console output (stdout and stderr, as a terminal shows them)."""
    return run_dir / f"nf-{run_id}.txt"


def nextflow_log_file(run_dir: Path, run_id: str) -> Path:
    """Nextflow's own log (``-log``), what ``.nextflow.log`` holds in a plain run."""
    return run_dir / f"nf-{run_id}.log"


def timeline_file(run_dir: Path, run_id: str) -> Path:
    """Nextflow's execution timeline (``-with-timeline``), written when the run ends."""
    return run_dir / f"timeline-{run_id}.html"


def console_cursor_file(run_dir: Path) -> Path:
    """Where a worker copying a cloud head job's console keeps its place (and its lock)."""
    return run_dir / ".console-cursor"


def console_request_file(run_dir: Path) -> Path:
    """Touched when someone reads a cloud head job's console: its age paces the copies."""
    return run_dir / ".console-requested"


def params_file(run_dir: Path) -> Path:
    return run_dir / "params.json"


def config_file(run_dir: Path) -> Path:
    return run_dir / "nextflow.config"


def exit_file(run_dir: Path) -> Path:
    """Written by the head job wrapper when ``nextflow`` returns: its exit code."""
    return run_dir / "exitcode"


def pid_file(run_dir: Path) -> Path:
    """Written by the head job wrapper as it starts: its process id."""
    return run_dir / "head.pid"


def inside(run_dir: Path, path: Path) -> bool:
    """Whether ``path`` lies in the run's folder once symbolic links are followed: a
    pipeline may leave a link where a log file should be, and none is served."""
    return path.resolve().is_relative_to(run_dir.resolve())


# What the WES run log links to: the console as stdout, Nextflow's log as stderr.
def log_path(run_dir: Path, run_id: str, stream: str) -> Path:
    if stream == "stdout":
        return console_file(run_dir, run_id)
    if stream == "stderr":
        return nextflow_log_file(run_dir, run_id)
    raise ValueError(stream)
