"""Objective evaluation of a model's conditioning, on decoded MIDI (the metrics module).

- boundaries: random boundary sets (4-12 s apart); share hit by a long chord within 0.25/0.5/1 s,
  vs the rate at random times, and vs the same model given no boundaries (valence 0 unless given:
  the valence -> mode aid only acts away from 0);
- arousal: notes per second over 5 arousal levels (valence 0 unless given);
- valence: share of pieces estimated major (Krumhansl-Kessler) at valence +0.8 vs -0.8 (arousal 0);
- timing: 30 s pieces at valence/arousal +-0.8 with cuts 5-9 s apart on a tempo fitted to the cuts
  (`--tempo auto`): onsets on the grid asked for and on 16th grids fitted to the notes alone, tempo
  change between 10 s windows, median deviation, hi-hat steadiness, cut -> beat distances; the same
  pieces with the grid guard off; beside POP909 validation songs and training renditions of them.
- music: harmony and texture (metrics.music_stats) of 30 s pieces at valence/arousal +-0.8 with cuts
  5-9 s apart, beside 30 s excerpts of POP909 validation songs (`--pop909`) and of the training
  renditions (`--data`, the token cache), measured by the same code.
Used by the model card (`python -m emsync_bridge.music.evaluate`) and, on a smaller budget, by tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np

from emsync_bridge.errors import EmsyncError
from emsync_bridge.music.generate import Conditioning, SamplingConfig, generate
from emsync_bridge.music.data import TRACKS as POP909_TRACKS
from emsync_bridge.music.metrics import (boundary_report, estimate_mode, music_stats, notes_per_second, stuck_notes,
                                         timing_report)
from emsync_bridge.music.midi import Score

AROUSAL_LEVELS = (-0.8, -0.4, 0.0, 0.4, 0.8)
PARTS = ("boundaries", "arousal", "valence", "instruments", "timing", "music")
DEFAULT_POP909 = "/work/shared/data/pop909"  # references only; skipped with a message when absent
EXCERPT_S = 30.0
EXCERPT_FROM_S = 30.0  # music references: the 30 s after the first 30 s (past the intro)
TIMING_EXCERPT_FROM_S = 10.0  # timing references: 10-40 s


def _with_seed(sampling: SamplingConfig | None, seed: int) -> SamplingConfig:
    return dataclasses.replace(sampling or SamplingConfig(), seed=seed)


def _tempo(boundaries, arousal, sampling: SamplingConfig | None):
    """The product's default (`--tempo auto`): a tempo fitted to the boundaries, unless the grid
    guard is off (then no tempo: the decoder of before the guard, token for token)."""
    from emsync_bridge.music.tempo_fit import fit_tempo

    return fit_tempo(boundaries, arousal).tempo if (sampling or SamplingConfig()).grid_guard else None


def random_boundaries(rng: np.random.Generator, duration: float, lo: float = 4.0, hi: float = 12.0) -> list[float]:
    out, t = [], rng.uniform(lo, hi)
    while t < duration - 2.0:
        out.append(round(float(t), 3))
        t += rng.uniform(lo, hi)
    return out


def eval_boundaries(engine, seeds, duration: float = 60.0, sampling: SamplingConfig | None = None,
                    valence: float = 0.0) -> dict:
    with_b, without_b, random_rate, offsets = [], [], [], []
    for seed in seeds:
        bounds = random_boundaries(np.random.default_rng(1000 + seed), duration)
        gen = generate(engine, duration, Conditioning.constant(valence, 0.0, bounds, tempo=_tempo(bounds, 0.0, sampling)),
                       _with_seed(sampling, seed))
        rep = boundary_report(gen.score(), bounds, seed=seed)
        gen0 = generate(engine, duration, Conditioning.constant(valence, 0.0, [], tempo=_tempo([], 0.0, sampling)),
                        _with_seed(sampling, seed))
        rep0 = boundary_report(gen0.score(), bounds, seed=seed)
        with_b.append(rep.hit_rate)
        without_b.append(rep0.hit_rate)
        random_rate.append(rep.random_rate)
        if rep.mean_offset is not None:
            offsets.append(rep.mean_offset)

    def mean(rows):
        return {str(k): float(np.mean([r[k] for r in rows])) for k in rows[0]}

    return {"seeds": len(seeds), "duration": duration, "valence": valence, "hit_rate": mean(with_b),
            "random_time_rate": mean(random_rate), "hit_rate_without_boundaries": mean(without_b),
            "mean_offset_s": float(np.mean(offsets)) if offsets else None}


def eval_arousal(engine, seeds, duration: float = 30.0, sampling: SamplingConfig | None = None,
                 valence: float = 0.0) -> dict:
    nps = {}
    for a in AROUSAL_LEVELS:
        nps[str(a)] = float(np.mean([
            notes_per_second(generate(engine, duration, Conditioning.constant(valence, a, tempo=_tempo([], a, sampling)),
                                      _with_seed(sampling, s)).score())
            for s in seeds]))
    vals = list(nps.values())
    return {"valence": valence, "notes_per_second": nps, "ratio_high_low": vals[-1] / max(vals[0], 1e-9),
            "monotone": bool(all(b > a for a, b in zip(vals, vals[1:])))}


def eval_valence(engine, seeds, duration: float = 30.0, sampling: SamplingConfig | None = None) -> dict:
    n_major = {}
    for v in (-0.8, 0.8):
        modes = [estimate_mode(generate(engine, duration, Conditioning.constant(v, 0.0, tempo=_tempo([], 0.0, sampling)),
                                        _with_seed(sampling, s)).score().notes)
                 for s in seeds]
        n_major[str(v)] = sum(m == "major" for m in modes)
    # from the counts, so that 7 of 10 vs 4 of 10 is 30 pp, not 0.7 - 0.4 = 0.29999999999999993
    return {"major_share": {v: n / len(seeds) for v, n in n_major.items()},
            "difference_pp": 100 * (n_major["0.8"] - n_major["-0.8"]) / len(seeds)}


def eval_instruments(engine, seeds, duration: float = 60.0, sampling: SamplingConfig | None = None,
                     valence: float = 0.0) -> dict:
    rows = []
    for s in seeds:
        bounds = [10, 20, 30, 40, 50]
        score = generate(engine, duration, Conditioning.constant(valence, 0.0, bounds, tempo=_tempo(bounds, 0.0, sampling)),
                         _with_seed(sampling, s)).score()
        counts = score.instruments()
        med = {i: float(np.median([n.pitch for n in score.notes if n.instrument == i])) if counts[i] else None
               for i in counts}
        rows.append({"active": sum(c > 0 for c in counts.values()), "stuck": stuck_notes(score),
                     "median_pitch": med, "counts": counts})
    return {"valence": valence, "min_active_instruments": min(r["active"] for r in rows),
            "mean_active_instruments": float(np.mean([r["active"] for r in rows])),
            "stuck_notes": sum(r["stuck"] for r in rows), "pieces": rows}


def _mean_rows(rows: list[dict]) -> dict:
    """Mean of each numeric entry over pieces (None where no piece has it, e.g. POP909 has no drums)."""
    keys = [k for k in rows[0] if k != "window_bpm"] if rows else []
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if r.get(k) is not None and not np.isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else None
    out["pieces"] = len(rows)
    return out


def _timing_means(rows: list[dict]) -> dict:
    """`_mean_rows` plus the share of pieces whose tempo moves more than 5 % between windows."""
    out = _mean_rows(rows)
    changes = [r["tempo_change"] for r in rows if r.get("tempo_change") is not None]
    out["pieces_tempo_change_over_5pct"] = float(np.mean([c > 0.05 for c in changes])) if changes else None
    out["pieces"] = len(rows)
    return out


def eval_timing(engine, seeds, duration: float = 30.0, sampling: SamplingConfig | None = None,
                pop909: str | None = DEFAULT_POP909) -> dict:
    """The issue's timing table; see the module docstring."""
    from emsync_bridge.music.metrics import long_chords
    from emsync_bridge.music.tempo_fit import fit_tempo

    on, off, offsets, chord_hits, instruments, stuck = [], [], [], [], [], 0
    for seed in seeds:
        v, a = ((0.8, 0.8), (0.8, -0.8), (-0.8, 0.8), (-0.8, -0.8))[seed % 4]
        cuts = random_boundaries(np.random.default_rng(2000 + seed), duration, 5.0, 9.0)
        fit = fit_tempo(cuts, a)
        offsets += [abs(c.offset) * 1000 for c in fit.cuts]
        cond = Conditioning.constant(v, a, cuts, tempo=fit.tempo)
        score = generate(engine, duration, cond, _with_seed(sampling, seed)).score()
        on.append(timing_report(score, fit.tempo))
        held = long_chords(score.notes)
        chord_hits += [any(abs(c - t) <= 1.0 for c in held) for t in cuts]
        instruments.append(sum(c > 0 for c in score.instruments().values()))
        stuck += stuck_notes(score)
        plain = generate(engine, duration, cond, dataclasses.replace(_with_seed(sampling, seed), grid_guard=False)).score()
        off.append(timing_report(plain, fit.tempo))
    result = {
        "seeds": len(seeds), "duration": duration,
        "generated": _timing_means(on), "generated_guard_off": _timing_means(off),
        "cut_to_beat_ms": {"cuts": len(offsets), "median": float(np.median(offsets)),
                           "p75": float(np.percentile(offsets, 75)), "p90": float(np.percentile(offsets, 90)),
                           "max": float(np.max(offsets))} if offsets else None,
        "long_chord_within_1s_of_cut": float(np.mean(chord_hits)) if chord_hits else None,
        "min_active_instruments": min(instruments), "stuck_notes": stuck,
    }
    result.update(timing_references(pop909, len(seeds)))
    return result


def timing_references(pop909: str | None, n: int) -> dict:
    """Timing of POP909 validation songs and of our training renditions of them (EXCERPT_S of each from TIMING_EXCERPT_FROM_S)."""
    from pathlib import Path

    from emsync_bridge.music.data import find_songs, load_song, plan_renditions, render, split_of
    from emsync_bridge.music.midi import read_midi

    root = Path(pop909) if pop909 else None
    if root is None or not root.is_dir():
        msg = f"references skipped: POP909 not found at {pop909}"
        print(msg, file=sys.stderr)
        return {"references_skipped": msg}

    songs = [p for p in find_songs(root) if split_of(p.name) == "val"][:n]
    real, rendered = [], []
    for song_dir in songs:
        ex = excerpt(read_midi(song_dir / f"{song_dir.name}.mid", POP909_TRACKS), TIMING_EXCERPT_FROM_S)
        if ex is not None:
            real.append(timing_report(ex))
        _, _, score = render(load_song(song_dir), plan_renditions(song_dir.name, 1, 0)[0])
        ex = excerpt(score, TIMING_EXCERPT_FROM_S)
        if ex is not None:
            rendered.append(timing_report(ex))
    return {"pop909": _timing_means(real), "renditions": _timing_means(rendered)}


def eval_music(engine, seeds, duration: float = EXCERPT_S, sampling: SamplingConfig | None = None) -> dict:
    """music_stats over pieces at valence and arousal +-0.8 (one combination per seed, in turn)
    with cuts 5-9 s apart, averaged."""
    combos = [(v, a) for v in (-0.8, 0.8) for a in (-0.8, 0.8)]
    rows = []
    for s in seeds:
        v, a = combos[s % len(combos)]
        bounds = random_boundaries(np.random.default_rng(2000 + s), duration, 5.0, 9.0)
        cond = Conditioning.constant(v, a, bounds, tempo=_tempo(bounds, a, sampling))
        rows.append(music_stats(generate(engine, duration, cond, _with_seed(sampling, s)).score()))
    return _mean_rows(rows)


def excerpt(score: Score, start: float = EXCERPT_FROM_S, length: float = EXCERPT_S) -> Score | None:
    """The notes starting in [start, start + length), shifted to 0 and cut at `length`; None when
    the piece is too short."""
    if score.duration < start + length:
        return None
    from emsync_bridge.music.midi import Note

    notes = [Note(n.instrument, n.pitch, n.start - start, min(n.end, start + length) - start, n.velocity)
             for n in score.notes if start <= n.start < start + length]
    return Score(notes=notes, duration=length)


def pop909_reference(pop909, limit: int = 40) -> dict:
    """music_stats of 30 s excerpts of POP909 validation songs (id % 20 == 0, the training split's
    held-out songs), their MELODY/BRIDGE/PIANO as strings/guitar/piano."""
    from pathlib import Path

    from emsync_bridge.music.data import TRACKS, find_songs, split_of
    from emsync_bridge.music.midi import read_midi

    rows = []
    for song in find_songs(Path(pop909)):
        if split_of(song.name) != "val" or len(rows) >= limit:
            continue
        score = read_midi(song / f"{song.name}.mid", track_instruments=TRACKS)
        score.notes = [n for n in score.notes if n.instrument in TRACKS.values()]
        ex = excerpt(score)
        if ex is not None:
            rows.append(music_stats(ex))
    if not rows:
        raise EmsyncError(f"no POP909 validation songs found in {pop909}")
    return _mean_rows(rows)


def renditions_reference(data_dir, limit: int = 40, split: str = "val") -> dict:
    """music_stats of 30 s excerpts of training renditions (the token cache), decoded from tokens."""
    from pathlib import Path

    from emsync_bridge.music.data import load_cache
    from emsync_bridge.music.midi import tokens_to_score

    tokens, index = load_cache(Path(data_dir))
    rows = []
    for e in index["renditions"]:
        if e["split"] != split or len(rows) >= limit:
            continue
        ex = excerpt(tokens_to_score([int(t) for t in tokens[e["offset"]:e["offset"] + e["length"]]]))
        if ex is not None:
            rows.append(music_stats(ex))
    if not rows:
        raise EmsyncError(f"no {split} renditions in {data_dir}")
    return _mean_rows(rows)


def _music_part(engine, seeds, sampling, pop909, data_dir) -> dict:
    from pathlib import Path

    out = {"generated": eval_music(engine, seeds, sampling=sampling)}
    if pop909 and Path(pop909).is_dir():
        out["pop909_val"] = pop909_reference(pop909)
    elif pop909:
        msg = f"references skipped: POP909 not found at {pop909}"
        print(msg, file=sys.stderr)
        out["pop909_val"] = {"skipped": msg}
    if data_dir:
        out["renditions_val"] = renditions_reference(data_dir)
    return out


def main(argv=None):
    from emsync_bridge.runtime import load_engine

    ap = argparse.ArgumentParser(description="evaluate a model's conditioning on decoded MIDI")
    ap.add_argument("--model", default=None)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--out", default=None, help="write the JSON here too")
    ap.add_argument("--valence-guidance", type=float, default=SamplingConfig.valence_guidance,
                    help="valence guidance weight (default: the product's default; 1 = none)")
    ap.add_argument("--temperature", type=float, default=SamplingConfig.temperature)
    ap.add_argument("--top-p", type=float, default=SamplingConfig.top_p)
    ap.add_argument("--valence", type=float, default=0.0,
                    help="valence of the boundary, arousal and instrument checks (default 0, the issue's protocol)")
    ap.add_argument("--mode-aid", choices=("on", "off"), default="on",
                    help="the valence -> mode decode aid (off: what the model does alone)")
    ap.add_argument("--pop909", default=DEFAULT_POP909,
                    help="POP909 folder for the timing and music references (skipped with a message when absent)")
    ap.add_argument("--grid-guard", choices=("on", "off"), default="on",
                    help="the decoder's grid guard (off: the model's own timing on the same tempo)")
    ap.add_argument("--data", default=None, help="music: token cache (data.py), for the renditions column")
    ap.add_argument("--only", default=",".join(PARTS),
                    help="comma-separated subset (to run parts in parallel processes)")
    a = ap.parse_args(argv)
    wanted = a.only.split(",")
    seeds = list(range(a.seeds))
    sampling = SamplingConfig(temperature=a.temperature, top_p=a.top_p, valence_guidance=a.valence_guidance,
                              mode_from_valence=a.mode_aid == "on", grid_guard=a.grid_guard == "on")
    try:  # bad options fail in one line, before the model loads
        unknown = [p for p in wanted if p not in PARTS]
        if unknown:
            raise EmsyncError(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
        Conditioning.constant(a.valence, 0.0).validate(1.0)
        sampling.validate()
        engine, files = load_engine(a.model)
    except EmsyncError as exc:
        raise SystemExit(f"error: {exc}") from None
    t = time.time()
    parts = {"boundaries": lambda: eval_boundaries(engine, seeds, sampling=sampling, valence=a.valence),
             "arousal": lambda: eval_arousal(engine, seeds, sampling=sampling, valence=a.valence),
             "valence": lambda: eval_valence(engine, seeds, sampling=sampling),
             "instruments": lambda: eval_instruments(engine, seeds[:5], sampling=sampling, valence=a.valence),
             "timing": lambda: eval_timing(engine, seeds[:16], sampling=sampling, pop909=a.pop909),
             "music": lambda: _music_part(engine, seeds, sampling, a.pop909, a.data)}
    result = {"model": files.name, "trained": files.trained, "engine": engine.name, "provider": engine.provider,
              "temperature": a.temperature, "top_p": a.top_p, "valence_guidance": a.valence_guidance,
              "mode_aid": a.mode_aid, "grid_guard": a.grid_guard}
    for name in wanted:
        result[name] = parts[name]()
    result["wall_s"] = time.time() - t
    print(json.dumps(result, indent=2))
    if a.out:
        from emsync_bridge.atomic import write_json_atomic

        write_json_atomic(a.out, result)


if __name__ == "__main__":
    main()
