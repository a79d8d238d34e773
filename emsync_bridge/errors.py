"""The one user-facing error type.

Anything the user can cause (bad file, bad value, missing extra) raises `EmsyncError` with a
one-line message naming the problem; the CLI prints it without a traceback and exits non-zero,
and the daemon turns it into an error status and keeps serving.

`run_main` is that one error path, shared by `emsync-bridge` and the `python -m` entry points.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable


class EmsyncError(Exception):
    """A problem the user can fix; the message is one clear line."""


def run_main(run: Callable[[], int | None], verbose: bool = False) -> int:
    """An entry point's body: logging to stderr (INFO, or DEBUG when `verbose`), then `run()`'s exit
    code; an `EmsyncError` prints as one line `error: ...` (exit 2), Ctrl+C as `interrupted` (130)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(run() or 0)
    except EmsyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
