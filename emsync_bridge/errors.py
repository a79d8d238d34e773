"""The one user-facing error type.

Anything the user can cause (bad file, bad value, missing extra) raises `EmsyncError` with a
one-line message naming the problem; the CLI prints it without a traceback and exits non-zero,
and the daemon turns it into an error status and keeps serving.

`run_main` is that one error path, shared by `emsync-bridge` and the `python -m` entry points;
`OneLineParser` is argparse with the same one-line errors.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable


class EmsyncError(Exception):
    """A problem the user can fix; the message is one clear line."""


def one_line(text: str) -> str:
    """`text` as one printable line: control characters (a newline or CR in a user's argument,
    echoed back in a message) are shown escaped, as Python writes them."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def os_error_text(exc: OSError) -> str:
    """`[Errno 28] No space left on device: 'x'` -> `x: no space left on device`."""
    text = (exc.strerror or str(exc)).rstrip(".")
    text = text[:1].lower() + text[1:]
    name = exc.filename if exc.filename is not None else None
    return f"{name}: {text}" if name is not None else text


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other error here (the usage is in --help)."""

    def error(self, message: str):
        self.exit(2, one_line(f"{self.prog}: error: {message} (see {self.prog} --help)") + "\n")


def run_main(run: Callable[[], int | None], verbose: bool = False) -> int:
    """An entry point's body: logging to stderr (INFO, or DEBUG when `verbose`), then `run()`'s exit
    code; an `EmsyncError` prints as one line `error: ...` (exit 2); an `OSError` that still gets
    here (a disk filling up mid-write, a file removed under us) is one line too (exit 1); Ctrl+C
    prints `interrupted` (130)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(run() or 0)
    except EmsyncError as exc:
        print(one_line(f"error: {exc}"), file=sys.stderr)
        return 2
    except OSError as exc:
        print(one_line(f"error: {os_error_text(exc)}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
