"""What the workers do to runs: submit, poll, cancel and sweep.

Each function is short and takes ids, not rows: it opens its own sessions, never holds
one across a backend call, and changes states only through the state machine's
compare-and-set, so workers may race, crash or repeat a task without harm. No function
waits for a run to finish; the periodic poll moves every active run along.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select, update

from wes_gateway.domain import (
    compute_envs,
    credentials,
    pipeline_secrets,
    run_files,
    run_outputs,
    tokens,
)
from wes_gateway.domain.ids import is_run_id
from wes_gateway.domain.launch import RunSnapshot
from wes_gateway.domain.models import ComputeEnv, Run, User
from wes_gateway.domain.runs import READY_TO_PURGE, purge, ready_to_purge
from wes_gateway.domain.states import (
    STATE_OF,
    TERMINAL,
    BackendStatus,
    State,
    end_state,
    is_terminal,
)
from wes_gateway.domain.transitions import transition
from wes_gateway.infra import logs, metrics
from wes_gateway.infra.config import TOWER_BASE_PATH, Settings
from wes_gateway.infra.db import Database
from wes_gateway.infra.sealing import Sealer
from workers.backends import make_backend
from workers.backends.base import (
    Backend,
    ClaimLost,
    JobReport,
    OutputsQuery,
    Submission,
    SubmitError,
    SubmitUnknown,
)
from workers.built_backends import BuiltBackends

log = logging.getLogger(__name__)
T = TypeVar("T")

# The key under which a backend's config carries the id of the credentials it names.
CREDENTIALS_ID = "credentialsId"

# States in which a run has (or should have) a head job to watch.
WATCHED = (State.INITIALIZING, State.RUNNING, State.PAUSED, State.CANCELING, State.UNKNOWN)


@dataclass(frozen=True)
class Executor:
    """The database, the settings, and a way to build backends (tests may swap it)."""

    db: Database
    settings: Settings
    backend_for: Callable[[str | None, dict], Backend] | None = None
    built: BuiltBackends = field(default_factory=BuiltBackends, compare=False, repr=False)

    def backend(self, platform: str | None, config: dict) -> Backend:
        if self.backend_for is not None:
            return self.backend_for(platform, config)
        opened = self.with_keys(config)
        return self.built.get(
            platform, opened, lambda: make_backend(platform, self.settings, opened)
        )

    @property
    def sealer(self) -> Sealer:
        return Sealer(self.settings.credentials_keys)

    def with_keys(self, config: dict) -> dict:
        """A compute environment's config with the credentials it names opened (under
        ``credentials``), for its backend; the SDK default chain when it names none."""
        credentials_id = config.get(CREDENTIALS_ID)
        if not credentials_id:
            return config
        with self.db.session() as session:
            keys = credentials.open_keys(session, credentials_id, self.sealer)
        return {**config, "credentials": keys}

    def run_dir(self, run_id: str) -> Path:
        return self.settings.run_dir(run_id)


def _now() -> datetime:
    return datetime.now(UTC)


def _compute_env(session, compute_env_id: str | None) -> tuple[str | None, dict]:
    """The platform and config of a compute environment; (None, {}) means local."""
    env = session.get(ComputeEnv, compute_env_id) if compute_env_id else None
    if env is None:
        return None, {}
    return env.platform, _config(env)


def _config(env: ComputeEnv) -> dict:
    """The config a backend is built from: the stored one, and the id of the credentials
    it names (opened by ``Executor.with_keys``)."""
    config = dict(env.config or {})
    if env.credentials_id:
        config[CREDENTIALS_ID] = env.credentials_id
    return config


def snapshot(run: Run, run_dir: Path) -> RunSnapshot:
    options = (run.request or {}).get("workflow_engine_parameters", {})
    pipeline = run.pipeline or ""
    local = (run_files.launch_dir(run_dir) / pipeline).is_file() if pipeline else False
    resumed = options.get("resume") not in (None, "", "false")
    # The launch folder whose .nextflow (history and cache) the run uses: its own, or that
    # of the run that began the session it resumes.
    session_folder = run_files.launch_dir(
        run_dir.parent / run.cache_run_id if run.cache_run_id else run_dir
    )
    return RunSnapshot(
        run_id=run.id,
        pipeline=str(run_files.launch_dir(run_dir) / pipeline) if local else pipeline,
        pipeline_is_local=local,
        run_dir=run_dir,
        params=dict(run.params or {}),
        revision=run.revision,
        profile=run.profile,
        config_text=run.config_text,
        entry=options.get("entry") or None,
        # The launch's own script, else the one its TRS workflow's descriptor names.
        main_script=options.get("main_script") or (run.trs or {}).get("main_script") or None,
        # A resumed run names its session: Nextflow's "last" would be the last run of
        # the session's folder, not necessarily the one the launch chose.
        resume=run.session_id if resumed and run.session_id else (options.get("resume") or None),
        latest=options.get("latest") == "true",
        stub_run=options.get("stub_run") == "true",
        preview=options.get("preview") == "true",
        dump_hashes=options.get("dump_hashes") == "true",
        with_report=options.get("with_report") or None,
        with_trace=options.get("with_trace") or None,
        with_dag=options.get("with_dag") or None,
        engine_version=(run.request or {}).get("workflow_engine_version") or None,
        run_name=run.run_name,
        session_id=run.session_id,
        work_dir=run.work_dir if resumed or options.get("work_dir") else None,
        cache_dir=session_folder / ".nextflow",
        pre_run_script=options.get("pre_run_script") or None,
        post_run_script=options.get("post_run_script") or None,
        head_job_cpus=int(options["head_job_cpus"]) if options.get("head_job_cpus") else None,
        head_job_memory_mb=(
            int(options["head_job_memory_mb"]) if options.get("head_job_memory_mb") else None
        ),
    )


# A submit whose answer was lost is tried again, looking for the job first, up to this
# many times in all; later attempts only look, and the run fails if none is found.
MAX_CREATE_ATTEMPTS = 5
# Looking may fail too (the platform unreachable): after this many attempts the run fails.
MAX_SUBMIT_ATTEMPTS = 2 * MAX_CREATE_ATTEMPTS


def submit(executor: Executor, run_id: str) -> None:
    """Take a QUEUED run (compare-and-set to INITIALIZING) and start its head job.

    A run left INITIALIZING without a job (a submit that died, or whose create had no
    known outcome) is taken over once it is older than ``submit_stale_after``; the
    backend then finds the job that submit may have started already. A job is never
    started twice: the create call is held within ``create_budget`` (half that window)
    right after the claim is renewed, so no takeover can overlap it; and the handle is
    stored by compare-and-set, the loser of any race stopping its own job.
    """
    with executor.db.session() as session:
        attempt = _claim(session, executor.settings, run_id)
        if attempt is None:
            return
        run = session.get(Run, run_id)
        env_id = run.compute_env_id
        platform, config = _compute_env(session, env_id)
        snap = _traced(session, executor.settings, run, snapshot(run, executor.run_dir(run_id)))
        try:
            snap = _with_secrets(session, executor, run, platform, snap)
        except (credentials.CredentialsUnusable, pipeline_secrets.SecretsUnusable) as exc:
            problem = str(exc)
        else:
            problem = None
    if problem is not None:
        _fail(executor, run_id, problem)
        return
    try:
        backend = executor.backend(platform, config)
        submission = _start_or_find(executor, backend, snap, attempt)
    except ClaimLost:
        # Taken over, or cancelled before anything was created: a cancel is settled now.
        log.info("run %s is no longer this worker's to submit", run_id)
        _guarded(f"settling the cancel of run {run_id}", _settle_unstarted_cancel, executor, run_id)
        return
    except SubmitError as exc:
        _fail(executor, run_id, str(exc))
        return
    except SubmitUnknown as exc:
        _outcome_unknown(executor, run_id, attempt, str(exc))
        return
    except Exception as exc:
        log.exception("submitting run %s failed", run_id)
        _fail(executor, run_id, f"the head job could not be submitted: {exc}")
        return
    if submission is None:
        _fail(
            executor,
            run_id,
            f"the outcome of the head job's submission could not be known: {MAX_CREATE_ATTEMPTS} "
            "attempts to create it went unanswered, and no job of this run is found",
        )
        return
    _store(executor, backend, env_id, run_id, submission)


def _start_or_find(
    executor: Executor, backend: Backend, snap: RunSnapshot, attempt: int
) -> Submission | None:
    """Submit (the backend looks for an earlier attempt's job first), or after
    MAX_CREATE_ATTEMPTS only look for one; None: nothing found."""
    if attempt <= MAX_CREATE_ATTEMPTS:
        return backend.submit(snap, claim=lambda: _renew(executor, snap.run_id, attempt))
    try:
        return backend.adopt(snap)
    except Exception as exc:
        raise SubmitUnknown(f"looking for the head job failed: {exc}") from exc


def _store(
    executor: Executor, backend: Backend, env_id: str | None, run_id: str, submission: Submission
) -> None:
    """Store the handle unless one is stored already (compare-and-set); a job that lost
    that race is stopped, so only the stored one runs."""
    with executor.db.session() as session:
        _mark_used(session, env_id)
        stored = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.backend_handle.is_(None))
            .values(
                backend_handle=submission.handle,
                command=submission.command,
                command_line=shlex.join(submission.command),
            )
            .execution_options(synchronize_session=False)
        )
        run = session.get(Run, run_id, populate_existing=True)
        winner = run.backend_handle if run is not None else None
        cancelled_meanwhile = run is not None and run.state is State.CANCELING
        if stored.rowcount == 1 and submission.started:
            transition(
                session,
                run_id,
                State.RUNNING,
                "the head job started",
                allowed_from={State.INITIALIZING},
            )
    if winner != submission.handle:
        log.warning(
            "run %s already has head job %s; stopping the second one, %s",
            run_id,
            winner,
            submission.handle,
        )
        backend.cancel(submission.handle, force=True)
        return
    if cancelled_meanwhile:
        backend.cancel(submission.handle)
    log.info("run %s submitted: %s", run_id, submission.handle)


def _with_secrets(
    session, executor: Executor, run: Run, platform: str | None, snap: RunSnapshot
) -> RunSnapshot:
    """A local head job's secrets: the pipeline secrets its launch named, and the git
    credentials of its place for the host its pipeline is cloned from."""
    if platform not in (None, compute_envs.LOCAL):
        return snap
    options = (run.request or {}).get("workflow_engine_parameters", {})
    opened = pipeline_secrets.for_run(
        session, options, run.workspace_id, run.owner_id, executor.sealer
    )
    scope = credentials.scope_for(run.workspace_id, run.owner_id)
    git = None
    if not snap.pipeline_is_local and snap.pipeline:
        git = credentials.git_credentials_for(session, scope, snap.pipeline, executor.sealer)
    scm = credentials.scm_file_text(git, snap.pipeline) if git is not None else None
    if not opened and scm is None:
        return snap
    return replace(snap, secrets=opened, scm_config=scm)


def _claim(session, settings: Settings, run_id: str) -> int | None:
    """Take the run for this worker: a QUEUED run, or one whose submit went stale. Returns
    the number of this claim (the run's ``submit_attempts``), or None if it is not ours."""
    claimed = transition(
        session, run_id, State.INITIALIZING, "taken by a worker", allowed_from={State.QUEUED}
    )
    if claimed is None:
        return _take_over_stale_submit(session, settings, run_id)
    session.execute(
        update(Run).where(Run.id == run_id).values(submit_attempts=Run.submit_attempts + 1)
    )
    return session.execute(select(Run.submit_attempts).where(Run.id == run_id)).scalar_one()


def _renew(executor: Executor, run_id: str, attempt: int) -> None:
    """Called right before a create call: restarts the run's takeover clock, provided the
    run is still this claim's (not taken over, not cancelled, no job stored)."""
    with executor.db.session() as session:
        renewed = session.execute(
            update(Run)
            .where(
                Run.id == run_id,
                Run.state == State.INITIALIZING,
                Run.backend_handle.is_(None),
                Run.submit_attempts == attempt,
            )
            .values(updated_at=_now())
        )
    if renewed.rowcount != 1:
        raise ClaimLost(run_id)


def _outcome_unknown(executor: Executor, run_id: str, attempt: int, why: str) -> None:
    """The create's answer was lost: the run stays INITIALIZING, and the sweep sends it
    again after ``submit_stale_after`` (that submit looks for the job first)."""
    if attempt >= MAX_SUBMIT_ATTEMPTS:
        _fail(
            executor,
            run_id,
            f"the outcome of the head job's submission could not be known after {attempt} "
            f"attempts: {why}",
        )
        return
    log.warning("run %s: %s; its submit is tried again later (attempt %d)", run_id, why, attempt)
    with executor.db.session() as session:  # a full window before the next attempt
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.submit_attempts == attempt, Run.backend_handle.is_(None))
            .values(updated_at=_now())
        )


def _mark_used(session, compute_env_id: str | None) -> None:
    """Tower's ``lastUsed``, to the minute (one write a minute, not one a run)."""
    now = _now()
    session.execute(
        update(ComputeEnv)
        .where(
            ComputeEnv.id == compute_env_id,
            (ComputeEnv.last_used_at.is_(None))
            | (ComputeEnv.last_used_at < now - timedelta(minutes=1)),
        )
        .values(last_used_at=now)
    )


def _traced(session, settings: Settings, run: Run, snap: RunSnapshot) -> RunSnapshot:
    """The head job reports to us (-with-tower) with a token good for this run only, when
    we know the URL it can reach us at."""
    if not settings.public_url:
        log.warning("run %s: WES_GATEWAY_PUBLIC_URL is unset, so it runs untraced", run.id)
        return snap
    owner = session.get(User, run.owner_id)
    _, token = tokens.create_token(session, owner, run_id=run.id, description="head job token")
    return replace(
        snap, tower_url=settings.public_url.rstrip("/") + TOWER_BASE_PATH, tower_token=token
    )


def _take_over_stale_submit(session, settings: Settings, run_id: str) -> int | None:
    run = session.get(Run, run_id)
    if run is None or run.state is not State.INITIALIZING or run.backend_handle:
        return None
    stale_before = _now() - timedelta(seconds=settings.submit_stale_after)
    if run.updated_at > stale_before:
        return None  # another worker is submitting it right now
    # Claim the takeover itself by compare-and-set on the attempt counter, which it bumps,
    # so of two workers taking over at once only one succeeds.
    attempt = run.submit_attempts + 1
    result = session.execute(
        update(Run)
        .where(
            Run.id == run_id,
            Run.state == State.INITIALIZING,
            Run.backend_handle.is_(None),
            Run.submit_attempts == run.submit_attempts,
        )
        .values(submit_attempts=attempt, updated_at=_now())
    )
    return attempt if result.rowcount == 1 else None


def _fail(executor: Executor, run_id: str, reason: str) -> None:
    with executor.db.session() as session:
        session.get(Run, run_id).error_message = reason
        transition(session, run_id, State.SYSTEM_ERROR, reason)
    log.warning("run %s: %s", run_id, reason)


def poll_active(executor: Executor) -> int:
    """Poll every watched run's head job, one batched call per compute environment, and
    move each run to what its job reports; and settle the jobs of runs that ended before
    their job did (by their trace). A compute environment or a run that fails is logged
    and skipped; the others are polled all the same. Returns how many runs were polled."""
    columns = (Run.id, Run.state, Run.backend_handle, Run.compute_env_id, Run.updated_at)
    with executor.db.session() as session:
        rows = session.execute(
            select(*columns, Run.end_time).where(
                Run.state.in_(WATCHED), Run.backend_handle.is_not(None)
            )
        ).all()
        rows += session.execute(
            select(*columns, Run.end_time).where(
                Run.state.in_(TERMINAL),
                Run.backend_handle.is_not(None),
                Run.job_settled_at.is_(None),
            )
        ).all()
        groups: dict[str | None, list] = defaultdict(list)
        for row in rows:
            groups[row.compute_env_id].append(row)
        envs = {env_id: _compute_env(session, env_id) for env_id in groups}
    for env_id, group in groups.items():
        platform, config = envs[env_id]
        try:
            backend = executor.backend(platform, config)
            with metrics.timed(metrics.POLL_CYCLES.labels(backend.platform)):
                reports = backend.poll([row.backend_handle for row in group])
        except Exception:
            log.exception("polling compute environment %s failed", env_id or "local")
            continue
        for row in group:
            report = reports.get(row.backend_handle)
            if report is None:
                continue
            with logs.about_run(row.id):
                try:
                    if is_terminal(row.state):
                        _settle_job(executor, backend, row, report)
                    else:
                        _apply(executor, backend, row, report)
                except Exception:
                    log.exception("updating run %s failed", row.id)
    return len(rows)


def _copy_log(executor: Executor, backend: Backend, run_id: str, handle: str) -> None:
    """Append the head job's new console lines to the run's console file, where both
    APIs read it, for head jobs that run elsewhere. The cursor sits beside it, and a lock
    on it keeps two workers from appending the same lines."""
    run_dir = executor.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_files.console_cursor_file(run_dir).open("a+", encoding="utf-8") as cursor_file:
        fcntl.flock(cursor_file, fcntl.LOCK_EX)
        cursor_file.seek(0)
        cursor = cursor_file.read() or None
        lines, following = backend.read_log(handle, cursor)
        if lines:
            with run_files.console_file(run_dir, run_id).open("a", encoding="utf-8") as console:
                console.writelines(line + "\n" for line in lines)
        if following and following != cursor:
            cursor_file.truncate(0)
            cursor_file.write(following)


def refresh_log(executor: Executor, run_id: str) -> None:
    """Copy what a cloud head job printed since the last look (someone is reading it)."""
    with executor.db.session() as session:
        run = session.get(Run, run_id)
        if run is None or not run.backend_handle:
            return
        handle = run.backend_handle
        platform, config = _compute_env(session, run.compute_env_id)
    backend = executor.backend(platform, config)
    if backend.writes_console_to_run_folder:
        return
    _copy_log(executor, backend, run_id, handle)


def _apply(executor: Executor, backend: Backend, row, report: JobReport) -> None:
    if not report.finished:
        if row.state is State.CANCELING:
            # Ask again each poll (a stop that lands while the job is still starting can be
            # lost), and kill it once the grace period is over.
            overdue = _now() - row.updated_at > timedelta(seconds=executor.settings.cancel_grace)
            backend.cancel(row.backend_handle, force=overdue)
            return
        target = STATE_OF[report.status]
        if row.state in (State.INITIALIZING, State.UNKNOWN) and target is State.RUNNING:
            with executor.db.session() as session:
                transition(session, row.id, State.RUNNING, "the head job is running")
        return
    target = end_state(row.state, STATE_OF[report.status])
    copied = True
    if not backend.writes_console_to_run_folder:
        # The last lines, before the run is seen to end; read while it runs on demand.
        try:
            _copy_log(executor, backend, row.id, row.backend_handle)
            if target is State.CANCELED:
                backend.release(row.backend_handle)
        except Exception:
            copied = False  # the run ends all the same; the next poll settles its job
            log.warning("reading the console log of run %s failed", row.id, exc_info=True)
    with executor.db.session() as session:
        run = session.get(Run, row.id)
        if report.exit_code is not None:
            run.exit_status = report.exit_code
        if report.message and target is not State.CANCELED:
            run.error_message = report.message
        if target in (State.EXECUTOR_ERROR, State.SYSTEM_ERROR) and run.last_seen_at is None:
            # It failed before any trace call reached us: only its console says why.
            run_files.record_console_error(run, executor.run_dir(run.id))
        reason = report.message or f"the head job ended ({report.status.value})"
        if transition(session, row.id, target, reason) is not None and copied:
            run.job_settled_at = _now()  # else the next poll settles its job
        if run.deleted_at is not None and ready_to_purge(run):
            purge(session, row.id, executor.run_dir(row.id))
            return
    _guarded(f"listing the outputs of run {row.id}", collect_outputs, executor, backend, row.id)


def _settle_job(executor: Executor, backend: Backend, row, report: JobReport) -> None:
    """The head job of a run that ended before the poll saw the job end (its trace's
    ``complete`` came first). Once the job has ended: copy its last console lines, keep
    its exit code and the platform's reason in the run's system logs, and mark it
    settled. A job still running ``job_end_grace`` after its run ended is stopped (and
    killed once ``cancel_grace`` more has passed); the next poll settles it."""
    if not report.finished:
        overdue = _now() - (row.end_time or row.updated_at)
        grace = timedelta(seconds=executor.settings.job_end_grace)
        if overdue > grace:
            log.warning("run %s ended %s ago, its head job has not: stopping it", row.id, overdue)
            kill = overdue > grace + timedelta(seconds=executor.settings.cancel_grace)
            backend.cancel(row.backend_handle, force=kill)
        return
    if not backend.writes_console_to_run_folder:
        _copy_log(executor, backend, row.id, row.backend_handle)
        if report.status is BackendStatus.STOPPED:
            backend.release(row.backend_handle)
    with executor.db.session() as session:
        settled = session.execute(
            update(Run)
            .where(Run.id == row.id, Run.job_settled_at.is_(None))
            .values(job_settled_at=_now())
        )
        if settled.rowcount != 1:
            return  # another worker settled it
        run = session.get(Run, row.id)
        if run.exit_status is None and report.exit_code is not None:
            run.exit_status = report.exit_code
        _system_note(run, _job_end_note(run.state, report, executor.settings.job_end_grace))
        if run.deleted_at is not None:
            purge(session, row.id, executor.run_dir(row.id))
            return
    _guarded(f"listing the outputs of run {row.id}", collect_outputs, executor, backend, row.id)


def collect_outputs(executor: Executor, backend: Backend, run_id: str) -> None:
    """List what an ended run published under its ``params.outdir`` (once: when its head
    job has ended, so every file is published) and store it as its WES outputs. A run
    without an outdir, or whose platform cannot list it, keeps none."""
    with executor.db.session() as session:
        run = session.get(Run, run_id)
        if run is None or not is_terminal(run.state) or run.outputs_truncated is not None:
            return
        outdir = run_outputs.outdir_of(run)
        query = OutputsQuery(
            run_id=run_id,
            outdir=outdir or "",
            limit=executor.settings.max_outputs,
            run_dir=executor.run_dir(run_id),
            data_dir=executor.settings.data_dir,
            work_dir=run.work_dir,
        )
    failure = None
    try:
        listing = backend.list_outputs(query) if outdir else None
    except Exception as exc:  # the platform's refusal (no such bucket, access denied, ...)
        log.warning("listing the outputs of run %s failed", run_id, exc_info=True)
        listing, failure = None, f"the outputs under {outdir} could not be listed: {_said(exc)}"
    with executor.db.session() as session:
        run = session.get(Run, run_id)
        if run is None or run.outputs_truncated is not None:
            return  # another worker listed it
        run_outputs.record(run, listing or run_outputs.Listing())
        _system_note(run, failure)
    if listing is not None:
        log.info(
            "run %s published %d files%s",
            run_id,
            len(listing.files),
            " (and more, not listed)" if listing.truncated else "",
        )


def _system_note(run: Run, note: str | None) -> None:
    """Add ``note`` to what the run's system logs say (once)."""
    if note and note not in (run.error_message or ""):
        run.error_message = "\n".join(filter(None, (run.error_message, note)))


def _said(error: Exception) -> str:
    """What an error from a platform's API says, on one bounded line."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:299] + "…"


def _job_end_note(state: State, report: JobReport, grace: float) -> str | None:
    """What the platform says of a job that ended after its run, for the system logs."""
    if report.status is BackendStatus.STOPPED and state is not State.CANCELED:
        return (
            f"the head job was still running {grace:g} s after the run ended "
            f"({state.value}); it was stopped"
        )
    if report.message and report.status is not BackendStatus.STOPPED:
        return f"the head job ended {report.status.value}: {report.message}"
    if STATE_OF[report.status] is not state and report.status is not BackendStatus.STOPPED:
        return f"the head job ended {report.status.value} after the run ended {state.value}"
    return None


def check_compute_env(executor: Executor, env_id: str) -> str:
    """Try a compute environment against its platform and mark it AVAILABLE or INVALID
    (with the platform's words). Returns the new status."""
    with executor.db.session() as session:
        env = session.get(ComputeEnv, env_id)
        if env is None or env.deleted:
            return "DELETED"
        platform, config = env.platform, _config(env)
    try:
        problem = executor.backend(platform, config).check()
    except Exception as exc:
        problem = f"the compute environment could not be checked: {exc}"
    status = "INVALID" if problem else "AVAILABLE"
    with executor.db.session() as session:
        session.execute(
            update(ComputeEnv)
            .where(ComputeEnv.id == env_id, ~ComputeEnv.deleted)
            .values(status=status, message=problem, updated_at=_now())
        )
    if problem:
        log.warning("compute environment %s is invalid: %s", env_id, problem)
    return status


def cancel(executor: Executor, run_id: str) -> None:
    """Ask a CANCELING run's head job to stop; the poll finishes the move to CANCELED
    (and kills the job if it outlives the grace period). A run cancelled before its job
    was started is cancelled by its submit instead."""
    with executor.db.session() as session:
        run = session.get(Run, run_id)
        if run is None or run.state is not State.CANCELING:
            return
        handle = run.backend_handle
        platform, config = _compute_env(session, run.compute_env_id)
    if handle is None:
        return
    if not executor.backend(platform, config).cancel(handle):
        poll_active(executor)


def sweep(executor: Executor, resend: Callable[[str], object]) -> list[str]:
    """Re-send the submit of runs no worker took: QUEUED for longer than
    ``requeue_after`` (a lost message) and INITIALIZING without a job for longer than
    ``submit_stale_after`` (a worker died mid-submit, or its create had no known
    outcome). Returns their ids. Then the sweep's other duties: runs silent too long,
    runs cancelled while such a submit was under way, deleted runs, unchecked compute
    environments. Re-sending comes first, and each step and each run is on its own: one
    that fails is logged, and the rest are done all the same."""
    run_ids = _guarded("sweep: finding runs to re-send", _runs_to_resend, executor) or []
    for run_id in run_ids:
        _guarded(f"re-sending run {run_id}", resend, run_id)
    for step in (
        _settle_unstarted_cancels,
        _time_out_silent_runs,
        _purge_deleted,
        _check_unchecked_envs,
    ):
        _guarded("sweep: " + step.__name__.strip("_").replace("_", " "), step, executor)
    return run_ids


def _guarded(what: str, step: Callable[..., T], *args: object) -> T | None:
    """``step(*args)``, or None when it raised (logged: the caller goes on)."""
    try:
        return step(*args)
    except Exception:
        log.exception("%s failed", what)
        return None


def _runs_to_resend(executor: Executor) -> list[str]:
    settings = executor.settings
    now = _now()
    with executor.db.session() as session:
        queued = select(Run.id).where(
            Run.state == State.QUEUED,
            Run.source != "trace",
            Run.updated_at < now - timedelta(seconds=settings.requeue_after),
        )
        interrupted = select(Run.id).where(
            Run.state == State.INITIALIZING,
            Run.source != "trace",
            Run.backend_handle.is_(None),
            Run.updated_at < now - timedelta(seconds=settings.submit_stale_after),
        )
        run_ids = list(session.execute(queued.limit(500)).scalars())
        run_ids += list(session.execute(interrupted.limit(500)).scalars())
        if run_ids:
            # So the next sweep waits a full period before re-sending these again.
            session.execute(
                update(Run)
                .where(Run.id.in_(run_ids), Run.state == State.QUEUED)
                .values(updated_at=now)
            )
    return run_ids


def _settle_unstarted_cancels(executor: Executor) -> None:
    """Runs cancelled while a submit of theirs was interrupted, each on its own."""
    stale_before = _now() - timedelta(seconds=executor.settings.submit_stale_after)
    with executor.db.session() as session:
        run_ids = list(
            session.execute(
                select(Run.id).where(
                    Run.state == State.CANCELING,
                    Run.backend_handle.is_(None),
                    Run.updated_at < stale_before,
                )
            ).scalars()
        )
    for run_id in run_ids:
        _guarded(f"settling the cancel of run {run_id}", _settle_unstarted_cancel, executor, run_id)


def _time_out_silent_runs(executor: Executor) -> None:
    """A run only its trace tells us about (no job of ours to poll) that has been silent
    for ``trace_timeout`` becomes UNKNOWN; its next report brings it back."""
    silent_since = _now() - timedelta(seconds=executor.settings.trace_timeout)
    with executor.db.session() as session:
        run_ids = (
            session.execute(
                select(Run.id).where(
                    Run.state.in_((State.RUNNING, State.PAUSED, State.INITIALIZING)),
                    Run.backend_handle.is_(None),
                    Run.last_seen_at < silent_since,
                )
            )
            .scalars()
            .all()
        )
        for run_id in run_ids:
            transition(session, run_id, State.UNKNOWN, "no report from nextflow")


def _check_unchecked_envs(executor: Executor) -> None:
    """Compute environments still CREATING after ``requeue_after`` lost their check."""
    before = _now() - timedelta(seconds=executor.settings.requeue_after)
    with executor.db.session() as session:
        env_ids = session.execute(
            select(ComputeEnv.id).where(
                ComputeEnv.status == "CREATING", ~ComputeEnv.deleted, ComputeEnv.updated_at < before
            )
        ).scalars()
        env_ids = list(env_ids)
    for env_id in env_ids:
        check_compute_env(executor, env_id)


def purge_deleted(executor: Executor, run_id: str) -> None:
    """Remove a deleted run (its folder, then its row), once nothing runs for it."""
    with executor.db.session() as session:
        run = session.get(Run, run_id)
        if run is not None and ready_to_purge(run):
            purge(session, run_id, executor.run_dir(run_id))


def _purge_deleted(executor: Executor) -> None:
    """Remove the deleted runs nothing runs for any more (whose purge message was lost,
    or cut short, or whose head job has stopped since), and the folders whose runs are
    gone."""
    with executor.db.session() as session:
        run_ids = session.execute(select(Run.id).where(READY_TO_PURGE)).scalars().all()
        for run_id in run_ids:
            purge(session, run_id, executor.run_dir(run_id))
    _remove_orphan_folders(executor)


# A run folder is made before its run's row is committed: one younger than this may
# belong to a run being accepted right now. Folders are looked for this often at most.
ORPHAN_MIN_AGE = timedelta(hours=1)
ORPHAN_SCAN_EVERY = timedelta(minutes=10)


def _remove_orphan_folders(executor: Executor) -> None:
    """Remove run folders that no run row names (left by a purge of an older version
    cut short between its row and its folder, or by a run whose acceptance failed)."""
    runs_dir = executor.settings.runs_dir
    marker = runs_dir / ".orphans-checked"
    now = _now()
    try:
        last = datetime.fromtimestamp(marker.stat().st_mtime, UTC)
    except FileNotFoundError:
        last = None
    if (last is not None and now - last < ORPHAN_SCAN_EVERY) or not runs_dir.is_dir():
        return
    marker.touch()
    cutoff = (now - ORPHAN_MIN_AGE).timestamp()
    folders = [
        entry.name
        for entry in os.scandir(runs_dir)
        if is_run_id(entry.name)
        and entry.is_dir(follow_symlinks=False)
        and entry.stat(follow_symlinks=False).st_mtime < cutoff
    ]
    for start in range(0, len(folders), 500):
        chunk = folders[start : start + 500]
        with executor.db.session() as session:
            known = set(session.execute(select(Run.id).where(Run.id.in_(chunk))).scalars())
        for name in chunk:
            if name not in known:
                log.info("removing the folder of run %s, which no longer exists", name)
                shutil.rmtree(runs_dir / name, ignore_errors=True)


def _settle_unstarted_cancel(executor: Executor, run_id: str) -> None:
    """A run cancelled while its submit was interrupted: stop the job that submit may
    have started (the poll then finishes it), or, if there is none, it is cancelled."""
    with executor.db.session() as session:
        run = session.get(Run, run_id)
        if run is None or run.state is not State.CANCELING or run.backend_handle:
            return
        platform, config = _compute_env(session, run.compute_env_id)
        snap = snapshot(run, executor.run_dir(run_id))
    backend = executor.backend(platform, config)
    handle = backend.find(snap)
    with executor.db.session() as session:
        if handle is None:
            transition(
                session,
                run_id,
                State.CANCELED,
                "cancelled before its head job started",
                allowed_from={State.CANCELING},
            )
            return
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.backend_handle.is_(None))
            .values(backend_handle=handle)
        )
    backend.cancel(handle)
