"""Where a run's files live in its folder under the data directory."""

from __future__ import annotations

from pathlib import Path

ATTACHMENTS = "attachments"
# The head job's console output and error stream, as the backends save them.
STDOUT = "nextflow.stdout"
STDERR = "nextflow.stderr"
LOG_STREAMS = {"stdout": STDOUT, "stderr": STDERR}


def attachments_dir(run_dir: Path) -> Path:
    return run_dir / ATTACHMENTS


def log_path(run_dir: Path, stream: str) -> Path:
    return run_dir / LOG_STREAMS[stream]
