"""Output paths, checked before any expensive work: the one place that says whether a command
may write where it was asked to.

Every CLI output (`generate -o`, `score -o`, `analyze --json/--png`, `export --out`, ...) goes
through `check_output_file` or `check_output_dir` before a video is decoded or a model loaded,
so a bad path costs milliseconds and gives one line, never a traceback after minutes of work,
and an output that is one of the inputs is refused (a command never deletes or replaces its own
input). A missing parent folder is created (as before); a parent that is a file, a folder that
cannot be written (read-only, permissions) or a full disk are one-line `EmsyncError`s.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Iterable

from emsync_bridge.errors import EmsyncError, os_error_text


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # missing, or not a path at all (a NUL byte)
        return os.path.abspath(a) == os.path.abspath(b)


def _check_folder(folder: Path, what: str) -> None:
    """`folder` exists (created if missing) and a file can be created in it."""
    for parent in [folder, *folder.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise EmsyncError(f"{what}: {parent} is not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmsyncError(f"{what}: cannot create folder {folder}: {os_error_text(exc)}") from None
    try:  # the only sure test of "writable" (ACLs, read-only mounts, root on a read-only fs)
        fd, probe = tempfile.mkstemp(prefix=".emsync-probe-", dir=folder)
    except OSError as exc:
        reason = "read-only" if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else os_error_text(exc)
        raise EmsyncError(f"{what}: cannot write in {folder} ({reason})") from None
    os.close(fd)
    os.unlink(probe)


def _valid(path, what: str) -> None:
    if str(path).strip() == "":
        raise EmsyncError(f"{what}: the path is empty")
    if "\x00" in str(path):
        raise EmsyncError(f"{what}: not a valid path: {str(path)!r}")


def check_output_file(path: str | os.PathLike, what: str = "output", *, inputs: Iterable = (),
                      suffixes: tuple[str, ...] = ()) -> Path:
    """Check that a file may be written at `path` (atomically: a temp file next to it, renamed);
    `inputs` are files the command reads, which it must never replace. Returns the path."""
    _valid(path, what)
    if str(path).strip() == "":
        raise EmsyncError(f"{what}: the path is empty")
    p = Path(path)
    if suffixes and p.suffix.lower() not in suffixes:
        raise EmsyncError(f"{what} must end in {' or '.join(suffixes)}, got {str(path)!r}")
    if p.is_dir():
        raise EmsyncError(f"{what}: {p} is a folder (give a file name)")
    if p.exists() and not p.is_file():
        raise EmsyncError(f"{what}: {p} is not a regular file")
    for i in inputs:
        if i is not None and str(i) != "" and _same_file(p, Path(i)):
            raise EmsyncError(f"{what} {p} is the input {i}: it would be replaced; choose another path")
    _check_folder(p.parent, what)
    return p


def check_output_dir(path: str | os.PathLike, names: Iterable[str] = (), what: str = "output folder", *,
                     inputs: Iterable = ()) -> Path:
    """Check that `path` is (or can be made) a writable folder, and that none of the files
    `names` the command will put there is an input or a folder. Creates the folder."""
    _valid(path, what)
    if str(path).strip() == "":
        raise EmsyncError(f"{what}: the path is empty")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise EmsyncError(f"{what}: {p} is a file, not a folder")
    for i in inputs:
        if i is None or str(i) == "":
            continue
        if _same_file(p, Path(i)):
            raise EmsyncError(f"{what} {p} is the input {i}")
        for name in names:
            if _same_file(p / name, Path(i)):
                raise EmsyncError(f"{what} {p} holds the input {i}, which would be replaced by the output "
                                  f"{name}; choose another folder")
    _check_folder(p, what)
    for name in names:
        if (p / name).is_dir():
            raise EmsyncError(f"{what}: {p / name} is a folder where the output {name} goes")
    return p
