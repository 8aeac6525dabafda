"""Head jobs on a Slurm cluster, reached over SSH at its login node.

Submit writes a batch script into the run's launch folder on the cluster (the head job's
launcher, as on the clouds: params, config, pre/post-run scripts, ``-with-tower``, SIGTERM
forwarded to Nextflow), sent on the command's standard input so no secret is ever on a
command line, and runs ``sbatch --parsable`` with the job name ``nf-<run id>``: a retried
submit finds the job by that name (``squeue --name``, then ``sacct --name``) instead of
submitting a second. A poll is one ``squeue`` for every job of the compute environment,
and one ``sacct`` for those that have left slurmctld's memory. Cancel is ``scancel``
(SIGTERM to every process of the job, SIGKILL after the cluster's KillWait). The console is
the job's output file, read from an offset when someone reads the log or the job ends.

Host keys are checked against ``WES_GATEWAY_SSH_KNOWN_HOSTS`` (else the worker user's
``~/.ssh/known_hosts``): an unknown or changed key is refused, never added. With
``WES_GATEWAY_SLURM_LOCAL=true``, a compute environment whose host is ``localhost`` runs
the commands on the worker's own machine instead.
"""

from __future__ import annotations

import io
import json
import logging
import shlex
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from wes_gateway.domain import compute_envs, credentials, run_files, run_outputs
from wes_gateway.domain.credentials import OpenedKeys
from wes_gateway.domain.launch import RunSnapshot
from wes_gateway.domain.states import BackendStatus
from wes_gateway.infra import metrics
from wes_gateway.infra.ssh_keys import UnusableKey, load_private_key
from workers.backends import head_job
from workers.backends.base import (
    Backend,
    JobReport,
    OutputsQuery,
    Submission,
    SubmitError,
    SubmitUnknown,
    no_claim,
)

log = logging.getLogger(__name__)

# Set on a job's comment right before we cancel it, so its CANCELLED state tells our stop
# from someone else's.
CANCEL_MARK = "wes-gateway-cancel"
# One squeue line: the fields below, each followed by "|".
SQUEUE_FIELDS = "JobID:|,Name:|,State:|,exit_code:|,Reason:|,Comment:|"
SACCT_FIELDS = "JobIDRaw,JobName,State,ExitCode,Comment"
_SECTION = "--wes-gateway-sacct--"
READ_LIMIT = 4 * 1024 * 1024  # console bytes read in one go
# Words of a failed sbatch that leave it unknown whether the job was made.
_UNKNOWN_OUTCOME = ("timed out", "Unable to contact", "Socket timed out", "Zero Bytes")

# Slurm's job states (squeue's %T, sacct's State) that are not an end, and what they are.
_LIVE: dict[str, BackendStatus] = {
    "PENDING": BackendStatus.PENDING,
    "CONFIGURING": BackendStatus.PENDING,
    "REQUEUED": BackendStatus.PENDING,
    "REQUEUE_FED": BackendStatus.PENDING,
    "REQUEUE_HOLD": BackendStatus.PENDING,
    "RESV_DEL_HOLD": BackendStatus.PENDING,
    "RESIZING": BackendStatus.PENDING,
    "RUNNING": BackendStatus.RUNNING,
    "COMPLETING": BackendStatus.RUNNING,
    "SIGNALING": BackendStatus.RUNNING,
    "STAGE_OUT": BackendStatus.RUNNING,
    "SUSPENDED": BackendStatus.RUNNING,
    "STOPPED": BackendStatus.RUNNING,
}
# The end states other than COMPLETED, FAILED and CANCELLED (decided in report_of): what
# each means for the run, and why, for its system logs.
_ENDINGS: dict[str, tuple[BackendStatus, str]] = {
    "TIMEOUT": (BackendStatus.FAILED, "the head job reached its time limit (TIMEOUT)"),
    "DEADLINE": (BackendStatus.FAILED, "the head job reached its deadline (DEADLINE)"),
    "OUT_OF_MEMORY": (BackendStatus.SYSTEM_FAILED, "the head job ran out of memory"),
    "NODE_FAIL": (BackendStatus.SYSTEM_FAILED, "the head job's node failed (NODE_FAIL)"),
    "BOOT_FAIL": (BackendStatus.SYSTEM_FAILED, "the head job's node failed to boot"),
    "PREEMPTED": (BackendStatus.PREEMPTED, "the head job was preempted"),
    "REVOKED": (BackendStatus.SYSTEM_FAILED, "the head job was revoked by another cluster"),
    "SPECIAL_EXIT": (BackendStatus.FAILED, "the head job ended in SPECIAL_EXIT"),
}


@dataclass(frozen=True)
class SlurmJob:
    """One job as squeue or sacct describe it."""

    job_id: str
    name: str
    state: str  # the first word: sacct says "CANCELLED by 1000"
    detail: str  # the rest of sacct's state ("by 1000"), or squeue's reason
    exit_code: int | None
    signal: int | None
    comment: str


def report_of(job: SlurmJob) -> JobReport:
    """The one table from Slurm's job states and exit codes to the run's."""
    if job.state in _LIVE:
        return JobReport(_LIVE[job.state])
    code = job.exit_code
    if job.state == "COMPLETED":
        return JobReport(BackendStatus.SUCCEEDED, exit_code=code or 0)
    if job.state == "CANCELLED":
        if CANCEL_MARK in job.comment:
            return JobReport(BackendStatus.STOPPED, exit_code=code, message="cancelled")
        by = f" ({job.detail})" if job.detail and job.detail != "None" else ""
        return JobReport(
            BackendStatus.SYSTEM_FAILED,
            exit_code=code,
            message=f"the head job was cancelled outside the service: CANCELLED{by}",
        )
    if job.state in _ENDINGS:
        status, why = _ENDINGS[job.state]
        return JobReport(status, exit_code=code, message=why)
    if job.state == "FAILED":
        if job.signal:
            return JobReport(
                BackendStatus.SYSTEM_FAILED,
                exit_code=code,
                message=f"the head job was killed by signal {job.signal}",
            )
        return head_job.failed(code, f"Slurm job state FAILED ({job.detail})", "Slurm")
    return JobReport(
        BackendStatus.SYSTEM_FAILED, exit_code=code, message=f"Slurm job state {job.state}"
    )


def _squeue_job(line: str) -> SlurmJob | None:
    parts = line.split("|")
    if len(parts) < 6 or not parts[0].strip():
        return None
    job_id, name, state, raw, reason, comment = (part.strip() for part in parts[:6])
    try:
        status = int(raw)
    except ValueError:
        status = None
    # squeue's exit_code is the wait status: the code in its high byte, a signal below.
    return SlurmJob(
        job_id=job_id,
        name=name,
        state=state,
        detail=reason,
        exit_code=None if status is None else status >> 8,
        signal=None if status is None else (status & 0x7F) or None,
        comment="" if comment == "(null)" else comment,
    )


def _sacct_job(line: str) -> SlurmJob | None:
    parts = line.split("|")
    if len(parts) < 5 or not parts[0].strip():
        return None
    job_id, name, state, exit_code, comment = parts[:5]
    words = state.split(None, 1)
    code, _, signal = exit_code.partition(":")
    return SlurmJob(
        job_id=job_id.strip(),
        name=name.strip(),
        state=words[0] if words else "",
        detail=words[1] if len(words) > 1 else "",
        exit_code=int(code) if code.isdigit() else None,
        signal=int(signal) if signal.isdigit() and int(signal) else None,
        comment=comment.strip(),
    )


# -- running commands on the cluster ---------------------------------------------------


class CommandFailed(Exception):
    """The connection to the cluster failed (SSH refused us, or the link broke)."""


@dataclass(frozen=True)
class Result:
    code: int
    data: bytes  # standard output
    err: str

    @property
    def out(self) -> str:
        return self.data.decode(errors="replace")


class Shell:
    """Runs shell command lines on the login node. Every command a backend runs goes
    through ``run``, which counts it by its program (for /metrics and the tests)."""

    def __init__(self) -> None:
        self.programs: list[str] = []

    def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        timeout: float = 60,
        program: str | None = None,
    ) -> Result:
        """``program``: what the command is counted as (its first word by default)."""
        program = program or (command.split(None, 1)[0] if command.strip() else "")
        self.programs.append(program)
        metrics.cloud_call(compute_envs.SLURM, program)
        return self._run(command, stdin, timeout)

    def _run(self, command: str, stdin: bytes | None, timeout: float) -> Result:
        raise NotImplementedError


class LocalShell(Shell):
    """The worker's own machine (``hostName: localhost`` where the operator allows it)."""

    def _run(self, command: str, stdin: bytes | None, timeout: float) -> Result:
        try:
            done = subprocess.run(
                ["/bin/bash", "-c", command],
                input=stdin or b"",
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CommandFailed(str(exc)) from exc
        return Result(done.returncode, done.stdout, _text(done.stderr))


def _text(data: bytes) -> str:
    return data.decode(errors="replace").strip()


# SSH connections of this process, one per login node, user, key and known_hosts file.
_connections: dict[tuple, paramiko.SSHClient] = {}
_connections_lock = threading.Lock()


_PARAMIKO_KEYS = {
    "rsa": paramiko.RSAKey,
    "ecdsa": paramiko.ECDSAKey,
    "ed25519": paramiko.Ed25519Key,
}


def stored_key(keys: OpenedKeys) -> paramiko.PKey:
    """The private key of named ``ssh`` credentials, opened in memory (never written to a
    file or put on a command line)."""
    text, passphrase = keys.fields.get("privateKey") or "", keys.fields.get("passphrase")
    try:
        kind, _ = load_private_key(text, passphrase)
        return _PARAMIKO_KEYS[kind].from_private_key(io.StringIO(text), password=passphrase)
    except (UnusableKey, paramiko.SSHException) as exc:
        raise credentials.CredentialsUnusable(
            f"the ssh credentials {keys.name!r} cannot be used: {exc}"
        ) from None


class SshShell(Shell):
    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        key_file: str | None,
        known_hosts: Path | None,
        timeout: float,
        pkey: paramiko.PKey | None = None,
    ) -> None:
        """``pkey``: a stored key (named credentials); else ``key_file``; else the
        worker's own keys and agent."""
        super().__init__()
        self.host, self.port, self.user = host, port, user
        self.key_file = key_file
        self.pkey = pkey
        self.known_hosts = known_hosts
        self.timeout = timeout
        # Connections are shared by what signs in, named by the key's public fingerprint.
        signer = pkey.fingerprint if pkey is not None else key_file
        self.key = (host, port, user, signer, str(known_hosts))

    @property
    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def _connect(self) -> paramiko.SSHClient:
        with _connections_lock:
            client = _connections.get(self.key)
            transport = client.get_transport() if client else None
            if transport is not None and transport.is_active():
                return client
            client = paramiko.SSHClient()
            known = self.known_hosts or Path("~/.ssh/known_hosts").expanduser()
            if known.is_file():
                client.load_host_keys(str(known))
            # Never trust a key on first sight: an unknown host is refused.
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                client.connect(
                    self.host,
                    port=self.port,
                    username=self.user,
                    pkey=self.pkey,
                    key_filename=None if self.pkey else self.key_file,
                    look_for_keys=self.pkey is None and self.key_file is None,
                    allow_agent=self.pkey is None and self.key_file is None,
                    timeout=self.timeout,
                    banner_timeout=self.timeout,
                    auth_timeout=self.timeout,
                )
            except paramiko.BadHostKeyException as exc:
                client.close()
                raise CommandFailed(
                    f"the host key of {self.host}:{self.port} is not the one known_hosts "
                    f"({known}) holds: {exc}"
                ) from exc
            except (paramiko.SSHException, OSError) as exc:
                client.close()
                raise CommandFailed(f"SSH to {self.where} failed: {exc}") from exc
            _connections[self.key] = client
            return client

    def _run(self, command: str, stdin: bytes | None, timeout: float) -> Result:
        client = self._connect()
        try:
            standard_input, output, errors = client.exec_command(command, timeout=timeout)
            if stdin:
                standard_input.write(stdin)
            standard_input.channel.shutdown_write()
            out = output.read()
            err = errors.read()
            code = output.channel.recv_exit_status()
            output.channel.close()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            with _connections_lock:
                if _connections.get(self.key) is client:
                    del _connections[self.key]
            client.close()
            raise CommandFailed(f"the SSH connection to {self.where} failed: {exc}") from exc
        return Result(code, out, _text(err))


def close_connections() -> None:
    """Close this process's SSH connections (tests, shutdown)."""
    with _connections_lock:
        for client in _connections.values():
            client.close()
        _connections.clear()


# -- the backend -------------------------------------------------------------------------


def q(value: str) -> str:
    return shlex.quote(value)


class SlurmBackend(Backend):
    platform = compute_envs.SLURM

    def __init__(self, config: Mapping[str, Any], shell: Shell, create_timeout: float = 30.0):
        """``create_timeout``: seconds the sbatch call may take (the settings' budget)."""
        self.config = dict(config)
        self.shell = shell
        self.user = self.config["userName"]
        self.work_dir = self.config["workDir"]
        self.launch_root = self.config.get("launchDir") or self.work_dir
        self.create_timeout = create_timeout

    @classmethod
    def from_settings(cls, settings: Any, config: dict[str, Any]) -> SlurmBackend:
        host = config["hostName"]
        if host == "localhost" and settings.slurm_local:
            shell: Shell = LocalShell()
        else:
            keys = config.get("credentials")
            shell = SshShell(
                host,
                int(config.get("port") or compute_envs.DEFAULT_SSH_PORT),
                config["userName"],
                config.get("sshKeyFile"),
                settings.ssh_known_hosts,
                settings.ssh_timeout,
                pkey=stored_key(keys) if keys is not None else None,
            )
        return cls(config, shell, create_timeout=settings.create_budget)

    # -- names and files on the cluster ----------------------------------------------------

    @staticmethod
    def job_name(run_id: str) -> str:
        return f"nf-{run_id}"

    def launch_dir(self, run_id: str) -> str:
        return f"{self.launch_root}/{self.job_name(run_id)}"

    def console_path(self, run_id: str) -> str:
        return f"{self.launch_dir(run_id)}/{run_files.console_name(run_id)}"

    def _handle(self, run_id: str, job_id: str) -> str:
        return json.dumps({"job": job_id, "run": run_id, "out": self.console_path(run_id)})

    def command(self, run: RunSnapshot) -> list[str]:
        return head_job.command(run)

    def script(self, run: RunSnapshot) -> str:
        """The batch script: the head job's variables, then the launcher running Nextflow."""
        environment = head_job.environment(self.platform, self.config, run)
        environment["NXF_LAUNCH_DIR"] = self.launch_dir(run.run_id)
        environment.pop("NXF_OUT_FILE", None)  # the job's output file is the console
        lines = ["#!/bin/bash", f"# the head job of run {run.run_id}"]
        lines += [f"export {name}={q(value)}" for name, value in environment.items()]
        lines.append("set -- " + shlex.join(self.command(run)))
        lines.append(head_job.launcher(copy_console=False).strip())
        return "\n".join(lines) + "\n"

    def sbatch_command(self, run: RunSnapshot) -> str:
        folder = self.launch_dir(run.run_id)
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={self.job_name(run.run_id)}",
            f"--output={self.console_path(run.run_id)}",
            f"--chdir={folder}",
            # A head job that failed with its node is not started again behind our back:
            # the run fails, and a resume is the user's choice.
            "--no-requeue",
        ]
        if self.config.get("headQueue"):
            argv.append(f"--partition={self.config['headQueue']}")
        argv += shlex.split(self.config.get("headJobOptions") or "")
        argv.append(f"{folder}/{self.job_name(run.run_id)}.sbatch")
        return shlex.join(argv)

    # -- the contract ------------------------------------------------------------------------

    def check(self) -> str | None:
        try:
            partitions = self.shell.run("sinfo --noheader --format='%R|%a'")
            if partitions.code != 0:
                return f"sinfo failed on the cluster: {partitions.err or partitions.out}"
            states = dict(
                line.split("|", 1) for line in partitions.out.split() if line.count("|") == 1
            )
            for key in ("headQueue", "computeQueue"):
                name = self.config.get(key)
                if name and name not in states:
                    known = ", ".join(sorted(states)) or "none"
                    return f"{key}: Slurm has no partition {name!r} (partitions: {known})"
                if name and states[name] != "up":
                    return f"{key}: Slurm partition {name!r} is {states[name]}"
            queue = self.shell.run(f"squeue --noheader --user={q(self.user)} --format=%i")
            if queue.code != 0:
                return f"squeue failed on the cluster: {queue.err or queue.out}"
            folders = " ".join(q(folder) for folder in {self.work_dir, self.launch_root})
            writable = self.shell.run(
                f'for d in {folders}; do mkdir -p "$d" && test -w "$d" '
                '|| { echo "$d is not writable" >&2; exit 1; }; done'
            )
            if writable.code != 0:
                return f"workDir: {writable.err or 'not writable'}"
        except CommandFailed as exc:
            return str(exc)
        return None

    def list_outputs(self, query: OutputsQuery) -> run_outputs.Listing | None:
        """The regular files under the outdir on the cluster (relative to the run's launch
        folder there, as Nextflow takes it), by one ``find`` over the login node's
        connection: sorted by path, cut on the cluster one past the bound. ``find`` follows
        no symbolic link, so files published as links (Nextflow's ``symlink`` mode) are
        not listed on Slurm."""
        if run_outputs.scheme_of(query.outdir) is not None:
            return None
        result = self.shell.run(
            f"cd -- {q(self.launch_dir(query.run_id))} 2>/dev/null "
            f"&& cd -- {q(query.outdir)} 2>/dev/null || exit 0; pwd -P; "
            "find . -type f -printf '%P\\t%s\\0' 2>/dev/null | LC_ALL=C sort -z "
            f"| head -z -n {query.limit + 1}",
            timeout=120,
            program="find",
        )
        if result.code != 0:
            raise CommandFailed(f"listing the outdir failed: {result.err or result.out}")
        root, _, listed = result.data.partition(b"\n")
        if not root:
            return run_outputs.Listing()
        base = root.decode(errors="replace").rstrip("/")

        def found():
            for entry in listed.split(b"\0"):
                path, tab, size = entry.decode(errors="replace").rpartition("\t")
                if tab and size.isdigit():
                    yield run_outputs.OutputFile(path, f"{base}/{path}", int(size))

        return run_outputs.bounded(found(), query.limit)

    def find(self, run: RunSnapshot) -> str | None:
        """The newest job of the run's name that slurmctld knows, or else the accounting
        database (where there is one): both asked in one command."""
        name = q(self.job_name(run.run_id))
        try:
            result = self.shell.run(
                f"{self._squeue_command(f'--name={name}')} || exit 3; echo {_SECTION}; "
                f"{self._sacct_command(f'--name={name}')} 2>/dev/null; true",
                program="squeue+sacct",
            )
        except CommandFailed as exc:
            raise SubmitUnknown(f"looking for the head job on the cluster failed: {exc}") from exc
        if result.code != 0:
            raise SubmitUnknown(f"squeue failed looking for the head job: {result.err}")
        queued, _, accounted = result.out.partition(_SECTION + "\n")
        jobs = [*map(_squeue_job, queued.splitlines()), *map(_sacct_job, accounted.splitlines())]
        ids = [job.job_id for job in jobs if job and job.name == self.job_name(run.run_id)]
        if not ids:
            return None
        return self._handle(run.run_id, max(ids, key=_job_number))

    def submit(self, run: RunSnapshot, claim: Callable[[], None] = no_claim) -> Submission:
        head_job.check_pipeline(run, "Slurm")
        argv = self.command(run)
        existing = self.find(run)
        if existing is not None:
            return Submission(handle=existing, command=argv)
        folder = self.launch_dir(run.run_id)
        script = f"{folder}/{self.job_name(run.run_id)}.sbatch"
        body = self.script(run).encode()
        claim()
        try:
            # The script, readable by the cluster user alone (it holds the run's token),
            # comes on standard input; then sbatch, in the same command.
            result = self.shell.run(
                f"umask 077 && mkdir -p {q(folder)} && cat > {q(script)} && "
                + self.sbatch_command(run),
                stdin=body,
                timeout=self.create_timeout,
                program="sbatch",
            )
        except CommandFailed as exc:
            raise SubmitUnknown(f"sbatch did not answer: {exc}") from exc
        if result.code != 0:
            if any(words in result.err for words in _UNKNOWN_OUTCOME):
                raise SubmitUnknown(f"sbatch did not answer: {result.err}")
            raise SubmitError(f"Slurm refused the head job: {result.err or result.out}")
        job_id = result.out.strip().split(";", 1)[0]
        if not job_id.isdigit():
            raise SubmitUnknown(f"sbatch answered {result.out.strip()!r}, not a job id")
        return Submission(handle=self._handle(run.run_id, job_id), command=argv)

    def poll(self, handles: Sequence[str]) -> dict[str, JobReport]:
        by_id = {json.loads(handle)["job"]: handle for handle in dict.fromkeys(handles)}
        reports: dict[str, JobReport] = {}
        for job in self._squeue():
            if job.job_id in by_id:
                reports[by_id[job.job_id]] = report_of(job)
        gone = [job_id for job_id, handle in by_id.items() if handle not in reports]
        if gone:
            why = "Slurm no longer knows the job"
            try:
                for job in self._sacct(f"--jobs={','.join(gone)}", check=True):
                    if job.job_id in by_id and by_id[job.job_id] not in reports:
                        reports[by_id[job.job_id]] = report_of(job)
            except SacctFailed as exc:
                why = f"Slurm no longer knows the job, and sacct failed: {exc}"
            for job_id in gone:
                reports.setdefault(
                    by_id[job_id], JobReport(BackendStatus.SYSTEM_FAILED, message=why)
                )
        return reports

    def cancel(self, handle: str, *, force: bool = False) -> bool:
        """Marks the job as ours to stop, then ``scancel``: SIGTERM to every process of
        the job (Nextflow stops its tasks), SIGKILL after the cluster's KillWait; with
        ``force``, SIGKILL now."""
        job_id = json.loads(handle)["job"]
        signal = " --signal=KILL --full" if force else ""
        result = self.shell.run(
            f"scontrol update JobId={q(job_id)} Comment={CANCEL_MARK} >/dev/null 2>&1; "
            f"scancel{signal} {q(job_id)}"
        )
        if result.code != 0:
            log.info("scancel %s: %s", job_id, result.err)
        return result.code == 0

    def read_log(self, handle: str, cursor: str | None) -> tuple[list[str], str | None]:
        path = json.loads(handle)["out"]
        offset = int(cursor or 0)
        result = self.shell.run(
            f"tail -c +{offset + 1} {q(path)} 2>/dev/null | head -c {READ_LIMIT}"
        )
        data = result.data
        complete = data[: data.rfind(b"\n") + 1]
        lines = complete.decode(errors="replace").splitlines()
        return lines, str(offset + len(complete))

    # -- squeue and sacct -----------------------------------------------------------------

    def _squeue_command(self, *options: str) -> str:
        return " ".join(
            [
                "squeue --noheader --states=all",
                f"--user={q(self.user)} --Format={q(SQUEUE_FIELDS)}",
                *options,
            ]
        )

    def _sacct_command(self, *options: str) -> str:
        return " ".join(
            [
                "sacct --noheader --parsable2 --allocations",
                f"--user={q(self.user)} --format={SACCT_FIELDS}",
                *options,
            ]
        )

    def _squeue(self, *options: str) -> list[SlurmJob]:
        result = self.shell.run(self._squeue_command(*options))
        if result.code != 0:
            raise CommandFailed(f"squeue failed: {result.err}")
        return [job for job in map(_squeue_job, result.out.splitlines()) if job]

    def _sacct(self, *options: str, check: bool = False) -> list[SlurmJob]:
        result = self.shell.run(self._sacct_command(*options))
        if result.code != 0:
            if check:
                raise SacctFailed(result.err or result.out)
            return []
        return [job for job in map(_sacct_job, result.out.splitlines()) if job]


class SacctFailed(Exception):
    pass


def _job_number(job_id: str) -> int:
    head = job_id.split("_", 1)[0].split(".", 1)[0]
    return int(head) if head.isdigit() else -1
