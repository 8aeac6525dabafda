"""What the service knows about Nextflow: the workflow types it accepts, the launch options
a run may carry (shared by WES ``workflow_engine_parameters`` and Tower launches), how each
is validated, and the installed engine's version."""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass

from wes_gateway.errors import InvalidField

ENGINE = "nextflow"
WORKFLOW_TYPE = "NFL"
WORKFLOW_TYPE_ALIASES = {"NFL": "NFL", "NEXTFLOW": "NFL"}
WORKFLOW_TYPE_VERSIONS = ("DSL2",)
FILESYSTEM_PROTOCOLS = ("file", "http", "https", "s3", "gs")

_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_GIT_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9_.~%+-]+)+/?$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./+-]{0,99}$")
# Each value becomes one argv element after its option; none may start with "-", where
# Nextflow's option parser could take it for an option of its own.
_PROFILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*(,[A-Za-z0-9_][A-Za-z0-9_-]*)*$")
_ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_MAIN_SCRIPT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$")
# Nextflow's own run-name rule (CmdRun.RUN_NAME_PATTERN, case-insensitive): a letter first,
# then letters and digits, a - or _ only between two of them, at most 80 characters; and
# not `last`, which names the latest run in Nextflow's history.
RUN_NAME = re.compile(r"^[a-z](?:[a-z\d]|[-_](?=[a-z\d])){0,79}$", re.IGNORECASE)
RESERVED_RUN_NAMES = frozenset({"last"})
# A switch is a boolean: JSON true or false, or the text "true" or "false" (a form part).
_FLAGS = {"true": True, "false": False}
# A Nextflow session id, as `nextflow log` and Tower's sessionId show it.
_SESSION_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


_WORK_DIR = re.compile(r"^(/|s3://|gs://)[A-Za-z0-9_.,+=@~/-]{1,1000}$")
# The bounds a compute environment's headJobCpus and headJobMemoryMb take.
_INTEGER_OPTIONS = {"head_job_cpus": (1, 96), "head_job_memory_mb": (1000, 786_432)}


@dataclass(frozen=True)
class LaunchOption:
    name: str
    type: str
    default: str
    description: str


LAUNCH_OPTIONS: tuple[LaunchOption, ...] = (
    LaunchOption("revision", "string", "", "Git branch, tag or commit (-r)"),
    LaunchOption("profile", "string", "", "Comma-separated config profiles (-profile)"),
    LaunchOption("config", "string", "", "Nextflow config text, passed with -c"),
    LaunchOption("entry", "string", "", "Workflow entry name (-entry)"),
    LaunchOption("main_script", "string", "", "Script to run in the project (-main-script)"),
    LaunchOption("resume", "string", "false", "true, false, or the session id (a UUID) to resume"),
    LaunchOption("latest", "boolean", "false", "Pull the latest revision first (-latest)"),
    LaunchOption("compute_env_id", "string", "", "Compute environment; the primary one if empty"),
    LaunchOption("stub_run", "boolean", "false", "Run the processes' stubs (-stub-run)"),
    LaunchOption(
        "session_id",
        "string",
        "",
        "The Nextflow session id (a UUID) the run takes; with resume, the session resumed",
    ),
    LaunchOption(
        "work_dir",
        "string",
        "",
        "Work directory (-w): a bucket path on a cloud; on the local platform only the work "
        "directory of the session resumed",
    ),
    LaunchOption("head_job_cpus", "integer", "", "Head job CPUs (cloud platforms)"),
    LaunchOption("head_job_memory_mb", "integer", "", "Head job memory in MiB (cloud platforms)"),
)
LAUNCH_OPTION_NAMES = frozenset(option.name for option in LAUNCH_OPTIONS)


def is_pipeline_name(value: str) -> bool:
    return bool(_PIPELINE_NAME.fullmatch(value)) and ".." not in value


def is_git_url(value: str) -> bool:
    return bool(_GIT_URL.fullmatch(value)) and "/../" not in value + "/"


def check_pipeline(field: str, value: str) -> str:
    if is_pipeline_name(value) or is_git_url(value):
        return value
    raise InvalidField(field, "must be an https git URL or an owner/repository name")


def check_run_name(field: str, value: str) -> str:
    """A run name Nextflow takes for ``-name`` (its ``checkRunName``)."""
    if value in RESERVED_RUN_NAMES:
        raise InvalidField(field, f"{value!r} is reserved by Nextflow")
    if not RUN_NAME.fullmatch(value):
        raise InvalidField(
            field,
            "must start with a letter and hold letters, digits, and - or _ between them, "
            "at most 80 characters (Nextflow's run-name rule)",
        )
    return value


def check_flag(field: str, value: str) -> bool:
    """A switch's value (JSON booleans arrive as "true" and "false"); nothing else passes
    for one, not "yes", "1" or ""."""
    if value not in _FLAGS:
        raise InvalidField(field, "must be true or false")
    return _FLAGS[value]


def check_launch_option(name: str, value: str, field: str) -> str:
    """Validate one launch option; returns it normalised. ``field`` names it in errors."""
    if name == "revision" and value and not _REVISION.fullmatch(value):
        raise InvalidField(field, "not a valid git revision name")
    if name == "profile" and value and not _PROFILE.fullmatch(value):
        raise InvalidField(field, "must be comma-separated profile names (letters, digits, _ -)")
    if name == "entry" and value and not _ENTRY.fullmatch(value):
        raise InvalidField(field, "not a valid workflow entry name")
    if name == "main_script" and value and (not _MAIN_SCRIPT.fullmatch(value) or ".." in value):
        raise InvalidField(field, "must be a relative path inside the project")
    if name in ("latest", "stub_run"):
        return "true" if check_flag(field, value) else "false"
    if name == "session_id":
        if not _SESSION_ID.fullmatch(value):
            raise InvalidField(field, "must be a session id (a UUID)")
        return value.lower()
    if name == "work_dir" and not _WORK_DIR.fullmatch(value):
        raise InvalidField(field, "must be an absolute path or a s3:// or gs:// bucket path")
    if name in _INTEGER_OPTIONS:
        low, high = _INTEGER_OPTIONS[name]
        if not value.isdigit() or not low <= int(value) <= high:
            raise InvalidField(field, f"must be an integer from {low} to {high}")
        return str(int(value))
    if name == "resume":
        if value in _FLAGS or _SESSION_ID.fullmatch(value):
            return value.lower()
        raise InvalidField(field, "must be true, false or a session id (a UUID)")
    if name == "config" and len(value) > 64 * 1024:
        raise InvalidField(field, "config text longer than 64 KiB")
    return value


class EngineVersion:
    """The installed Nextflow's version, read once in the background (the JVM takes
    seconds to start), with the configured version standing in until then."""

    def __init__(self, executable: str, fallback: str) -> None:
        self._executable = executable
        self._value = fallback
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._detect, name="nextflow-version", daemon=True).start()

    def _detect(self) -> None:
        try:
            out = subprocess.run(
                [self._executable, "-version"],
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return
        match = re.search(r"version\s+(\d+\.\d+\.\d+[\w.-]*)", out)
        if match:
            self._value = match.group(1)

    @property
    def value(self) -> str:
        return self._value
