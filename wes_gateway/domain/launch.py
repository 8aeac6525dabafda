"""One launch, however it arrives: what the service knows about Nextflow (the workflow
types it accepts, the launch options a run may carry, how each is validated, the
installed engine's version), a WES ``RunRequest`` decoded and validated, a Tower launch
turned into that same request, and the ``nextflow run`` command built from the run.

A WES request's ``workflow_params``, ``tags`` and ``workflow_engine_parameters`` arrive
as JSON text inside form parts (or as JSON); they are decoded here and every value is
checked against what service-info advertises. A Tower launch becomes the run request a
WES client would send, so both go through the very same validation, run row, command
builder and workers. Every refusal is a 400 that names the field at fault (``launch.<field>``
for Tower).

The command is an argv list, never a shell string: every value is one argument, so
nothing a user sends can become a second command. Its values were validated when the run
was accepted; the builder only arranges them.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wes_gateway.domain import parsing, pipeline_secrets, text, trs
from wes_gateway.domain.errors import FieldTooLarge, InvalidField
from wes_gateway.domain.models import TAG_KEY_LENGTH, TAG_VALUE_LENGTH
from wes_gateway.domain.run_files import clean_name

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
_INTEGER_OPTIONS = {
    "head_job_cpus": (1, 96),
    "head_job_memory_mb": (1000, 786_432),
    "workspaceId": (1, 2**63 - 1),
}


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
    LaunchOption(
        "pre_run_script",
        "string",
        "",
        "Shell run in the head job before Nextflow (cloud platforms; local only where the "
        "operator allows it); replaces the compute environment's",
    ),
    LaunchOption(
        "post_run_script",
        "string",
        "",
        "Shell run in the head job after Nextflow ends, NXF_EXIT_STATUS set; replaces the "
        "compute environment's",
    ),
    LaunchOption("head_job_cpus", "integer", "", "Head job CPUs (cloud platforms)"),
    LaunchOption("head_job_memory_mb", "integer", "", "Head job memory in MiB (cloud platforms)"),
    LaunchOption(
        "user_secrets", "string", "", "Comma-separated names of the submitter's pipeline secrets"
    ),
    LaunchOption(
        "workspace_secrets",
        "string",
        "",
        "Comma-separated names of the workspace's pipeline secrets",
    ),
    LaunchOption(
        "workspaceId",
        "integer",
        "",
        "The workspace the run belongs to (Seqera's workspaceId); the personal one if empty",
    ),
    LaunchOption(
        "labelIds",
        "string",
        "",
        "Comma-separated ids of the workspace's labels put on the run (Seqera's labelIds)",
    ),
    LaunchOption("run_name", "string", "", "The run's name (-name); Nextflow's rule"),
    LaunchOption(
        "with_report", "string", "false", "true, or a file name in the launch folder (-with-report)"
    ),
    LaunchOption(
        "with_trace", "string", "false", "true, or a file name in the launch folder (-with-trace)"
    ),
    LaunchOption(
        "with_dag", "string", "false", "true, or a file name in the launch folder (-with-dag)"
    ),
    LaunchOption(
        "with_timeline",
        "boolean",
        "true",
        "Every run writes its timeline (timeline-<run id>.html, a download of the run)",
    ),
    LaunchOption("preview", "boolean", "false", "Run the script without its processes (-preview)"),
    LaunchOption("dump_hashes", "boolean", "false", "Log the tasks' hash keys (-dump-hashes)"),
)
LAUNCH_OPTION_NAMES = frozenset(option.name for option in LAUNCH_OPTIONS)
# The user shell around a run; where it may run is the compute environment's to say.
SCRIPT_OPTIONS = ("pre_run_script", "post_run_script")
MAX_SCRIPT_BYTES = 16 * 1024

# The other names a launch option may be sent under in ``workflow_engine_parameters``:
# Seqera's (its WES and its launch request) and Nextflow's own run options as command-line
# flags. This table is the allow-list of flags: any other key is refused. A flag takes the
# values of the option it names and one more, the empty string: the flag given without a
# value, as on a command line (``-resume``, ``-latest``).
ENGINE_PARAMETER_ALIASES: dict[str, str] = {
    "computeEnvId": "compute_env_id",
    "profiles": "profile",
    "configText": "config",
    "pullLatest": "latest",
    "mainScript": "main_script",
    "entryName": "entry",
    "runName": "run_name",
    "stubRun": "stub_run",
    "sessionId": "session_id",
    "workDir": "work_dir",
    "-r": "revision",
    "-revision": "revision",
    "-profile": "profile",
    "-resume": "resume",
    "-latest": "latest",
    "-entry": "entry",
    "-main-script": "main_script",
    "-name": "run_name",
    "-with-report": "with_report",
    "-with-trace": "with_trace",
    "-with-timeline": "with_timeline",
    "-with-dag": "with_dag",
    "-stub": "stub_run",
    "-stub-run": "stub_run",
    "-preview": "preview",
    "-dump-hashes": "dump_hashes",
}
LABEL_IDS = "labelIds"
MAX_LABELS = 100
_LABEL_IDS = re.compile(r"^\d{1,19}(,\d{1,19})*$")
_BOOLEAN_OPTIONS = frozenset({"latest", "stub_run", "preview", "dump_hashes"})
_REPORT_OPTIONS = frozenset({"with_report", "with_trace", "with_dag"})
_REPORT_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")

# workflow_engine_version: the versions Nextflow has (YY.MM.P, and -edge releases), from
# the first one this service runs: 22.10.0, where DSL2 is the default and -with-tower and
# TOWER_WORKFLOW_ID report to a Tower endpoint as the trace endpoints expect.
ENGINE_VERSION = re.compile(r"^(\d{2})\.(\d{2})\.(\d{1,3})(-edge)?$")
MIN_ENGINE_VERSION = "22.10.0"


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
    if name in _BOOLEAN_OPTIONS:
        return "true" if check_flag(field, value) else "false"
    if name == "with_timeline" and value != "true":
        raise InvalidField(
            field,
            "only true: every run writes its timeline as timeline-<run id>.html, a download "
            "of the run",
        )
    if name in _REPORT_OPTIONS:
        if value in _FLAGS:
            return value
        if not _REPORT_FILE.fullmatch(value) or ".." in value:
            raise InvalidField(
                field, "must be true, false or a file name in the launch folder (no path)"
            )
        return value
    if name == "run_name" and value:
        return check_run_name(field, value)
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
    if name == LABEL_IDS and value:
        ids = list(dict.fromkeys(value.split(","))) if _LABEL_IDS.fullmatch(value) else None
        if ids is None or any(int(item) > 2**63 - 1 for item in ids):
            raise InvalidField(field, "must be label ids (a list or comma-separated)")
        if len(ids) > MAX_LABELS:
            raise InvalidField(field, f"at most {MAX_LABELS} labels")
        return ",".join(str(int(item)) for item in ids)
    if name in ("user_secrets", "workspace_secrets"):
        return pipeline_secrets.check_option(value, field)
    if name == "config" and len(value) > 64 * 1024:
        raise InvalidField(field, "config text longer than 64 KiB")
    if name in SCRIPT_OPTIONS and len(value.encode()) > MAX_SCRIPT_BYTES:
        raise InvalidField(field, f"a script longer than {MAX_SCRIPT_BYTES // 1024} KiB")
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


TEXT_FIELDS = (
    "workflow_type",
    "workflow_type_version",
    "workflow_url",
    "workflow_engine",
    "workflow_engine_version",
)
OBJECT_FIELDS = ("workflow_params", "tags", "workflow_engine_parameters")
ATTACHMENT_FIELD = "workflow_attachment"
KNOWN_FIELDS = frozenset(TEXT_FIELDS + OBJECT_FIELDS + (ATTACHMENT_FIELD,))


@dataclass(frozen=True)
class RunRequest:
    workflow_type: str
    workflow_type_version: str
    workflow_url: str
    workflow_params: dict[str, Any]
    tags: dict[str, str]
    workflow_engine_parameters: dict[str, str]
    workflow_engine: str | None = None
    workflow_engine_version: str | None = None
    attachments: list[str] = field(default_factory=list)

    @property
    def workspace_id(self) -> int | None:
        """The workspace the run is submitted to; None: the submitter's personal one."""
        value = self.option("workspaceId")
        return int(value) if value else None

    @property
    def label_ids(self) -> list[int]:
        """The ids of the labels the run is to carry (checked by ``check_launch_option``)."""
        value = self.option(LABEL_IDS)
        return [int(item) for item in value.split(",")] if value else []

    def option(self, name: str) -> str | None:
        value = self.workflow_engine_parameters.get(name)
        return value or None

    def as_echo(self) -> dict[str, Any]:
        """The request as ``RunLog.request`` shows it back."""
        echo: dict[str, Any] = {
            "workflow_params": self.workflow_params,
            "workflow_type": self.workflow_type,
            "workflow_type_version": self.workflow_type_version,
            "tags": self.tags,
            "workflow_engine_parameters": self.workflow_engine_parameters,
            "workflow_url": self.workflow_url,
        }
        if self.workflow_engine:
            echo["workflow_engine"] = self.workflow_engine
        if self.workflow_engine_version:
            echo["workflow_engine_version"] = self.workflow_engine_version
        return echo


def parse_run_request(
    fields: Mapping[str, list[Any]],
    attachment_names: list[str],
    *,
    engine_versions: list[str],
    max_field_bytes: int,
) -> RunRequest:
    """Build a validated request from raw parts: each field maps to the values it was given
    (form parts may repeat); ``attachment_names`` are the already-cleaned file names. Every
    part, text or object, is held to ``max_field_bytes``, however it was encoded."""
    unknown = sorted(str(name) for name in set(fields) - KNOWN_FIELDS)
    if unknown:
        raise InvalidField(unknown[0], f"unknown part; expected some of {sorted(KNOWN_FIELDS)}")
    text = {name: _single_text(fields, name, max_field_bytes) for name in TEXT_FIELDS}
    objects = {name: _json_object(fields, name, max_field_bytes) for name in OBJECT_FIELDS}

    workflow_type = _check_type(text["workflow_type"])
    version = _check_type_version(text["workflow_type_version"])
    engine, engine_version = _check_engine(
        text["workflow_engine"], text["workflow_engine_version"], engine_versions
    )
    workflow_url = _check_url(text["workflow_url"], attachment_names)
    tags = {key: _check_tag(key, value) for key, value in objects["tags"].items()}
    options = _check_options(objects["workflow_engine_parameters"])
    if workflow_url in attachment_names and options.get("revision"):
        # Nextflow: "Revision option cannot be used when running a local script".
        raise InvalidField(
            "workflow_engine_parameters.revision",
            "cannot be used when workflow_url is an attached script (Nextflow runs a local "
            "script as it is; a revision names a commit of a git repository)",
        )
    return RunRequest(
        workflow_type=workflow_type,
        workflow_type_version=version,
        workflow_url=workflow_url,
        workflow_params=_check_params(objects["workflow_params"]),
        tags=tags,
        workflow_engine_parameters=options,
        workflow_engine=engine,
        workflow_engine_version=engine_version,
        attachments=attachment_names,
    )


def _single_text(fields: Mapping[str, list[Any]], name: str, max_bytes: int) -> str | None:
    values = fields.get(name) or []
    if len(values) > 1:
        raise InvalidField(name, "given more than once")
    if not values or values[0] is None:
        return None
    value = values[0]
    if not isinstance(value, str):
        raise InvalidField(name, "must be a string")
    parsing.check_text_size(name, value, max_bytes)
    if text.unstorable(value):
        raise InvalidField(name, text.PROBLEM)
    return value.strip()


def _json_object(fields: Mapping[str, list[Any]], name: str, max_bytes: int) -> dict[str, Any]:
    values = fields.get(name) or []
    if len(values) > 1:
        raise InvalidField(name, "given more than once")
    if not values or values[0] is None or values[0] == "":
        return {}
    value = values[0]
    sent_as_text = isinstance(value, str)
    if sent_as_text:
        parsing.check_text_size(name, value, max_bytes)
        value = parsing.load_json(name, value)
    if not isinstance(value, dict):
        raise InvalidField(name, "must be a JSON object")
    problem = text.shape_problem(value)
    if problem:
        raise InvalidField(name, problem)
    if not sent_as_text:  # an object of a JSON body, or parsed from a Tower launch's YAML
        parsing.check_value_size(name, value, max_bytes)
    where = text.unstorable(value, name)
    if where:
        raise InvalidField(where, text.PROBLEM)
    return value


def _check_tag(key: str, value: Any) -> str:
    """A tag as text, within the lengths its index takes."""
    text = _as_text("tags", key, value)
    if len(key) > TAG_KEY_LENGTH:
        raise InvalidField(f"tags.{key[:40]}...", f"a tag key is at most {TAG_KEY_LENGTH} long")
    if len(text) > TAG_VALUE_LENGTH:
        raise InvalidField(f"tags.{key}", f"a tag value is at most {TAG_VALUE_LENGTH} long")
    return text


def _as_text(field_name: str, key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise InvalidField(f"{field_name}.{key}", "must be a string")


def _check_type(value: str | None) -> str:
    if not value:
        raise InvalidField("workflow_type", "required; this service runs NFL (Nextflow)")
    normalised = WORKFLOW_TYPE_ALIASES.get(value.upper())
    if normalised is None:
        raise InvalidField("workflow_type", f"{value!r} is not supported; use NFL")
    return normalised


def _check_type_version(value: str | None) -> str:
    supported = WORKFLOW_TYPE_VERSIONS
    if not value:
        raise InvalidField("workflow_type_version", f"required; supported: {', '.join(supported)}")
    for candidate in supported:
        if value.upper() == candidate:
            return candidate
    raise InvalidField(
        "workflow_type_version", f"{value!r} is not supported; supported: {', '.join(supported)}"
    )


def _check_engine(
    engine: str | None, version: str | None, default: list[str]
) -> tuple[str | None, str | None]:
    """The engine (``nextflow`` in any case) and the Nextflow version asked for: any version
    Nextflow has (``YY.MM.P`` or ``YY.MM.P-edge``) from MIN_ENGINE_VERSION on; the head job
    runs it (``NXF_VER``). ``default``: the installed version, which needs no NXF_VER."""
    if version and not engine:
        raise InvalidField("workflow_engine", "required when workflow_engine_version is given")
    if engine and engine.lower() != ENGINE:
        raise InvalidField("workflow_engine", f"{engine!r} is not supported; use nextflow")
    if version:
        match = ENGINE_VERSION.fullmatch(version)
        if match is None:
            raise InvalidField(
                "workflow_engine_version",
                f"{version!r} is not a Nextflow version (YY.MM.P or YY.MM.P-edge, "
                f"e.g. {default[0] if default else MIN_ENGINE_VERSION})",
            )
        if engine_version_key(version) < engine_version_key(MIN_ENGINE_VERSION):
            raise InvalidField(
                "workflow_engine_version",
                f"{version!r} is older than {MIN_ENGINE_VERSION}, the first this service runs",
            )
    return (ENGINE if engine else None), (version or None)


def engine_version_key(version: str) -> tuple[int, int, int]:
    """A Nextflow version as numbers, for ordering (an -edge release sorts with its
    number)."""
    match = ENGINE_VERSION.fullmatch(version)
    if match is None:
        return (0, 0, 0)
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def _check_url(value: str | None, attachments: list[str]) -> str:
    if not value:
        raise InvalidField("workflow_url", "required: a pipeline or an attached file")
    if trs.is_trs(value):
        trs.parse(value)  # resolved when the run is accepted (runs.create_run)
        return value
    if "://" not in value and not value.startswith("/"):
        try:
            as_path = clean_name(value)
        except InvalidField:
            as_path = None
        if as_path in attachments:
            return as_path
    if is_git_url(value) or is_pipeline_name(value):
        return value
    if attachments and "://" not in value:
        raise InvalidField("workflow_url", f"{value!r} is not among the attached files")
    raise InvalidField(
        "workflow_url",
        "must be an https git URL, an owner/repository pipeline name, a GA4GH TRS URI "
        "(trs://<host>/<tool id>/<version>), a Dockstore #workflow/ id, or the relative "
        "path of an attached file",
    )


def check_resolved(resolution: trs.Resolution) -> None:
    """A TRS workflow's pipeline, revision and script, held to what a client may send
    (they become arguments of ``nextflow run`` as a client's would)."""
    shown = f"{resolution.uri} resolves to"
    if not is_git_url(resolution.git_url):
        raise InvalidField("workflow_url", f"{shown} {resolution.git_url!r}, not an https git URL")
    if not _REVISION.fullmatch(resolution.revision):
        raise InvalidField(
            "workflow_url", f"{shown} revision {resolution.revision!r}, not a git revision name"
        )
    script = resolution.main_script
    if script is not None and (not _MAIN_SCRIPT.fullmatch(script) or ".." in script):
        raise InvalidField(
            "workflow_url", f"{shown} script {script!r}, not a relative path in the project"
        )


def _check_options(raw: dict[str, Any]) -> dict[str, str]:
    """The launch options, each under its own name, whichever name it was sent under
    (ours, Seqera's or a Nextflow flag: ENGINE_PARAMETER_ALIASES); the same option sent
    under two names is refused, as is any name not in the table."""
    options: dict[str, str] = {}
    sent_as: dict[str, str] = {}
    for name, value in raw.items():
        field_name = f"workflow_engine_parameters.{name}"
        if name == LABEL_IDS and isinstance(value, list):
            if not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
                raise InvalidField(field_name, "must be label ids (a list or comma-separated)")
            value = ",".join(str(item) for item in value)
        option = ENGINE_PARAMETER_ALIASES.get(name, name)
        if option not in LAUNCH_OPTION_NAMES:
            raise InvalidField(
                field_name,
                "unknown option; known: "
                f"{sorted(LAUNCH_OPTION_NAMES)}, Seqera's names and the Nextflow flags "
                f"{sorted(key for key in ENGINE_PARAMETER_ALIASES if key.startswith('-'))}",
            )
        if option in sent_as:
            raise InvalidField(field_name, f"the same option as {sent_as[option]!r}; give one")
        sent_as[option] = name
        if option == "profile" and isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                raise InvalidField(field_name, "must be a list of profile names")
            value = ",".join(value)
        text = _as_text("workflow_engine_parameters", name, value)
        if name.startswith("-") and text == "":
            # A flag given without a value: a switch turned on, Nextflow's default file name;
            # an option that takes a value has none (Nextflow: "Missing value for option").
            if option not in _BOOLEAN_OPTIONS | _REPORT_OPTIONS | {"resume", "with_timeline"}:
                raise InvalidField(field_name, f"needs a value, as Nextflow's {name} does")
            text = "true"
        options[option] = check_launch_option(option, text, field_name)
    return options


def _check_params(raw: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's params, with keys in Nextflow's command-line form (``--input``,
    ``--a.b``) made what ``nextflow run ... --input x`` makes them: ``input``, and ``a``
    holding ``b``, a text value typed as Nextflow types it (``true``, ``3``). A param given
    in both forms is refused; so is a key that names a run option (``-r``)."""
    params = {key: value for key, value in raw.items() if not key.startswith("-")}
    for key, value in raw.items():
        if not key.startswith("-"):
            continue
        field_name = f"workflow_params.{key}"
        if not key.startswith("--"):
            raise InvalidField(
                field_name,
                "a Nextflow run option, not a pipeline parameter; send it in "
                "workflow_engine_parameters",
            )
        if not all(re.split(r"(?<!\\)\.", key[2:])):
            raise InvalidField(field_name, "not a valid parameter name")
        _add_param(params, key, key[2:], _typed(value))
    return params


def _add_param(params: dict[str, Any], full_key: str, key: str, value: Any) -> None:
    """Nextflow's CmdRun.addParam: an unescaped dot nests; ``\\.`` is a dot in a name."""
    match = re.search(r"(?<!\\)\.", key)
    if match is None:
        name = key.replace("\\.", ".")
        if name in params:
            raise InvalidField(f"workflow_params.{full_key}", f"also given as {name!r}")
        params[name] = value
        return
    root = key[: match.start()].replace("\\.", ".")
    nested = params.get(root)
    if not isinstance(nested, dict):
        if nested is not None:
            raise InvalidField(f"workflow_params.{full_key}", f"also given as {root!r}")
        nested = params[root] = {}
    _add_param(nested, full_key, key[match.end() :], value)


def _typed(value: Any) -> Any:
    """Nextflow's parseParamValue for a text value; other JSON values stay as they are."""
    if not isinstance(value, str):
        return value
    if value.lower() in _FLAGS:
        return _FLAGS[value.lower()]
    if re.fullmatch(r"\d+", value):
        return int(value)
    if re.fullmatch(r"\d+\.\d+", value):
        return float(value)
    return value


# WES field → the Tower launch field a client sent it as, for error messages.
_TOWER_NAMES = {
    "workflow_url": "pipeline",
    "workflow_params": "paramsText",
    "workflow_engine_parameters.revision": "revision",
    "workflow_engine_parameters.profile": "configProfiles",
    "workflow_engine_parameters.config": "configText",
    "workflow_engine_parameters.entry": "entryName",
    "workflow_engine_parameters.main_script": "mainScript",
    "workflow_engine_parameters.resume": "sessionId",
    "workflow_engine_parameters.latest": "pullLatest",
    "workflow_engine_parameters.compute_env_id": "computeEnvId",
    "workflow_engine_parameters.stub_run": "stubRun",
    "run_name": "runName",
    "workflow_engine_parameters.session_id": "sessionId",
    "workflow_engine_parameters.user_secrets": "userSecrets",
    "workflow_engine_parameters.workspace_secrets": "workspaceSecrets",
    "workflow_engine_parameters.work_dir": "workDir",
    "workflow_engine_parameters.head_job_cpus": "headJobCpus",
    "workflow_engine_parameters.head_job_memory_mb": "headJobMemoryMb",
    "workflow_engine_parameters.pre_run_script": "preRunScript",
    "workflow_engine_parameters.post_run_script": "postRunScript",
}
# Every field of Seqera's WorkflowLaunchRequest is read: these are run as asked (see
# run_request); ``id`` (the launch a relaunch starts from) and ``dateCreated`` (the
# client's clock) describe the request and change nothing about the run.
_HONOURED = frozenset(
    {
        "pipeline", "revision", "configProfiles", "configText", "paramsText", "entryName",
        "mainScript", "computeEnvId", "runName", "sessionId", "resume", "pullLatest",
        "stubRun", "workDir", "headJobCpus", "headJobMemoryMb", "id", "dateCreated",
        "preRunScript", "postRunScript", "userSecrets", "workspaceSecrets", "labelIds",
    }
)  # fmt: skip
# Fields for features this service does not have: refused when set, never ignored.
_NOT_OFFERED = {
    "commitId": "give the commit as revision",
    "launchContainer": "the head job image is the compute environment's headJobImage",
    "optimizationId": "resource optimization is not offered here",
    "optimizationTargets": "resource optimization is not offered here",
    "outputDir": "set the output directory with a pipeline parameter",
    "pipelineSchemaId": "pipeline schemas are not offered here",
    "schemaName": "pipeline schemas are not offered here",
    "syntaxParser": "set NXF_SYNTAX_PARSER on the compute environment",
    "towerConfig": "the trace settings are the gateway's own",
}


def _params(text: Any, max_bytes: int) -> dict[str, Any]:
    key = "launch.paramsText"
    if text in (None, ""):
        return {}
    if not isinstance(text, str):
        raise InvalidField(key, "must be JSON or YAML text")
    value = parsing.load_yaml(key, text, max_bytes)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidField(key, "must hold an object of parameters")
    return value


def _flag(launch: dict[str, Any], name: str) -> bool:
    """A launch switch: a JSON boolean (or absent), as Seqera's launch request types it."""
    value = launch.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidField(f"launch.{name}", "must be true or false")
    return value


def field_name(key: str) -> str:
    """The launch field a WES field came from: ``workflow_params.a`` is
    ``launch.paramsText.a``."""
    for wes, tower in _TOWER_NAMES.items():
        if key == wes or key.startswith((f"{wes}.", f"{wes}[", f"{wes} ")):
            return f"launch.{tower}{key[len(wes) :]}"
    return f"launch.{key}"


def run_request(
    launch: dict[str, Any], *, engine_versions: list[str], max_field_bytes: int
) -> tuple[RunRequest, str | None]:
    """The run request for a Tower launch, and the run name it asks for (if any). Errors
    name the launch field (``launch.revision: ...``); ``paramsText`` is held to the field
    limit, as text and once parsed."""
    for key in launch:
        if key in _NOT_OFFERED and launch[key] not in (None, "", []):
            raise InvalidField(f"launch.{key}", f"not supported: {_NOT_OFFERED[key]}")
        if key not in _HONOURED and key not in _NOT_OFFERED:
            raise InvalidField(f"launch.{key}", "not a field of a launch request")
    label_ids = launch.get("labelIds")
    if label_ids is not None and not (
        isinstance(label_ids, list)
        and all(isinstance(item, int) and not isinstance(item, bool) for item in label_ids)
    ):
        raise InvalidField("launch.labelIds", "must be a list of label ids")
    for key in ("id", "dateCreated"):
        if launch.get(key) is not None and not isinstance(launch[key], str):
            raise InvalidField(f"launch.{key}", "must be a string")
    options: dict[str, Any] = {}
    if launch.get("revision"):
        options["revision"] = launch["revision"]
    profiles = launch.get("configProfiles")
    if profiles:
        if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
            raise InvalidField("launch.configProfiles", "must be a list of profile names")
        options["profile"] = ",".join(profiles)
    for key, option in (
        ("configText", "config"),
        ("entryName", "entry"),
        ("mainScript", "main_script"),
        ("computeEnvId", "compute_env_id"),
        ("workDir", "work_dir"),
        ("preRunScript", "pre_run_script"),
        ("postRunScript", "post_run_script"),
    ):
        if launch.get(key):
            options[option] = launch[key]
    for key, option in (
        ("headJobCpus", "head_job_cpus"),
        ("headJobMemoryMb", "head_job_memory_mb"),
    ):
        if launch.get(key) is not None:
            options[option] = launch[key]
    if _flag(launch, "resume"):
        options["resume"] = launch.get("sessionId") or "true"
    elif launch.get("sessionId"):
        options["session_id"] = launch["sessionId"]
    for key, option in (("userSecrets", "user_secrets"), ("workspaceSecrets", "workspace_secrets")):
        named = launch.get(key)
        if named in (None, []):
            continue
        if not isinstance(named, list) or not all(isinstance(n, str) for n in named):
            raise InvalidField(f"launch.{key}", "must be a list of pipeline secret names")
        for name in named:
            pipeline_secrets.check_name(name, f"launch.{key}")
        options[option] = ",".join(dict.fromkeys(named))
    if _flag(launch, "pullLatest"):
        options["latest"] = "true"
    if _flag(launch, "stubRun"):
        options["stub_run"] = "true"
    run_name = launch.get("runName") or None
    if run_name is not None:
        if not isinstance(run_name, str):
            raise InvalidField("launch.runName", "must be a string")
        check_run_name("launch.runName", run_name)
    fields = {
        "workflow_type": [WORKFLOW_TYPE],
        "workflow_type_version": [WORKFLOW_TYPE_VERSIONS[0]],
        "workflow_url": [launch.get("pipeline")],
        "workflow_params": [_params(launch.get("paramsText"), max_field_bytes)],
        "workflow_engine_parameters": [options],
    }
    try:
        request = parse_run_request(
            fields, [], engine_versions=engine_versions, max_field_bytes=max_field_bytes
        )
    except (InvalidField, FieldTooLarge) as exc:
        problem = exc.message.split(": ", 1)[-1]
        raise type(exc)(field_name(exc.field), problem) from None
    return request, run_name


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
    if run.preview:
        argv += ["-preview"]
    if run.dump_hashes:
        argv += ["-dump-hashes"]
    for option, value in (
        ("-with-report", run.with_report),
        ("-with-trace", run.with_trace),
        ("-with-dag", run.with_dag),
    ):
        if value and value != "false":
            # true: the flag alone, and Nextflow names the file (report-<time>.html, ...).
            argv += [option] + ([] if value == "true" else [value])
    if run.work_dir:
        argv += ["-w", run.work_dir]
    if timeline_file:
        argv += ["-with-timeline", timeline_file]
    if run.tower_url:
        argv += ["-with-tower", run.tower_url]
    # Plain text in the console file, not terminal redraws.
    argv += ["-ansi-log", "false"]
    return argv


@dataclass(frozen=True)
class RunSnapshot:
    """What a backend needs to know about a run, copied out of the database."""

    run_id: str
    pipeline: str  # an owner/repo name, an https git URL, or a path in the launch dir
    pipeline_is_local: bool
    run_dir: Path
    params: Mapping[str, Any] = field(default_factory=dict)
    revision: str | None = None
    profile: str | None = None
    config_text: str | None = None
    entry: str | None = None
    main_script: str | None = None
    resume: str | None = None  # "true", or the session id to resume
    latest: bool = False
    stub_run: bool = False
    preview: bool = False
    dump_hashes: bool = False
    with_report: str | None = None  # "true" or a file name in the launch folder
    with_trace: str | None = None
    with_dag: str | None = None
    engine_version: str | None = None  # NXF_VER: the Nextflow version asked for
    run_name: str | None = None
    session_id: str | None = None
    work_dir: str | None = None  # -w: the work dir of the session resumed, or one asked for
    cache_dir: Path | None = None  # NXF_CACHE_DIR of a local run: its session's .nextflow
    head_job_cpus: int | None = None  # the launch's own head-job resources, if it set them
    head_job_memory_mb: int | None = None
    pre_run_script: str | None = None  # the launch's own; the compute environment's if None
    post_run_script: str | None = None
    tower_url: str | None = None  # the trace endpoint (-with-tower); None: not traced
    tower_token: str | None = None  # the run-scoped token for the trace calls
    compute_config: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    # Opened pipeline secrets (name: value) and Nextflow SCM config text for a local head
    # job; never in a repr, so never in a log line.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    scm_config: str | None = field(default=None, repr=False)
