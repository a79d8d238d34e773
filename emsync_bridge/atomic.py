"""Atomic file writes: the one way this project writes a file someone else may read.

A temp file in the same folder (a rename across filesystems is not atomic), named with a leading
dot so pollers skip it, fsync'd, then `os.replace`d over the target; the folder is fsync'd after,
where the OS allows, so the rename survives a crash. A reader sees the old file or the whole new
one, never half of it; an interrupted write leaves no temp file behind. The file gets the mode
any new file would (0666 less the user's umask), not the temp file's private 0600.

`write_atomic` writes bytes (or whatever a writer callback writes); `write_json_atomic` writes JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO, Callable


def write_atomic(path: str | os.PathLike, data: bytes | None = None,
                 writer: Callable[[BinaryIO], None] | None = None, make_parents: bool = True) -> Path:
    """Write `data`, or whatever `writer(file)` writes, to `path` atomically."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o666 & ~current_umask())
            if writer is not None:
                writer(fh)
            else:
                fh.write(data or b"")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_json_atomic(path: Path | str, obj: Any) -> Path:
    """Write `obj` as JSON atomically (sorted keys, one-space indent, UTF-8); the folder must exist.
    NaN/inf are refused (JSON has no spelling for them)."""
    data = json.dumps(obj, indent=1, sort_keys=True, allow_nan=False, ensure_ascii=False).encode("utf-8")
    return write_atomic(path, data + b"\n", make_parents=False)


_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc), else by the
    set-and-restore idiom under a lock (umask is per process, so threads must not interleave)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: renames are durable enough, no dir handles
        return
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
