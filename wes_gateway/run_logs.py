"""A run's log files as the Tower API pages and downloads them.

Downloads are served from an allow-list of names only (Tower's: the console, Nextflow's
log and timeline of a run; a task's ``.command.out|err|log``); a name is looked up,
never joined to a path. A task's folder comes from its trace record, so it is served
only when it lies inside the run's own folder; and no file is served through a symbolic
link that leads out of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wes_gateway import run_files
from wes_gateway.errors import InvalidField, NotFound
from wes_gateway.models import Run, Task

DEFAULT_PAGE_BYTES = 64 * 1024
MAX_PAGE_BYTES = 4 * 1024 * 1024
TASK_FILES = {
    ".command.out": "Task stdout",
    ".command.err": "Task stderr",
    ".command.log": "Task log file",
}


@dataclass(frozen=True)
class LogPage:
    entries: list[str]
    rewind_token: str
    forward_token: str
    truncated: bool


def run_downloads(run_id: str) -> dict[str, str]:
    """Downloadable file name → what it is."""
    return {
        f"nf-{run_id}.txt": "Nextflow console output",
        f"nf-{run_id}.log": "Nextflow log file",
        f"timeline-{run_id}.html": "Nextflow timeline",
    }


def run_file(run_dir: Path, run_id: str, file_name: str) -> Path:
    if file_name == f"nf-{run_id}.txt":
        path = run_files.console_file(run_dir, run_id)
    elif file_name == f"nf-{run_id}.log":
        path = run_files.nextflow_log_file(run_dir, run_id)
    elif file_name == f"timeline-{run_id}.html":
        path = run_files.timeline_file(run_dir, run_id)
    else:
        raise InvalidField(
            "fileName", f"not a file of this run; one of {sorted(run_downloads(run_id))}"
        )
    if not run_files.inside(run_dir, path):
        raise NotFound(f"{file_name} is not kept by this service")
    return path


def task_file(run_dir: Path, task: Task, file_name: str) -> Path:
    if file_name not in TASK_FILES:
        raise InvalidField("fileName", f"not a task file; one of {sorted(TASK_FILES)}")
    if not task.workdir:
        raise NotFound(f"task {task.task_id} has no work folder yet")
    folder = Path(task.workdir).resolve()
    if not folder.is_relative_to(run_dir.resolve()) or not run_files.inside(
        run_dir, folder / file_name
    ):
        raise NotFound(f"the files of task {task.task_id} are not kept by this service")
    return folder / file_name


# How much of a failed head job's console error is kept for its run's system logs.
MAX_ERROR_LINES = 40
MAX_ERROR_BYTES = 8 * 1024
_ERROR_TAIL_BYTES = 64 * 1024  # the error is at the end: only this much is read
ERROR_PREFIX = "ERROR ~ "  # how Nextflow's console shows an error (LoggerHelper)
# What Nextflow prints before anything can fail on its own: not an error message.
_LAUNCH_HEADER = ("N E X T F L O W", "Launching `")


def console_error(run_dir: Path, run_id: str) -> str | None:
    """The error a head job's console ends with, bounded, or None if it shows none.

    Nextflow prints an error as a block that starts with ``ERROR ~ `` (and runs to the
    end of the console: the causes, the command, "-- Check ... for details"); the last
    such block is taken. An aborted operation (``AbortOperationException``, e.g. before
    25.04 "Unable to connect to Seqera Platform API: ...") is printed without that
    prefix, alone, as the console's last paragraph; that is taken when no block is
    found, unless it is Nextflow's own launch header. Only the console's tail is read.
    """
    path = run_files.console_file(run_dir, run_id)
    if not run_files.inside(run_dir, path):
        return None
    try:
        with open(path, "rb") as stream:
            size = stream.seek(0, 2)
            stream.seek(max(0, size - _ERROR_TAIL_BYTES))
            tail = stream.read()
    except FileNotFoundError:
        return None
    lines = tail.decode("utf-8", errors="replace").splitlines()
    if size > _ERROR_TAIL_BYTES:
        lines = lines[1:]  # the first line read may be the end of a longer one
    return _error_block(lines)


def record_console_error(run: Run, run_dir: Path) -> None:
    """Put the error a failed head job's console ends with into the run's system logs
    (WES ``system_logs``, Tower's ``errorMessage`` and ``errorReport``), after what the
    backend said. For a head job that failed before any trace call reached the service
    (Nextflow could not reach it, or failed before it started): nothing else says why."""
    block = console_error(run_dir, run.id)
    if block:
        run.error_message = "\n".join(filter(None, (run.error_message, block)))
        run.error_report = block


def _error_block(lines: list[str]) -> str | None:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    starts = [number for number, line in enumerate(lines) if line.startswith(ERROR_PREFIX)]
    if starts:
        block = lines[starts[-1] :]
    else:
        blanks = [number for number, line in enumerate(lines) if not line.strip()]
        block = lines[blanks[-1] + 1 :] if blanks else lines
        if not block or block[0].startswith(_LAUNCH_HEADER):
            return None
    kept: list[str] = []
    room = MAX_ERROR_BYTES
    for line in block[:MAX_ERROR_LINES]:
        encoded = line.encode()
        if len(encoded) + 1 > room:
            if not kept:  # one huge line: its start
                kept.append(encoded[: room - 1].decode(errors="ignore"))
            break
        kept.append(line)
        room -= len(encoded) + 1
    return "\n".join(kept) or None


def _offset(token: str | None) -> int:
    if not token:
        return 0
    kind, _, number = token.partition("/")
    if kind not in ("f", "b") or not number.isdigit():
        raise InvalidField("next", "not a log token from a previous page")
    return int(number)


def read_page(path: Path, token: str | None, max_length: int | None) -> LogPage:
    """Whole lines from the token's offset, at most ``max_length`` bytes of them."""
    start = _offset(token)
    limit = min(max_length or DEFAULT_PAGE_BYTES, MAX_PAGE_BYTES)
    if limit < 1:
        raise InvalidField("maxLength", "must be at least 1")
    try:
        with open(path, "rb") as stream:
            stream.seek(start)
            data = stream.read(limit + 1)
    except FileNotFoundError:
        data = b""
    truncated = len(data) > limit
    data = data[:limit]
    complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else (data if truncated else b"")
    lines = complete.decode("utf-8", errors="replace").splitlines()
    return LogPage(
        entries=lines,
        rewind_token=f"b/{start}",
        forward_token=f"f/{start + len(complete)}",
        truncated=truncated,
    )
