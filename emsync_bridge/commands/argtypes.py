"""Argument types for the CLI: ranges checked when the arguments are parsed, before any work.

argparse turns the `ArgumentTypeError` into its usual `usage: ...` + `error: argument --x: ...`
(exit 2), never a traceback. One home for the ranges every subcommand shares.
"""

from __future__ import annotations

import argparse
import math

MAX_SEED = 2**32 - 1  # numpy's SeedSequence/RandomState range
# Longest piece `generate`/`serve --duration` makes: ~3 min of CPU at the measured 17-21
# music-seconds per wall second; longer films are scored by `score` from their video.
MAX_DURATION_S = 3600.0


def _number(text: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def _integer(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def port(text: str) -> int:
    """A UDP/TCP port, 0..65535 (0: any free port)."""
    v = _integer(text)
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {v}")
    return v


def seed(text: str) -> int:
    v = _integer(text)
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is 0..{MAX_SEED}, got {v}")
    return v


def finite(text: str) -> float:
    return _number(text)


def unit_interval(text: str) -> float:
    x = _number(text)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1, got {text!r}")
    return x


def non_negative(text: str) -> float:
    v = _number(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return v


def positive(text: str) -> float:
    v = _number(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return v


def positive_int(text: str) -> int:
    v = _integer(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def duration(text: str) -> float:
    """Seconds of music: > 0 and at most MAX_DURATION_S."""
    v = _number(text)
    if not 0 < v <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"must be > 0 and at most {MAX_DURATION_S:.0f} s (1 hour), got {text!r}")
    return v


def nonempty(text: str) -> str:
    if text.strip() == "":
        raise argparse.ArgumentTypeError("must not be empty")
    return text
