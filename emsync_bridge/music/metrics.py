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


def key_correlations(hist: np.ndarray) -> np.ndarray:
    """Pearson correlation of a pitch-class histogram with the 24 KK key profiles: index tonic
    for major keys, 12 + tonic for minor (zeros for an empty or flat histogram)."""
    hist = np.asarray(hist, dtype=float)
    if hist.sum() == 0 or hist.std() == 0:
        return np.zeros(24)
    return _KEY_PROFILES @ ((hist - hist.mean()) / hist.std()) / 12


def key_from_histogram(hist: np.ndarray) -> tuple[int, str, float]:
    """(tonic pitch class, 'major'|'minor', correlation) of the best-correlating KK profile."""
    r = key_correlations(hist)
    if not r.any():
        return 0, "major", 0.0
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


# --- timing ---
# Timing judged on the decoded notes against a 16th grid: the grid that was asked for (a tempo
# map) and a grid fitted to the notes alone (88-176 BPM, refitted per 10 s window), so the music
# must be steady by itself. "On the grid": within 15 % of a 16th of a grid point.
GRID_BPM = (88.0, 176.0)
GRID_TOLERANCE = 0.15  # of a 16th
TIMING_WINDOW_S = 10.0
MIN_WINDOW_ONSETS = 8
HIHATS = (42, 44, 46)
NEAR_BEST = 0.02  # share of the onsets: grids this close to the best fit count as equally good


def onsets(notes: list[Note], drums: bool | None = None) -> np.ndarray:
    """Distinct onset times (s), of the drums (True), the pitched parts (False) or all (None)."""
    ts = [n.start for n in notes if drums is None or (n.instrument == "drums") == drums]
    return np.unique(np.round(np.asarray(ts, dtype=np.float64), 4))


def fit_sixteenth_grid(times, bpm_range=GRID_BPM, steps: int = 700, prefer: float | None = None) -> tuple[float, float]:
    """(bpm, phase s) of the 16th grid that puts most of `times` within GRID_TOLERANCE of a grid
    point, searched over log-spaced tempi and 24 phases (then refined to the inliers' circular
    mean). Grids related by small ratios (3:2, 4:3) often explain the same notes equally well:
    among those within NEAR_BEST of the best share, the one nearest to `prefer` (a BPM, e.g. the
    whole piece's fit) wins, else the best."""
    t = np.asarray(times, dtype=np.float64)
    if len(t) == 0:
        return float(np.sqrt(bpm_range[0] * bpm_range[1])), 0.0
    bpms = np.geomspace(bpm_range[0], bpm_range[1], steps)
    step = 15.0 / bpms  # a 16th, s
    frac = (t[None, :] / step[:, None]) % 1.0  # [tempo, onset] position within a 16th
    bins = np.arange(24) / 24
    d = np.abs(frac[:, None, :] - bins[None, :, None])
    d = np.minimum(d, 1 - d)  # [tempo, phase, onset] in 16ths
    inside = d <= GRID_TOLERANCE
    # inliers first, then (tie-break) a smaller mean distance
    score = inside.sum(axis=2) - np.where(inside, d, 0).sum(axis=2) / (len(t) + 1)
    per_tempo = score.max(axis=1)
    i = int(np.argmax(per_tempo))
    if prefer is not None:
        near = np.flatnonzero(per_tempo >= per_tempo[i] - NEAR_BEST * len(t))
        i = int(near[np.argmin(np.abs(np.log(bpms[near] / prefer)))])
    j = int(np.argmax(score[i]))
    sel = inside[i, j]
    ang = 2 * np.pi * frac[i, sel]
    phase = (np.angle(np.mean(np.exp(1j * ang))) / (2 * np.pi)) % 1.0 if sel.any() else bins[j]
    return float(bpms[i]), float(phase * step[i])


def _grid_distance(t: np.ndarray, bpm: float, phase: float) -> np.ndarray:
    """Distance of each time to the nearest 16th of a constant grid, in 16ths."""
    x = (t - phase) / (15.0 / bpm)
    return np.abs(x - np.round(x))


def map_grid_distance(times, tempo) -> np.ndarray:
    """Distance (in 16ths, local) of each time to the nearest 16th of a TempoMap."""
    q = np.array([tempo.time_to_qn(float(t)) for t in times]) * 4
    return np.abs(q - np.round(q))


def timing_report(score: Score, tempo=None) -> dict:
    """On-grid shares per part (pitched, drums) against the grid asked for (`tempo`, a TempoMap,
    when given) and against 16th grids fitted per 10 s window to the notes alone (ambiguous fits
    resolved toward the whole piece's fit); the tempo change
    between consecutive windows; the median distance from the fitted grid (ms); the hi-hat's
    interval variation (std/mean of gaps under 0.5 s)."""
    out: dict = {}
    parts = {"pitched": onsets(score.notes, drums=False), "drums": onsets(score.notes, drums=True)}
    if tempo is not None:
        for name, t in parts.items():
            out[f"{name}_on_requested_grid"] = float(np.mean(map_grid_distance(t, tempo) <= GRID_TOLERANCE)) if len(t) else None
    everything = onsets(score.notes)
    end = max(score.duration, float(everything[-1]) if len(everything) else 0.0)
    fitted = {name: [] for name in parts}
    dev_ms, bpms = [], []
    whole = fit_sixteenth_grid(everything)[0]
    w = 0.0
    while w < end - 1e-9:
        sel = (everything >= w) & (everything < w + TIMING_WINDOW_S)
        if sel.sum() >= MIN_WINDOW_ONSETS:
            bpm, phase = fit_sixteenth_grid(everything[sel], prefer=whole)
            bpms.append(bpm)
            for name, t in parts.items():
                tw = t[(t >= w) & (t < w + TIMING_WINDOW_S)]
                d = _grid_distance(tw, bpm, phase)
                fitted[name] += list(d)
                dev_ms += list(d * 15.0 / bpm * 1000)
        w += TIMING_WINDOW_S
    for name, ds in fitted.items():
        out[f"{name}_on_fitted_grid"] = float(np.mean(np.asarray(ds) <= GRID_TOLERANCE)) if ds else None
    out["median_deviation_ms"] = float(np.median(dev_ms)) if dev_ms else None
    changes = []
    for a, b in zip(bpms, bpms[1:]):
        octaves = np.log2(b / a)
        changes.append(float(2 ** abs(octaves - round(octaves)) - 1))  # a window read at double time is no change
    out["window_bpm"] = [round(b, 2) for b in bpms]
    out["tempo_change"] = float(np.mean(changes)) if changes else None
    hat = np.sort(np.unique([round(n.start, 4) for n in score.notes if n.instrument == "drums" and n.pitch in HIHATS]))
    gaps = np.diff(hat)
    gaps = gaps[gaps < 0.5]
    out["hihat_interval_cv"] = float(np.std(gaps) / np.mean(gaps)) if len(gaps) >= 4 else None
    return out


# --- harmony and texture ---
# Measured the same way on generated pieces, POP909 songs and the training renditions, from notes
# in seconds (the generated music has no beat of its own): a "beat" is BEAT_S = 0.5 s (120 BPM).

BEAT_S = 0.5
TRIAD_MIN_SHARE = 0.6  # a beat is on a triad when its three tones carry >= this share of the sound
HELD_S = (4.0, 7.9)  # "held >= 4 s" and ">= 8 s" (7.9: the decoder's 8 s cap lands on 8.0 - rounding)
DRUM_RESOLUTION = 24  # muspy's default time steps per beat
_TRIADS = [(root, q, frozenset({root, (root + (4 if q == "maj" else 3)) % 12, (root + 7) % 12}))
           for q in ("maj", "min") for root in range(12)]


def beat_triads(notes: list[Note], duration: float, beat_s: float = BEAT_S) -> list[tuple[int, str] | None]:
    """Per beat: the major/minor triad (root pc, 'maj'|'min') whose tones carry the most of the
    pitched sound (overlap-weighted), if they carry >= TRIAD_MIN_SHARE of it; else None (no
    sound, or no triad)."""
    n_beats = max(int(np.ceil(duration / beat_s - 1e-9)), 0)
    hist = np.zeros((n_beats, 12))
    for n in notes:
        if n.instrument == "drums" or n.end <= 0:
            continue
        first, last = int(max(n.start, 0) // beat_s), min(int(np.ceil(n.end / beat_s)), n_beats)
        for k in range(first, last):
            hist[k, n.pitch % 12] += max(0.0, min(n.end, (k + 1) * beat_s) - max(n.start, k * beat_s))
    out = []
    for h in hist:
        total = h.sum()
        if total <= 0:
            out.append(None)
            continue
        root, q, tones = max(_TRIADS, key=lambda t: (sum(h[pc] for pc in t[2]), h[t[0]]))
        out.append((root, q) if sum(h[pc] for pc in tones) >= TRIAD_MIN_SHARE * total else None)
    return out


def triad_stats(notes: list[Note], duration: float, min_beats: int = 4) -> dict:
    """`most_common_triad_share`: the share of beats with pitched sound that are on the piece's
    most common triad; `distinct_triads_per_30s`: distinct triads on >= `min_beats` beats of the
    piece in all, per 30 s of music (issue 17's reading: it reproduces the issue's reference column,
    POP909 5.2 -> 5.03 here, renditions 4.5 -> 4.58); `distinct_long_triads_per_30s`, the stricter
    reading: distinct triads that last >= `min_beats` beats in a row at least once (POP909 3.38)."""
    beats = beat_triads(notes, duration)
    counts: dict = {}
    for b in beats:
        if b is not None:
            counts[b] = counts.get(b, 0) + 1
    voiced = _sounding_beats(notes, duration)
    share = max(counts.values()) / voiced if counts and voiced else 0.0
    long_runs, run, prev = set(), 0, None
    for b in beats + [None]:
        if b is not None and b == prev:
            run += 1
        else:
            if prev is not None and run >= min_beats:
                long_runs.add(prev)
            run = 1 if b is not None else 0
        prev = b
    per_30s = 30.0 / max(duration, 1e-9)
    return {"most_common_triad_share": float(share),
            "distinct_triads_per_30s": sum(c >= min_beats for c in counts.values()) * per_30s,
            "distinct_long_triads_per_30s": len(long_runs) * per_30s}


def _sounding_beats(notes: list[Note], duration: float, beat_s: float = BEAT_S) -> int:
    n_beats = max(int(np.ceil(duration / beat_s - 1e-9)), 0)
    on = np.zeros(n_beats, dtype=bool)
    for n in notes:
        if n.instrument != "drums" and n.end > 0:
            on[int(max(n.start, 0) // beat_s):min(int(np.ceil(n.end / beat_s)), n_beats)] = True
    return int(on.sum())


def top3_pitch_class_share(notes: list[Note]) -> float:
    """Share of pitched notes (by count) on the piece's three most used pitch classes."""
    counts = np.bincount([n.pitch % 12 for n in notes if n.instrument != "drums"], minlength=12)
    return float(np.sort(counts)[-3:].sum() / counts.sum()) if counts.sum() else 0.0


def held_notes(notes: list[Note], seconds: float) -> int:
    """Pitched notes that sound >= `seconds`."""
    return sum(1 for n in notes if n.instrument != "drums" and n.duration >= seconds - 1e-6)


def polyphony(notes: list[Note], step_s: float = BEAT_S / DRUM_RESOLUTION) -> float:
    """muspy's polyphony: mean number of pitched notes sounding, over the time steps where at
    least one sounds (drums ignored; muspy's default 24 steps per beat at 120 BPM)."""
    pitched = [n for n in notes if n.instrument != "drums"]
    if not pitched:
        return float("nan")
    n_steps = int(round(max(n.end for n in pitched) / step_s)) + 1
    roll = np.zeros((n_steps, 128), dtype=bool)  # pitches merged over instruments, as muspy
    for n in pitched:
        roll[int(round(n.start / step_s)):int(round(n.end / step_s)), n.pitch] = True
    per_step = roll.sum(1)
    voiced = np.count_nonzero(per_step)
    return float(per_step.sum() / voiced) if voiced else float("nan")


def drum_pattern_consistency(notes: list[Note], beat_s: float | None = None, window_s: float = 10.0) -> float:
    """muspy's drum pattern consistency: the larger of the shares of drum hits on a duple (16ths)
    or a triple (8th triplets) position of the beat, times rounded to 1/24 beat. muspy takes the
    beat from the file's tempo; our pieces carry none (and POP909's tempo drifts), so in every
    `window_s` window the beat is the one (60-180 BPM, any phase) under which its hits are most
    consistent - the same search for every piece; the windows are weighted by their hits."""
    times = np.sort([n.start for n in notes if n.instrument == "drums"])
    if len(times) == 0:
        return float("nan")
    beats = np.array([beat_s] if beat_s else 60.0 / np.arange(60.0, 180.01, 0.25))
    phases = np.arange(1 if beat_s else DRUM_RESOLUTION)
    window = (times // window_s).astype(int)
    in_pattern = 0.0
    for w in np.unique(window):
        t = times[window == w]
        steps = np.round(t[None, :] / beats[:, None] * DRUM_RESOLUTION).astype(int)  # [beat, hit]
        pos = (steps[:, None, :] - phases[None, :, None]) % DRUM_RESOLUTION  # [beat, phase, hit]
        best = max((pos % 6 == 0).mean(-1).max(), (pos % 8 == 0).mean(-1).max())
        in_pattern += best * len(t)
    return float(in_pattern / len(times))


def two_bar_repetition(notes: list[Note], frame_s: float = 0.125, lags_s: tuple[float, float] = (2.5, 6.0)) -> float:
    """How much the music repeats itself two bars later: the largest cosine similarity between
    the pitched onsets (pitch class x 0.125 s frame) and the same onsets one lag later, over lags
    of 2.5-6 s (two bars of 4/4 at 80-190 BPM; our pieces carry no bar lines). 1 = a loop."""
    pitched = [n for n in notes if n.instrument != "drums"]
    if not pitched:
        return 0.0
    n_frames = int(max(n.start for n in pitched) / frame_s) + 1
    roll = np.zeros((n_frames, 12))
    for n in pitched:
        roll[int(n.start / frame_s), n.pitch % 12] += 1
    best = 0.0
    for lag in range(int(lags_s[0] / frame_s), int(lags_s[1] / frame_s) + 1):
        if lag >= n_frames:
            break
        a, b = roll[:-lag].ravel(), roll[lag:].ravel()
        norm = np.linalg.norm(a) * np.linalg.norm(b)
        if norm > 0:
            best = max(best, float(a @ b / norm))
    return best


def chord_tone_share(notes: list[Note], duration: float) -> float:
    """Share of pitched note onsets whose pitch class is a tone of the beat's triad (beats on a
    triad only; `beat_triads`)."""
    beats = beat_triads(notes, duration)
    on, total = 0, 0
    for n in notes:
        k = int(max(n.start, 0) // BEAT_S)
        if n.instrument == "drums" or k >= len(beats) or beats[k] is None:
            continue
        root, q = beats[k]
        tones = {root, (root + (4 if q == "maj" else 3)) % 12, (root + 7) % 12}
        total += 1
        on += n.pitch % 12 in tones
    return on / total if total else 0.0


def music_stats(score: Score) -> dict:
    """The harmony and texture table of one piece (issue 17)."""
    notes, dur = score.notes, score.duration
    strings = sum(1 for n in notes if n.instrument == "strings")
    out = triad_stats(notes, dur)
    out.update(
        top3_pitch_class_share=top3_pitch_class_share(notes),
        pitch_class_entropy=pitch_class_entropy(notes),
        held_4s=held_notes(notes, HELD_S[0]),
        held_8s=held_notes(notes, HELD_S[1]),
        held_8s_strings_share=(sum(1 for n in notes if n.instrument == "strings" and n.duration >= HELD_S[1] - 1e-6)
                               / strings if strings else 0.0),
        polyphony=polyphony(notes),
        drum_pattern_consistency=drum_pattern_consistency(notes),
        two_bar_repetition=two_bar_repetition(notes),
        chord_tone_share=chord_tone_share(notes, dur),
    )
    return out
