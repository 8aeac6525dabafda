"""What a run published: the files under its ``params.outdir``, as WES ``outputs``.

``RunLog.outputs`` maps each file's path relative to the outdir to
``{"location": <absolute path or URL>, "size": <bytes>}``. A worker lists the outdir once,
when the run's head job has ended (the platform's listing: the local folder, an S3 or
GCS prefix, a find over the Slurm login node's SSH connection), and stores the list on
the run; the API never reads a bucket. A run launched without ``outdir`` has no outputs.

Nextflow's ``-with-tower`` trace calls do not report published files: the workflow
record names ``outputDir`` (Nextflow's own ``-output-dir``, not the pipeline's
``params.outdir``), and the only list of published files Nextflow writes for Seqera is the
reports TSV, which holds just the files matching a ``tower.yml`` report pattern. So the
outdir itself is listed.

The list is bounded: at most ``max_outputs`` files (a setting), taken in path order;
when more were found, the run's ``outputs_truncated`` is set and the RunLog says so.
Paths are relative and safe: no absolute path, no ``..``, no empty or control-character
component. A local listing never follows a symbolic link out of the outdir, except into
the run's own work folder (where Nextflow's default ``symlink`` publish mode points); it
never walks Nextflow's work and cache folders (an outdir of ``.`` or ``work`` does not
expose task scripts and environments), nor the service's data folder outside the run's
launch folder. Elsewhere on the host, the outdir is whatever the run's launcher chose: a
local head job runs as the service's user and could read it anyway.

``GET /runs/{run_id}/outputs/{path}`` serves a listed local file: the path is looked up
in the stored list, never joined to a folder on its own, and the file is checked again
(no link out of the allowed folders) before it is opened. Files on S3, GCS or a Slurm
cluster are not proxied: the answer names their location.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wes_gateway.domain import run_files
from wes_gateway.domain.errors import InvalidField, NotFound
from wes_gateway.domain.models import Run

OUTDIR_PARAM = "outdir"
PATH_FIELD = "path"
CLOUD_SCHEMES = ("s3", "gs")


@dataclass(frozen=True)
class OutputFile:
    path: str  # relative to the outdir, POSIX, safe
    location: str  # absolute path on the platform, or a bucket URL
    size: int


@dataclass(frozen=True)
class Listing:
    files: list[OutputFile] = field(default_factory=list)
    truncated: bool = False


def outdir_of(run: Run) -> str | None:
    """The outdir the run was launched with (its request's params: ``run.params`` becomes
    what the head job's trace reports, which a pipeline could change), or None."""
    params = (run.request or {}).get("workflow_params") or {}
    value = params.get(OUTDIR_PARAM) if isinstance(params, Mapping) else None
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def scheme_of(outdir: str) -> str | None:
    """``s3`` or ``gs`` for a bucket URL, ``file`` for any other URL, None for a path."""
    scheme, found, _ = outdir.partition("://")
    if not found:
        return None
    return scheme.lower() if scheme.lower() in CLOUD_SCHEMES else "file"


def bucket_and_prefix(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` (or ``gs://``) as the bucket and the key prefix ``a/b/``."""
    bucket, _, path = url.partition("://")[2].partition("/")
    path = path.strip("/")
    return bucket, f"{path}/" if path else ""


def safe_relative(raw: str) -> str | None:
    """The relative path ``raw`` names, or None when it could lead elsewhere or is not
    written as the plain path it names (the rules of attachment names: no absolute path,
    no ``..``, no backslash or control character; and no empty or ``.`` component)."""
    try:
        path = run_files.clean_name(raw, PATH_FIELD)
    except InvalidField:
        return None
    return path if path == raw else None


def bounded(found: Iterable[OutputFile], limit: int) -> Listing:
    """The first ``limit`` files of ``found`` with safe paths, and whether there were
    more; ``found`` is consumed no further than one file past the limit (nor past
    ``limit`` names that were left out: the list is then cut there)."""
    files: list[OutputFile] = []
    skipped = 0
    for item in found:
        path = safe_relative(item.path)
        if path is None:
            skipped += 1
            if skipped > limit:
                return Listing(files, truncated=True)
            continue
        if len(files) == limit:
            return Listing(files, truncated=True)
        files.append(OutputFile(path, item.location, item.size))
    return Listing(files, truncated=False)


def record(run: Run, listing: Listing) -> None:
    """Store a listing on the run, as ``RunLog.outputs`` shows it."""
    run.outputs = {
        item.path: {"location": item.location, "size": item.size} for item in listing.files
    }
    run.outputs_truncated = listing.truncated


# -- the local platform ----------------------------------------------------------------


@dataclass(frozen=True)
class LocalFolders:
    """Where a local run's outputs may be read from, and where never."""

    outdir: Path  # resolved
    allowed: tuple[Path, ...]  # resolved: where a file may be (the outdir, the work folder)
    hidden: tuple[Path, ...]  # resolved: never walked (Nextflow's work and cache folders)
    launch_dir: Path  # resolved: the one part of the data folder that may be walked
    data_dir: Path  # resolved


def local_folders(
    outdir: str, *, launch_dir: Path, work_dir: str | None, data_dir: Path
) -> LocalFolders | None:
    """The folders of a local run's outdir (relative to its launch folder, as Nextflow
    takes it), or None when the outdir is a URL."""
    if scheme_of(outdir) is not None:
        return None
    root = (launch_dir / outdir).resolve()
    work = (launch_dir / (work_dir or "work")).resolve()
    hidden = (work, (launch_dir / ".nextflow").resolve())
    return LocalFolders(root, (root, work), hidden, launch_dir.resolve(), data_dir.resolve())


def local_folders_of(run: Run, run_dir: Path, data_dir: Path) -> LocalFolders | None:
    """The folders of a local run's outdir (its head job runs in its launch folder)."""
    outdir = outdir_of(run)
    if outdir is None:
        return None
    return local_folders(
        outdir, launch_dir=run_files.launch_dir(run_dir), work_dir=run.work_dir, data_dir=data_dir
    )


def _reachable(folders: LocalFolders, real: Path) -> bool:
    """Whether a file (links followed) lies where an output may: in the outdir, or in
    the work folder (where a published link points), and not in the service's own."""
    if any(run_files.inside(folder, real) for folder in folders.allowed):
        return not _service_own(folders, real)
    return False


def _service_own(folders: LocalFolders, real: Path) -> bool:
    """A path of the service's data folder outside the run's launch folder: the
    database, other runs, this run's own files (its secrets while it ran, its token)."""
    return real.is_relative_to(folders.data_dir) and not real.is_relative_to(folders.launch_dir)


def _walked(folders: LocalFolders, path: Path) -> bool:
    """Whether a folder is walked: not Nextflow's work or cache folder (task scripts and
    environments, which the task downloads never serve either), not the service's."""
    if any(path.is_relative_to(folder) for folder in folders.hidden):
        return False
    return not _service_own(folders, path)


def walk_local(folders: LocalFolders) -> Iterable[OutputFile]:
    """The regular files under the outdir, in path order, lazily. Links that lead out of
    the allowed folders, folders reached through links, and the folders that are not
    walked are skipped."""
    root = folders.outdir
    if not root.is_dir() or not _walked(folders, root):
        return
    for folder, names, files in os.walk(root, followlinks=False):
        names[:] = sorted(
            name
            for name in names
            if not os.path.islink(os.path.join(folder, name))
            and _walked(folders, Path(folder, name))
        )
        for name in sorted(files):
            path = Path(folder, name)
            real = path.resolve()
            if not _reachable(folders, real):
                continue
            try:
                info = real.stat()
            except OSError:
                continue
            if not path.is_file():
                continue
            relative = path.relative_to(root).as_posix()
            yield OutputFile(relative, str(root / relative), info.st_size)


def list_local(folders: LocalFolders, limit: int) -> Listing:
    return bounded(walk_local(folders), limit)


# -- serving ---------------------------------------------------------------------------


def checked_path(raw: str | None) -> str:
    """The ``path`` of an outputs request, or a 400 naming it."""
    path = run_files.clean_name(raw, PATH_FIELD)
    if path != raw:
        raise InvalidField(PATH_FIELD, f"{raw!r} is not written as the plain path {path!r}")
    return path


def entry_of(run: Run, path: str) -> Mapping[str, Any]:
    entry = (run.outputs or {}).get(path)
    if not isinstance(entry, Mapping) or not isinstance(entry.get("location"), str):
        raise NotFound(f"{path} is not an output of run {run.id}")
    return entry


def served_file(run: Run, path: str, folders: LocalFolders | None, platform: str) -> Path:
    """The local file of a listed output, once more checked to lie where it may;
    ``folders`` is None for a run that ran elsewhere (on ``platform``)."""
    entry = entry_of(run, path)
    location = entry["location"]
    if folders is None or not location.startswith("/"):
        raise NotFound(
            f"{path} is kept at {location} ({platform}), not by this service: read it from there"
        )
    published = folders.outdir / path
    if str(published) != location:
        raise NotFound(f"{path} is no longer where run {run.id} published it")
    real = published.resolve()
    if not _reachable(folders, real) or not real.is_file():
        raise NotFound(f"{path} is no longer where run {run.id} published it")
    return real
