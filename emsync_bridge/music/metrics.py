"""Objective checks measured on decoded notes (what a listener hears), not on tokens.

- boundary hit rate: share of boundaries with a *long chord* onset within ±tolerance, where a long
  chord is >= 3 pitched notes starting within 60 ms, >= 2 of them held >= 0.5 s; with the mean
  offset, and the same rate at random times as the baseline;
- notes per second, overall and per instrument;
- mode (major/minor) by Krumhansl–Kessler key-profile correlation on the duration-weighted
  pitch-class histogram (drums excluded);
- pitch-class entropy (bits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emsync_bridge.music.midi import Note, Score, chord_onsets

LONG_CHORD_HELD_S = 0.5
TOLERANCES = (0.25, 0.5, 1.0)

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def long_chords(notes: list[Note]) -> list[float]:
    return chord_onsets(notes, LONG_CHORD_HELD_S, min_notes=3, min_long=2)


@dataclass
class BoundaryReport:
    n_boundaries: int
    hit_rate: dict[float, float]  # tolerance -> share of boundaries hit
    random_rate: dict[float, float]  # tolerance -> share of random times "hit"
    mean_offset: float | None  # mean signed (chord - boundary) over hits at the widest tolerance

    def to_dict(self) -> dict:
        return {"n_boundaries": self.n_boundaries,
                "hit_rate": {str(k): v for k, v in self.hit_rate.items()},
                "random_rate": {str(k): v for k, v in self.random_rate.items()},
                "mean_offset": self.mean_offset}


def _nearest_offsets(onsets: np.ndarray, times: np.ndarray) -> np.ndarray:
    if len(onsets) == 0:
        return np.full(len(times), np.inf)
    diffs = onsets[None, :] - times[:, None]
    return diffs[np.arange(len(times)), np.abs(diffs).argmin(axis=1)]


def boundary_report(score: Score, boundaries, tolerances=TOLERANCES, n_random: int = 200,
                    seed: int = 0) -> BoundaryReport:
    onsets = np.array(long_chords(score.notes))
    targets = np.array(sorted(boundaries), dtype=float)
    offs = _nearest_offsets(onsets, targets)
    rng = np.random.default_rng(seed)
    random_times = rng.uniform(0, max(score.duration, 1e-3), n_random)
    roffs = _nearest_offsets(onsets, random_times)
    hit = {tol: float(np.mean(np.abs(offs) <= tol)) if len(targets) else 0.0 for tol in tolerances}
    rnd = {tol: float(np.mean(np.abs(roffs) <= tol)) for tol in tolerances}
    widest = max(tolerances)
    hits = offs[np.abs(offs) <= widest]
    return BoundaryReport(len(targets), hit, rnd, float(hits.mean()) if len(hits) else None)


def notes_per_second(score: Score, instrument: str | None = None) -> float:
    if score.duration <= 0:
        return 0.0
    n = sum(1 for x in score.notes if instrument is None or x.instrument == instrument)
    return n / score.duration


def pitch_class_histogram(notes: list[Note]) -> np.ndarray:
    hist = np.zeros(12)
    for n in notes:
        if n.instrument != "drums":
            hist[n.pitch % 12] += n.duration
    return hist


# The 24 key profiles as rows (12 major tonics, then 12 minor), standardised so that a row's dot
# product with a standardised histogram / 12 is their Pearson correlation.
_KEY_PROFILES = np.array([np.roll(p, t) for p in (KK_MAJOR, KK_MINOR) for t in range(12)])
_KEY_PROFILES = (_KEY_PROFILES - _KEY_PROFILES.mean(1, keepdims=True)) / _KEY_PROFILES.std(1, keepdims=True)


def key_from_histogram(hist: np.ndarray) -> tuple[int, str, float]:
    """(tonic pitch class, 'major'|'minor', correlation) of the best-correlating KK profile."""
    hist = np.asarray(hist, dtype=float)
    if hist.sum() == 0 or hist.std() == 0:
        return 0, "major", 0.0
    r = _KEY_PROFILES @ ((hist - hist.mean()) / hist.std()) / 12
    best = int(np.argmax(r))
    return best % 12, "major" if best < 12 else "minor", float(r[best])


def estimate_key(notes: list[Note]) -> tuple[str, str, float]:
    """(tonic name, 'major'|'minor', correlation) of the best-correlating KK profile."""
    tonic, mode, r = key_from_histogram(pitch_class_histogram(notes))
    return PITCH_NAMES[tonic], mode, r


def estimate_mode(notes: list[Note]) -> str:
    return estimate_key(notes)[1]


def pitch_class_entropy(notes: list[Note]) -> float:
    hist = pitch_class_histogram(notes)
    if hist.sum() == 0:
        return 0.0
    p = hist / hist.sum()
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def stuck_notes(score: Score) -> int:
    """Notes that would still sound after the piece ends (0 for anything we write)."""
    return sum(1 for n in score.notes if n.end > score.duration + 1e-6 or n.end <= n.start)


def summary(score: Score, boundaries=()) -> dict:
    """Everything above in one JSON-friendly dict (used by generation.json and bench)."""
    key = estimate_key(score.notes)
    counts = score.instruments()
    out = {
        "duration": score.duration,
        "notes_per_second": notes_per_second(score),
        "notes_per_instrument": counts,
        "instruments_active": sum(1 for c in counts.values() if c > 0),
        "key": f"{key[0]} {key[1]}",
        "pitch_class_entropy": pitch_class_entropy(score.notes),
        "stuck_notes": stuck_notes(score),
    }
    if len(boundaries):
        out["boundaries"] = boundary_report(score, boundaries).to_dict()
    return out
