"""The local backend: head jobs are processes on this machine.

Each head job runs detached (its own session and process group) under a tiny ``sh``
wrapper, so it outlives the worker that started it and any restart of the service. The
wrapper records its pid as it starts, sends Nextflow's output to the console file, and
writes Nextflow's exit code to a file when it returns. A poll needs nothing but those
files and the process table, so any worker can poll or cancel any local job.

Linux only: liveness is read from ``/proc`` (a zombie or a reused pid counts as gone).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from wes_gateway.domain import compute_envs, run_files, run_outputs
from wes_gateway.domain.launch import RunSnapshot, build_command
from wes_gateway.domain.states import BackendStatus
from wes_gateway.infra.config import SERVICE_PREFIX
from workers.backends import head_job
from workers.backends.base import (
    Backend,
    JobReport,
    OutputsQuery,
    Submission,
    SubmitError,
    no_claim,
)

# $1: pid file, $2: console file, $3: exit file; then the command. The trap keeps the
# wrapper alive when the whole group is signalled, so it can still record the exit code
# of a Nextflow that was asked to stop (a trap with a body is reset in the child, so
# Nextflow itself still receives the signal). A stop that lands before Nextflow exists
# is remembered and passed on once it does.
WRAPPER = r"""
stop=0
trap 'stop=1' TERM INT HUP
echo $$ > "$1.tmp" && mv "$1.tmp" "$1"
out=$2 status=$3
shift 3
"$@" > "$out" 2>&1 < /dev/null &
child=$!
[ "$stop" = 1 ] && kill -TERM "$child" 2>/dev/null
while :; do
  wait "$child"; code=$?
  kill -0 "$child" 2>/dev/null || break
done
echo "$code" > "$status.tmp" && mv "$status.tmp" "$status"
rm -rf -- "${status%/*}/.secrets"
"""


# What a local head job inherits from the worker. A pipeline is user code: it gets what a
# JVM and Nextflow need to run (the search path, home, user, locale, time zone, temporary
# folder, proxies and CA bundles, Nextflow's and Java's own settings) and what its run
# sets, never the service's settings or credentials. Operators name more variables with
# WES_GATEWAY_HEAD_JOB_ENV.
INHERITED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "TZ", "LANG", "LANGUAGE",
        "http_proxy", "https_proxy", "no_proxy", "all_proxy",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    }
)  # fmt: skip
INHERITED_PREFIXES = ("LC_", "NXF_", "JAVA_")
# Never passed on, whatever an operator names: the service's own settings.
WITHHELD_PREFIXES = (SERVICE_PREFIX,)


def head_job_environment(source: Mapping[str, str], extra: Sequence[str] = ()) -> dict[str, str]:
    """The variables of ``source`` (the worker's environment) a local head job inherits:
    the allow-list, plus the names in ``extra`` (a trailing ``*`` matches a prefix)."""
    names = INHERITED_NAMES | {name for name in extra if not name.endswith("*")}
    prefixes = INHERITED_PREFIXES + tuple(name[:-1] for name in extra if name.endswith("*"))
    return {
        name: value
        for name, value in source.items()
        if (name in names or name.startswith(prefixes)) and not name.startswith(WITHHELD_PREFIXES)
    }


def secrets_dir(run_dir: Path) -> Path:
    """Where a local head job's secrets files live while it runs."""
    return run_dir / ".secrets"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file that only this user may read or write (mode 0600 from
    the start, as Nextflow requires of its secrets store)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
    path.chmod(0o600)


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone (or a
    zombie: it has exited and only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


class LocalBackend(Backend):
    platform = compute_envs.LOCAL
    writes_console_to_run_folder = True

    def __init__(
        self,
        nextflow: str = "nextflow",
        environment: Mapping[str, str] | None = None,
        passed: Sequence[str] = (),
    ):
        """``environment``: the worker's variables (``os.environ`` by default), of which a
        head job gets the allow-list and the names in ``passed``."""
        self.nextflow = nextflow
        self.environment = head_job_environment(
            os.environ if environment is None else environment, passed
        )

    @classmethod
    def from_settings(cls, settings, config: dict) -> LocalBackend:
        return cls(nextflow=settings.nextflow, passed=settings.head_job_env_names)

    def list_outputs(self, query: OutputsQuery) -> run_outputs.Listing | None:
        folders = run_outputs.local_folders(
            query.outdir,
            launch_dir=run_files.launch_dir(query.run_dir),
            work_dir=query.work_dir,
            data_dir=query.data_dir,
        )
        return None if folders is None else run_outputs.list_local(folders, query.limit)

    def command(self, run: RunSnapshot) -> list[str]:
        run_dir = run.run_dir
        return build_command(
            run,
            executable=self.nextflow,
            log_file=str(run_files.nextflow_log_file(run_dir, run.run_id)),
            params_file=str(run_files.params_file(run_dir)) if run.params else None,
            config_file=str(run_files.config_file(run_dir)) if run.config_text else None,
            timeline_file=str(run_files.timeline_file(run_dir, run.run_id)),
        )

    def adopt(self, run: RunSnapshot) -> Submission | None:
        found = super().adopt(run)
        return None if found is None else replace(found, started=True)

    def submit(self, run: RunSnapshot, claim: Callable[[], None] = no_claim) -> Submission:
        run_dir = run.run_dir
        launch = run_files.launch_dir(run_dir)
        params = run_files.params_file(run_dir)
        config = run_files.config_file(run_dir)
        command = self.command(run)
        existing = self.adopt(run)
        if existing is not None:
            return existing
        env = {**self.environment, **run.environment, "NXF_ANSI_LOG": "false"}
        # Nextflow's history and cache: the launch folder's own, or for a resumed run those
        # of the run that began its session (where Nextflow finds the session to resume).
        env["NXF_CACHE_DIR"] = str(run.cache_dir or launch / ".nextflow")
        if run.session_id:
            env["NXF_UUID"] = run.session_id
        if run.engine_version:
            env["NXF_VER"] = run.engine_version  # the launcher runs that version
        if shutil.which(self.nextflow, path=env.get("PATH")) is None:
            raise SubmitError(f"the nextflow executable {self.nextflow!r} was not found")
        try:
            launch.mkdir(parents=True, exist_ok=True)
            if run.params:
                params.write_text(json.dumps(run.params))
            if run.config_text:
                config.write_text(run.config_text)
        except OSError as exc:
            raise SubmitError(f"cannot prepare the launch directory {launch}: {exc}") from exc
        if run.tower_token:
            env.update(TOWER_ACCESS_TOKEN=run.tower_token, TOWER_WORKFLOW_ID=run.run_id)
        argv = self._around_scripts(run, command, launch, env)
        env.update(self._secret_files(run))
        pid_path = run_files.pid_file(run_dir)
        claim()
        try:
            process = subprocess.Popen(
                [
                    "/bin/sh",
                    "-c",
                    WRAPPER,
                    "head-job",
                    str(pid_path),
                    str(run_files.console_file(run_dir, run.run_id)),
                    str(run_files.exit_file(run_dir)),
                    *argv,
                ],
                cwd=launch,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise SubmitError(f"cannot start the head job: {exc}") from exc
        # The wrapper records its pid too, but only once it runs: record it now as well, so
        # a find() right after this returns sees the job.
        draft = pid_path.with_name(pid_path.name + ".submit")
        draft.write_text(f"{process.pid}\n")
        draft.replace(pid_path)
        handle = self._handle(run, process.pid)
        self._reap_later(process)
        return Submission(handle=handle, command=command, started=True)

    @staticmethod
    def _around_scripts(
        run: RunSnapshot, command: list[str], launch: Path, env: dict[str, str]
    ) -> list[str]:
        """The command, inside the cloud head job's launcher when the run has pre/post-run
        scripts (accepted for the local platform only where the operator allows them):
        the same order, exit codes and ``NXF_EXIT_STATUS`` as on a cloud."""
        for name in ("NXF_PRERUN_BASE64", "NXF_POSTRUN_BASE64"):
            env.pop(name, None)
        if not (run.pre_run_script or run.post_run_script):
            return command
        # The wrapper already sends the output to the console file.
        env.update(NXF_LAUNCH_DIR=str(launch), NXF_OUT_FILE=os.devnull)
        for script, name in (
            (run.pre_run_script, "NXF_PRERUN_BASE64"),
            (run.post_run_script, "NXF_POSTRUN_BASE64"),
        ):
            if script:
                env[name] = base64.b64encode(script.encode()).decode()
        return head_job.container_command(command)

    @staticmethod
    def _secret_files(run: RunSnapshot) -> dict[str, str]:
        """Write the run's secrets where Nextflow reads them, readable by this user only,
        and return the variables that point Nextflow there: its local secrets store
        (``NXF_SECRETS_FILE``, a JSON list of ``{name, value}``) and its SCM config
        (``NXF_SCM_FILE``). The wrapper removes them when Nextflow returns."""
        if not run.secrets and not run.scm_config:
            return {}
        folder = secrets_dir(run.run_dir)
        env: dict[str, str] = {}
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.chmod(0o700)
            if run.secrets:
                store = [{"name": name, "value": value} for name, value in run.secrets.items()]
                _write_private(folder / "store.json", json.dumps(store))
                env.update(NXF_SECRETS_FILE=str(folder / "store.json"), NXF_ENABLE_SECRETS="true")
            if run.scm_config:
                _write_private(folder / "scm", run.scm_config)
                env["NXF_SCM_FILE"] = str(folder / "scm")
        except OSError as exc:
            raise SubmitError(f"cannot write the head job's secrets: {exc.strerror}") from None
        return env

    def poll(self, handles: Sequence[str]) -> dict[str, JobReport]:
        self._reap()
        return {handle: self._report(json.loads(handle)) for handle in handles}

    def cancel(self, handle: str, *, force: bool = False) -> bool:
        job = json.loads(handle)
        # A job that wrote its exit code has ended, even if its process is still exiting.
        if self._exit_code(run_files.exit_file(Path(job["dir"]))) is not None:
            return False
        if not self._alive(job):
            return False
        try:
            os.killpg(job["pid"], signal.SIGKILL if force else signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def read_log(self, handle: str, cursor: str | None) -> tuple[list[str], str | None]:
        job = json.loads(handle)
        console = run_files.console_file(Path(job["dir"]), job["run"])
        offset = int(cursor or 0)
        try:
            with open(console, "rb") as stream:
                stream.seek(offset)
                data = stream.read()
        except FileNotFoundError:
            return [], cursor
        complete = data[: data.rfind(b"\n") + 1]
        lines = complete.decode("utf-8", errors="replace").splitlines()
        return lines, str(offset + len(complete))

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _handle(run: RunSnapshot, pid: int) -> str:
        """The job's handle: its pid with the process start time (a later process reusing
        the pid is not mistaken for it; None when it had already ended) and its files."""
        return json.dumps(
            {"pid": pid, "start": _process_start(pid), "dir": str(run.run_dir), "run": run.run_id}
        )

    def find(self, run: RunSnapshot) -> str | None:
        try:
            pid = int(run_files.pid_file(run.run_dir).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return self._handle(run, pid)

    @staticmethod
    def _alive(job: dict) -> bool:
        start = _process_start(job["pid"])
        return start is not None and (job["start"] is None or start == job["start"])

    def _report(self, job: dict) -> JobReport:
        run_dir = Path(job["dir"])
        exit_path = run_files.exit_file(run_dir)
        for attempt in range(2):
            code = self._exit_code(exit_path)
            if code is not None:
                if code == 0:
                    return JobReport(BackendStatus.SUCCEEDED, exit_code=0)
                return JobReport(BackendStatus.FAILED, exit_code=code)
            if self._alive(job):
                return JobReport(BackendStatus.RUNNING)
            if attempt == 0:
                time.sleep(0.05)  # it may have written its exit code just now
        return JobReport(
            BackendStatus.SYSTEM_FAILED,
            message=f"the head job (pid {job['pid']}) ended without reporting an exit code",
        )

    @staticmethod
    def _exit_code(path: Path) -> int | None:
        try:
            return int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    # The wrapper is our child until it ends; reap it so it does not linger as a zombie.
    _children: list[subprocess.Popen] = []

    def _reap_later(self, process: subprocess.Popen) -> None:
        LocalBackend._children.append(process)

    def _reap(self) -> None:
        LocalBackend._children = [p for p in LocalBackend._children if p.poll() is None]
