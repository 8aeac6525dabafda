"""A run's files: where they live in its folder under the data directory, how the Tower
API pages and downloads its logs, and how ``workflow_attachment`` uploads are staged.

``<run>/launch/`` is the head job's launch directory: attachments are staged there and
Nextflow runs there (its ``work/`` and ``.nextflow/`` appear inside). The files the gateway
and the head job wrapper write sit beside it, so no attachment name can collide with them;
the console and log files carry Tower's names, which the download endpoint serves.

Downloads are served from an allow-list of names only (Tower's: the console, Nextflow's
log and timeline of a run; a task's ``.command.out|err|log``); a name is looked up,
never joined to a path. A task's folder comes from its trace record, so it is served
only when it lies inside the run's own folder; and no file is served through a symbolic
link that leads out of it.

Attachment names are relative paths chosen by the client, so each one is checked before
anything is written: no absolute paths, no ``..``, no NUL or control characters, no
backslashes, no duplicates. Files are then created without following symlinks, each path
confirmed to stay inside the folder. If any name is refused, nothing is written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from wes_gateway.domain.errors import InvalidField, NotFound
from wes_gateway.domain.models import Run, Task

LAUNCH = "launch"


def launch_dir(run_dir: Path) -> Path:
    return run_dir / LAUNCH


# The names of a run's log files, Tower's: its download endpoint serves them by these
# names, and a cloud head job writes them under the same names.
def console_name(run_id: str) -> str:
    return f"nf-{run_id}.txt"


def nextflow_log_name(run_id: str) -> str:
    return f"nf-{run_id}.log"


def timeline_name(run_id: str) -> str:
    return f"timeline-{run_id}.html"


def console_file(run_dir: Path, run_id: str) -> Path:
    """The head job's console output (stdout and stderr, as a terminal shows them)."""
    return run_dir / console_name(run_id)


def nextflow_log_file(run_dir: Path, run_id: str) -> Path:
    """Nextflow's own log (``-log``), what ``.nextflow.log`` holds in a plain run."""
    return run_dir / nextflow_log_name(run_id)


def timeline_file(run_dir: Path, run_id: str) -> Path:
    """Nextflow's execution timeline (``-with-timeline``), written when the run ends."""
    return run_dir / timeline_name(run_id)


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
        console_name(run_id): "Nextflow console output",
        nextflow_log_name(run_id): "Nextflow log file",
        timeline_name(run_id): "Nextflow timeline",
    }


def run_file(run_dir: Path, run_id: str, file_name: str) -> Path:
    if file_name == console_name(run_id):
        path = console_file(run_dir, run_id)
    elif file_name == nextflow_log_name(run_id):
        path = nextflow_log_file(run_dir, run_id)
    elif file_name == timeline_name(run_id):
        path = timeline_file(run_dir, run_id)
    else:
        raise InvalidField(
            "fileName", f"not a file of this run; one of {sorted(run_downloads(run_id))}"
        )
    if not inside(run_dir, path):
        raise NotFound(f"{file_name} is not kept by this service")
    return path


def task_file(run_dir: Path, task: Task, file_name: str) -> Path:
    if file_name not in TASK_FILES:
        raise InvalidField("fileName", f"not a task file; one of {sorted(TASK_FILES)}")
    if not task.workdir:
        raise NotFound(f"task {task.task_id} has no work folder yet")
    folder = Path(task.workdir).resolve()
    if not folder.is_relative_to(run_dir.resolve()) or not inside(run_dir, folder / file_name):
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
    path = console_file(run_dir, run_id)
    if not inside(run_dir, path):
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


FIELD = "workflow_attachment"
MAX_NAME_LENGTH = 1024
MAX_COMPONENT_LENGTH = 255
_CHUNK = 1024 * 1024


def clean_name(raw: str | None, field: str = FIELD) -> str:
    """The safe relative path for an attachment name (or another relative path a client
    names, as ``field``), or a 400 naming what is wrong."""
    if not raw:
        raise InvalidField(field, "every attachment needs a file name")
    if "\x00" in raw:
        raise InvalidField(field, "file name contains a NUL byte")
    if any(ord(char) < 32 or ord(char) == 127 for char in raw):
        raise InvalidField(field, f"file name {raw!r} contains control characters")
    if "\\" in raw:
        raise InvalidField(field, f"file name {raw!r} contains a backslash")
    if len(raw) > MAX_NAME_LENGTH:
        raise InvalidField(field, "file name too long")
    path = PurePosixPath(raw)
    if path.is_absolute():
        raise InvalidField(field, f"file name {raw!r} is absolute; use a relative path")
    parts = [part for part in path.parts if part not in ("", ".")]
    if any(part == ".." for part in raw.split("/")):
        raise InvalidField(field, f"file name {raw!r} refers to a parent directory")
    if not parts:
        raise InvalidField(field, f"file name {raw!r} names no file")
    if any(len(part) > MAX_COMPONENT_LENGTH for part in parts):
        raise InvalidField(field, "a path component is longer than 255 characters")
    return "/".join(parts)


def check_names(raw_names: Iterable[str | None]) -> list[str]:
    names = [clean_name(raw) for raw in raw_names]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidField(FIELD, f"{name!r} is attached twice")
        seen.add(name)
    prefixes = {str(parent) for name in names for parent in PurePosixPath(name).parents}
    clash = prefixes & seen
    if clash:
        raise InvalidField(FIELD, f"{sorted(clash)[0]!r} is both a file and a folder")
    return names


def stage(root: Path, files: list[tuple[str, BinaryIO]]) -> list[str]:
    """Write ``files`` (already-cleaned names) under ``root``, which must not exist yet.

    Returns the names written. On any failure the folder is removed again.
    """
    root.mkdir(parents=True, exist_ok=False)
    real_root = root.resolve()
    try:
        for name, stream in files:
            _write(real_root, name, stream)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return [name for name, _ in files]


def _write(root: Path, name: str, stream: BinaryIO) -> None:
    parent = root
    *folders, leaf = name.split("/")
    for folder in folders:
        parent = parent / folder
        if parent.is_symlink():
            raise InvalidField(FIELD, f"{name!r} would pass through a symbolic link")
        parent.mkdir(exist_ok=True)
    target = parent / leaf
    if not target.resolve(strict=False).is_relative_to(root):
        raise InvalidField(FIELD, f"{name!r} would be written outside the run folder")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(target, flags, 0o644)
    except FileExistsError:
        raise InvalidField(FIELD, f"{name!r} is attached twice") from None
    with os.fdopen(descriptor, "wb") as out:
        while chunk := stream.read(_CHUNK):
            out.write(chunk)
