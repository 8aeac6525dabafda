"""A real single-node Slurm cluster and an SSH server in a temporary folder, for tests.

Debian's ``slurm-wlm`` (slurmctld and slurmd on this machine, authenticated by a munged
of its own), with a generated ``slurm.conf`` (``proctrack/linuxproc``, no cgroups, one
node, a few partitions), and Debian's ``openssh-server`` on a free port with a throwaway
key and a known_hosts file holding its host key. Nothing touches /etc: every daemon reads
its files from the folder and every client finds the cluster by ``SLURM_CONF``.

``why_not()`` tells why the cluster cannot run here (so the tests skip saying so).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NODE = "wesgw-node"
# The head jobs' partition, the tasks', one whose jobs never start (DOWN: they queue and
# stay PENDING) and one whose jobs time out at once.
PARTITIONS = ("head", "work", "held", "brief")
BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "sacct", "scancel", "sinfo", "munged")


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def why_not() -> str | None:
    """Why a Slurm cluster cannot be started here, or None."""
    if os.name != "posix" or not Path("/proc").is_dir():
        return "Slurm runs on Linux only"
    missing = [name for name in (*BINARIES, "sshd", "ssh-keygen") if _which(name) is None]
    if missing:
        return (
            f"{', '.join(missing)} not installed (Debian: apt-get install slurm-wlm munge "
            "openssh-server)"
        )
    if os.geteuid() != 0:
        return "slurmd and munged of a test cluster run as root, and the tests do not"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(what: str, ready, timeout: float = 30.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} did not start in {timeout:g} s\n{tail}")
        time.sleep(0.1)


@dataclass
class Cluster:
    folder: Path
    ssh_port: int = 0
    host_key: str = ""  # the SSH server's public host key line ("ssh-ed25519 AAAA…")
    key_file: Path = field(default_factory=Path)  # the client's private key
    known_hosts: Path = field(default_factory=Path)
    processes: list[subprocess.Popen] = field(default_factory=list)
    pid_files: list[Path] = field(default_factory=list)
    time_limited_job: str = ""

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> str:
        """A Slurm command on the cluster, as an operator at its console would run it."""
        done = subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, timeout=30, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
        return done.stdout

    def jobs(self, name: str | None = None) -> list[dict[str, str]]:
        """The jobs slurmctld knows (all states), as {id, name, state}."""
        out = self.run("squeue", "--noheader", "--states=all", "--format=%i %j %T")
        jobs = [
            dict(zip(("id", "name", "state"), line.split(), strict=True))
            for line in out.splitlines()
        ]
        return [job for job in jobs if name is None or job["name"] == name]

    def wait_idle(self, timeout: float = 60) -> None:
        """Until the node takes jobs again."""

        def idle() -> bool:
            out = self.run("sinfo", "--noheader", "--partition=head", "--format=%T", check=False)
            return out.strip() in ("idle", "mixed", "allocated")

        _wait("the Slurm node", idle, timeout=timeout, log=self.folder / "slurmd.log")

    def cancel_all(self) -> None:
        """Cancel every job but the time-limited one."""
        out = self.run("squeue", "--noheader", "--format=%i", check=False)
        ids = [job_id for job_id in out.split() if job_id != self.time_limited_job]
        if ids:
            self.run("scancel", *ids, check=False)

    def start_time_limited_job(self) -> None:
        """A job in the partition whose jobs may run a minute. Slurm's smallest time limit
        is a minute, and slurmctld looks for jobs past theirs every 30 s: started with the
        cluster, it has reached TIMEOUT by the time the tests that want one run."""
        script = self.folder / "time-limited.sh"
        script.write_text("#!/bin/sh\nsleep 600\n")
        self.time_limited_job = self.run(
            "sbatch",
            "--parsable",
            "--partition=brief",
            "--job-name=time-limited",
            f"--output={self.folder / 'time-limited.out'}",
            str(script),
        ).strip()

    # -- starting and stopping --------------------------------------------------------

    def start(self) -> Cluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        self._start_munge()
        self._start_slurm()
        self._start_sshd()
        self.start_time_limited_job()
        return self

    def _start_munge(self) -> None:
        folder = self.folder / "munge"
        folder.mkdir(mode=0o700, exist_ok=True)
        key = folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.munge_socket = folder / "munge.socket"
        pid = folder / "munged.pid"
        subprocess.run(
            [
                _which("munged"),
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={pid}",
                f"--log-file={folder / 'munged.log'}",
                f"--seed-file={folder / 'munged.seed'}",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.pid_files.append(pid)
        _wait("munged", self.munge_socket.exists, log=folder / "munged.log")

    def _start_slurm(self) -> None:
        state = self.folder / "state"
        spool = self.folder / "spool"
        state.mkdir(exist_ok=True)
        spool.mkdir(exist_ok=True)
        self.ctld_port, self.slurmd_port = free_port(), free_port()
        host = socket.gethostname().split(".")[0]
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=wesgw",
                    f"SlurmctldHost={host}(127.0.0.1)",
                    f"SlurmctldPort={self.ctld_port}",
                    f"SlurmdPort={self.slurmd_port}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "CredType=cred/munge",
                    f"StateSaveLocation={state}",
                    f"SlurmdSpoolDir={spool}",
                    f"SlurmctldPidFile={self.folder / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.folder / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.folder / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.folder / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/none",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    "SchedulerType=sched/builtin",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",
                    # The node declares more CPUs than the machine has, so many small head
                    # jobs run at once.
                    "SlurmdParameters=config_overrides",
                    "ReturnToService=2",
                    "KillWait=5",
                    # Ended jobs stay in squeue for the whole suite (see time_limited_job).
                    "MinJobAge=3600",
                    "InactiveLimit=0",
                    "SlurmctldTimeout=30",
                    "SlurmdTimeout=30",
                    "MessageTimeout=20",
                    "SchedulerParameters=sched_interval=1",
                    f"NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={host} CPUs=32 "
                    "RealMemory=16000 State=UNKNOWN",
                    f"PartitionName=head Nodes={NODE} Default=YES MaxTime=INFINITE State=UP "
                    "OverSubscribe=FORCE:8",
                    f"PartitionName=work Nodes={NODE} MaxTime=INFINITE State=UP "
                    "OverSubscribe=FORCE:8",
                    f"PartitionName=held Nodes={NODE} MaxTime=INFINITE State=DOWN",
                    f"PartitionName=brief Nodes={NODE} MaxTime=1 State=UP OverSubscribe=FORCE:8",
                    "",
                ]
            )
        )
        env = self.env
        for daemon, args in (("slurmctld", ["-i"]), ("slurmd", ["-N", NODE])):
            subprocess.run(
                [_which(daemon), "-f", str(self.conf), *args],
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            self.pid_files.append(self.folder / f"{daemon}.pid")
        self.wait_idle()

    def _start_sshd(self) -> None:
        folder = self.folder / "ssh"
        folder.mkdir(mode=0o700, exist_ok=True)
        host_key = folder / "host_ed25519"
        self.key_file = folder / "client_ed25519"
        for key in (host_key, self.key_file):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                check=True,
                capture_output=True,
            )
        authorized = folder / "authorized_keys"
        authorized.write_text(self.key_file.with_suffix(".pub").read_text())
        self.ssh_port = free_port()
        self.host_key = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
        self.known_hosts = folder / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.ssh_port} {self.host_key}\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        home = self.folder / "home"
        home.mkdir(exist_ok=True)
        config = folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.ssh_port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {authorized}",
                    f"PidFile {folder / 'sshd.pid'}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "MaxSessions 200",
                    "MaxStartups 100",
                    # The login node's own Slurm configuration, and a home of its own (not
                    # the machine's root, whose shell start-up files take 0.1 s a command).
                    f"SetEnv SLURM_CONF={self.conf} HOME={home}",
                    "",
                ]
            )
        )
        sshd = _which("sshd")
        process = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(folder / "sshd.log").open("w"),
            start_new_session=True,
        )
        self.processes.append(process)

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError((folder / "sshd.log").read_text())
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", self.ssh_port)) == 0

        _wait("sshd", listening, log=folder / "sshd.log")

    def stop(self) -> None:
        self.time_limited_job = ""
        self.cancel_all()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        for pid_file in reversed(self.pid_files):
            try:
                pid = int(pid_file.read_text().strip())
            except (FileNotFoundError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The suite's Slurm cluster and SSH server, started once (skips where they cannot
    run, saying why)."""
    reason = why_not()
    if reason:
        pytest.skip(f"no Slurm cluster: {reason}")
    # A short path of its own: sockets live in it.
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="wesgw-slurm-")))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.folder, ignore_errors=True)


@pytest.fixture
def slurm(slurm_cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, with no job of an earlier test left and its node up."""
    yield slurm_cluster
    slurm_cluster.cancel_all()
    slurm_cluster.run("scontrol", "update", f"NodeName={NODE}", "State=RESUME", check=False)
