"""Staging ``workflow_attachment`` uploads into a run folder.

Names are relative paths chosen by the client, so each one is checked before anything is
written: no absolute paths, no ``..``, no NUL or control characters, no backslashes, no
duplicates. Files are then created without following symlinks, each path confirmed to stay
inside the folder. If any name is refused, nothing is written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from wes_gateway.errors import InvalidField

FIELD = "workflow_attachment"
MAX_NAME_LENGTH = 1024
MAX_COMPONENT_LENGTH = 255
_CHUNK = 1024 * 1024


def clean_name(raw: str | None) -> str:
    """The safe relative path for an attachment name, or a 400 naming what is wrong."""
    if not raw:
        raise InvalidField(FIELD, "every attachment needs a file name")
    if "\x00" in raw:
        raise InvalidField(FIELD, "file name contains a NUL byte")
    if any(ord(char) < 32 or ord(char) == 127 for char in raw):
        raise InvalidField(FIELD, f"file name {raw!r} contains control characters")
    if "\\" in raw:
        raise InvalidField(FIELD, f"file name {raw!r} contains a backslash")
    if len(raw) > MAX_NAME_LENGTH:
        raise InvalidField(FIELD, "file name too long")
    path = PurePosixPath(raw)
    if path.is_absolute():
        raise InvalidField(FIELD, f"file name {raw!r} is absolute; use a relative path")
    parts = [part for part in path.parts if part not in ("", ".")]
    if any(part == ".." for part in raw.split("/")):
        raise InvalidField(FIELD, f"file name {raw!r} refers to a parent directory")
    if not parts:
        raise InvalidField(FIELD, f"file name {raw!r} names no file")
    if any(len(part) > MAX_COMPONENT_LENGTH for part in parts):
        raise InvalidField(FIELD, "a path component is longer than 255 characters")
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
