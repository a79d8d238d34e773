"""POP909 -> multi-instrument EMSYNC token cache (the training data of the shipped model).

Run:  python -m emsync_bridge.music.data --pop909 ../shared/data/pop909 --groove ../shared/data/groove-midi --out data_cache/ [--workers 2]
      [--limit N] [--renditions 3] [--seed 0]

Each POP909 song is rendered several times ("renditions") as a five-instrument arrangement:
MELODY -> strings, BRIDGE -> guitar, PIANO -> piano (POP909's own playing, onsets snapped to 16ths of
the annotated beats), plus generated bass and (at high energy) guitar comping, and drums: human
grooves from the Groove MIDI Dataset (`--groove`, CC-BY 4.0, needed at build time only) laid on
the song's annotated beats, or rule-made ones, all on the song's annotated beats. At irregular phrase
starts (every 2/4/8 bars, always on a chord change) a *phrase hit* is added: a strings pad, a piano
block chord and a bass root held >= 2 beats plus a crash. In any other group of >= 3 onsets
within 60 ms with >= 2 notes held >= 0.4 s, all but the longest note end after 0.4 s: neither the
tokenizer's CHORD rule (>= 2 held >= 2 beats) nor the metrics' long-chord rule (>= 2 held >= 0.5 s)
fires away from phrase hits, so a held chord means "phrase start" - what the model must learn to
put on scene cuts, and nowhere else.
Per rendition: an energy level (low/mid/high, changing per 8-bar section), a tempo factor
(0.85/1.0/1.2), a parallel-mode flip for about half the renditions (balances major/minor), and a
transposition of -5..+6 semitones (not drums).

Cache format (directory `--out`):
  tokens.npy   np.uint16 1-D array: the EMSYNC tokens (vocab.py, 1011 tokens) of all renditions
               concatenated. A rendition holds only BAR, CHORD, TIMESHIFT and note ON/OFF tokens
               (no PAD/START/LESS/MORE_INSTRUMENTS: the trainer adds those). Time starts at 0 at
               the first downbeat before the first note.
  index.json   {"version": 1, "seed": int, "vocab_size": 1011, "tick_ms": 8, "renditions": [...]}
               each rendition is a dict:
                 offset, length    slice of tokens.npy (tokens[offset:offset+length])
                 song              POP909 song id, "001".."909"
                 split             "train" or "val" (val = int(song) % 20 == 0, split by song)
                 valence           float in [-1, 1] = clip(0.6*mode_sign + 0.4*(maj_share-min_share))
                 mode              "major" | "minor" (after the mode flip)
                 mode_flipped      bool, parallel-mode transform applied
                 maj_share, min_share   chord-duration shares of major / minor chords
                 energy            "low" | "mid" | "high" (the rendition's base level)
                 section_energy    list of 0/1/2 per 8-bar section (0 = low)
                 tempo_factor      0.85 | 1.0 | 1.2; times are divided by it (BPM x factor)
                 transpose         semitones
                 bpm               median BPM after the tempo factor
                 duration_s        seconds
                 notes_per_s       note onsets per second (all instruments)
                 n_chords          CHORD tokens in the rendition
                 phrase_times      seconds of the phrase hits (where the CHORD tokens should be)
                 instrument_notes  {instrument: note count}
  data_card.md sources, licences, recipe and statistics (copied to emsync_bridge/models/DATA_CARD.md)
  READY        written by hand / by the pipeline owner once the cache is final (not by this module)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emsync_bridge.music import vocab
from emsync_bridge.music.midi import Note, Score, chord_onsets, read_midi, score_to_tokens

TRACKS = {"MELODY": "strings", "BRIDGE": "guitar", "PIANO": "piano"}
ENERGIES = ("low", "mid", "high")
TEMPO_FACTORS = (0.85, 1.0, 1.2)
BASS_LO, BASS_HI = 28, 55
KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 42, 46, 49, 51
GM_DRUM_KEYS = (KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, RIDE)
PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Scale degrees (semitones above the tonic) that differ between parallel major and minor.
MAJOR_TO_MINOR = {4: 3, 9: 8, 11: 10}
MINOR_TO_MAJOR = {v: k for k, v in MAJOR_TO_MINOR.items()}
HIT_MIN_BEATS = 2.25  # phrase-hit notes are held at least this long (the CHORD rule needs 2 beats)
# Off-phrase chord groups: caught when >= 2 notes are held OFFPHRASE_RULE_S, then all but the
# longest end after OFFPHRASE_HELD_S. Both are before the tempo stretch, whose slowest factor (0.85)
# lengthens notes by 1/0.85: 0.4 s -> 0.47 s, still under the metrics' 0.5 s long-chord rule.
OFFPHRASE_RULE_S = 0.4
OFFPHRASE_HELD_S = 0.4
SECTION_BARS = 8
# Phrase-hit pads ring to the next phrase but at most PAD_MAX_BARS bars and PAD_MAX_S seconds (4 bars
# at a slow tempo held 10-14 s: the data's own drones); every pitched note is cut at NOTE_MAX_S.
PAD_MAX_BARS = 2
PAD_MAX_S = 4.0
NOTE_MAX_S = 6.0
# Onsets of POP909's parts move onto the nearest 16th of the annotated beats when they are within
# SNAP_TOLERANCE of a 16th (in 16ths): a model that keeps time by itself (issue 18).
SNAP_TOLERANCE = 0.3
# Groove MIDI: the Roland TD-11 keys -> General MIDI (Magenta's 9-class reduction).
GROOVE_TO_GM = {36: 36, 38: 38, 40: 38, 37: 38, 22: 42, 42: 42, 44: 42, 26: 46, 46: 46, 43: 43, 58: 43,
                47: 47, 45: 47, 48: 50, 50: 50, 49: 49, 52: 49, 55: 49, 57: 49, 51: 51, 53: 51, 59: 51}
# Human timing kept at this strength around the 16th grid (a DAW's "quantize strength"). 0: the
# training drums sit on the grid, so the model learns to keep time by itself (issue 18); the
# drummers' push and drag come back at decode time from groove templates measured on these same
# performances (`music/groove.py`), where the grid guard cannot undo them.
GROOVE_HUMAN_TIMING = 0.0
# Grooves whose hits sit this close (in 16ths) to a 16th less than GROOVE_MIN_STRAIGHT of the time are
# swung or in triplets: left out (the renditions' grid is straight 16ths).
GROOVE_STRAIGHT_TOL = 0.3
GROOVE_MIN_STRAIGHT = 0.8
DEFAULT_LIMITS = {"min_pitch": vocab.MIN_PITCH, "max_pitch": vocab.MAX_PITCH}


# ------------------------------------------------------------------------------------ parsing


@dataclass
class Chord:
    start: float
    end: float
    root: int  # pitch class
    tones: list[int]  # pitch classes, root first

    @property
    def quality(self) -> str:
        """'maj' / 'min' / 'other' from the third above the root."""
        rel = {(t - self.root) % 12 for t in self.tones}
        if 4 in rel and 3 not in rel:
            return "maj"
        if 3 in rel and 4 not in rel and 6 not in rel:
            return "min"
        if 3 in rel and 6 in rel:
            return "other"  # diminished
        return "other"


@dataclass
class Key:
    start: float
    end: float
    tonic: int
    minor: bool


@dataclass
class Song:
    song_id: str
    score: Score  # POP909 notes mapped to strings/guitar/piano; beats/downbeats from beat_midi.txt
    chords: list[Chord]  # without N segments
    keys: list[Key]


def parse_pitch_class(name: str) -> int:
    pc = PITCH_CLASSES[name[0].upper()]
    for acc in name[1:]:
        pc += 1 if acc == "#" else -1 if acc == "b" else 0
    return pc % 12


def chord_tones(label: str) -> tuple[int, list[int]] | None:
    """Harte label (`C#:min7`, `B:maj/3`, `A:sus4(b7)`) -> (root pc, chord tone pcs); None for N/X."""
    if label in ("N", "X") or ":" not in label:
        return None
    root_name, quality = label.split(":", 1)
    root = parse_pitch_class(root_name)
    quality = quality.split("/")[0]
    base = quality.split("(")[0]
    if base.startswith("hdim"):
        rel = [0, 3, 6, 10]
    elif base.startswith("dim"):
        rel = [0, 3, 6, 9] if "7" in base else [0, 3, 6]
    elif base.startswith("aug"):
        rel = [0, 4, 8]
    elif base.startswith("sus2"):
        rel = [0, 2, 7]
    elif base.startswith("sus4") or base.startswith("sus"):
        rel = [0, 5, 7]
    elif base.startswith("minmaj"):
        rel = [0, 3, 7, 11]
    elif base.startswith("min"):
        rel = [0, 3, 7] + ([10] if any(d in base for d in "79") or "11" in base else [])
        if base.startswith("min6"):
            rel = [0, 3, 7, 9]
    elif base.startswith("maj"):
        rel = [0, 4, 7] + ([11] if any(d in base for d in "79") else [])
        if base.startswith("maj6"):
            rel = [0, 4, 7, 9]
    elif base and base[0].isdigit():  # 7, 9, 11, 13: dominant
        rel = [0, 4, 7, 10]
    else:
        rel = [0, 4, 7]
    return root, [(root + r) % 12 for r in rel]


def _downbeat_column(flags: np.ndarray) -> int:
    """POP909's beat_midi.txt has two flag columns. Column 2 (0-based 1) marks every
    `num_beats_per_measure` beats (2 in 4/4 songs, where it marks half bars; 3 in 3/4 songs) and
    column 3 (0-based 2) marks 4/4 bar starts (every 4 beats; every 6 in 3/4 songs). Checked over
    all 909 songs: col-2 spacing is 2 in 877 songs and 3 in 32 (the 3/4 songs of index.csv).
    So: downbeats = column 3 in 2-beat (4/4) songs, column 2 in 3-beat songs."""
    idx = np.flatnonzero(flags[:, 1] == 1)
    step = int(np.median(np.diff(idx))) if len(idx) > 2 else 2
    return 1 if step >= 3 else 2


def load_song(song_dir: Path) -> Song:
    song_id = song_dir.name
    score = read_midi(song_dir / f"{song_id}.mid", track_instruments=TRACKS)
    score.notes = [n for n in score.notes if n.instrument in TRACKS.values()]
    beat_rows = np.loadtxt(song_dir / "beat_midi.txt", ndmin=2)
    score.beats = [float(t) for t in beat_rows[:, 0]]
    col = _downbeat_column(beat_rows)
    score.downbeats = [float(t) for t in beat_rows[beat_rows[:, col] == 1, 0]]
    chords = []
    for line in (song_dir / "chord_midi.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        parsed = chord_tones(parts[2])
        if parsed and float(parts[1]) > float(parts[0]):
            chords.append(Chord(float(parts[0]), float(parts[1]), parsed[0], parsed[1]))
    keys = []
    for line in (song_dir / "key_audio.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and ":" in parts[2]:
            tonic, mode = parts[2].split(":", 1)
            keys.append(Key(float(parts[0]), float(parts[1]), parse_pitch_class(tonic), mode.startswith("min")))
    if not keys:
        keys = [Key(0.0, score.duration, 0, False)]
    return Song(song_id, score, chords, keys)


# ------------------------------------------------------------------------- mode and transpose


def key_at(keys: list[Key], t: float) -> Key:
    for k in keys:
        if k.start <= t < k.end:
            return k
    # before the first / after the last annotated key: the nearest one
    return min(keys, key=lambda k: min(abs(t - k.start), abs(t - k.end)))


def flip_pc(pc: int, key: Key) -> int:
    """Parallel-mode transform of one pitch class relative to the key's tonic."""
    deg = (pc - key.tonic) % 12
    table = MINOR_TO_MAJOR if key.minor else MAJOR_TO_MINOR
    return (key.tonic + table.get(deg, deg)) % 12


def _flip_delta(pc: int, key: Key) -> int:
    deg = (pc - key.tonic) % 12
    table = MINOR_TO_MAJOR if key.minor else MAJOR_TO_MINOR
    return table.get(deg, deg) - deg  # -1, 0 or +1


def fold_pitch(p: int, lo: int = vocab.MIN_PITCH, hi: int = vocab.MAX_PITCH) -> int:
    while p < lo:
        p += 12
    while p > hi:
        p -= 12
    return p


# ---------------------------------------------------------------------------- human drums


@dataclass
class Groove:
    """One Groove MIDI Dataset performance in 4/4: hits as (position in beats from the file's first
    downbeat, GM key), sorted; `density` = hits per beat (sets the energy it is used at)."""

    name: str
    hits: list[tuple[float, int]]
    n_bars: int

    @property
    def density(self) -> float:
        return len(self.hits) / max(4 * self.n_bars, 1)

    def bar(self, k: int) -> list[tuple[float, int]]:
        """Hits of bar k (wrapping), positions relative to its downbeat: [-0.125, 3.875) beats, so a
        hit played a hair early belongs to the beat it anticipates."""
        k %= self.n_bars
        lo, hi = 4 * k - 0.125, 4 * k + 3.875
        return [(p - 4 * k, key) for p, key in self.hits if lo <= p < hi]


def _groove_hits(path: Path) -> tuple[list[tuple[float, int, int]], int]:
    """(beat position, GM key, velocity) of each hit of a GMD file whose key maps to GM (the files
    have one tempo; tick / ticks-per-beat is the beat position), and its tempo at tick 0 in
    microseconds per beat."""
    import mido

    mid = mido.MidiFile(str(path), clip=True)
    hits, tick, tempo = [], 0, 500000
    for msg in mido.merge_tracks(mid.tracks):
        tick += msg.time
        if msg.type == "set_tempo" and tick == 0:
            tempo = msg.tempo
        if msg.type == "note_on" and msg.velocity > 0 and msg.note in GROOVE_TO_GM:
            hits.append((tick / mid.ticks_per_beat, GROOVE_TO_GM[msg.note], msg.velocity))
    return hits, tempo


def read_groove(path: Path, timing: float = GROOVE_HUMAN_TIMING) -> Groove | None:
    """Drum hits of a GMD file in beats, keys mapped to GM, human timing kept at `timing` around the
    16th grid. None for a file whose hits are mostly off the straight 16ths (swing, triplets) or
    shorter than 2 bars."""
    return _groove(path.stem, _groove_hits(path)[0], timing)


def _groove(name: str, hits: list[tuple[float, int, int]], timing: float) -> Groove | None:
    if not hits:
        return None
    pos = np.array([p for p, _, _ in hits])
    dev = pos * 4 - np.round(pos * 4)  # in 16ths
    if np.mean(np.abs(dev) <= GROOVE_STRAIGHT_TOL) < GROOVE_MIN_STRAIGHT:
        return None
    pos = (np.round(pos * 4) + timing * dev) / 4
    n_bars = int(pos.max() // 4)  # whole bars only
    if n_bars < 2:
        return None
    kept = sorted((float(p), k) for p, (_, k, _) in zip(pos, hits) if p < 4 * n_bars - 0.125)
    return Groove(name, kept, n_bars)


class GrooveBank:
    """The 4/4 "beat" performances of the Groove MIDI Dataset, split in three energy levels by hit
    density (tertiles). Used at data-build time only."""

    def __init__(self, grooves: list[Groove]):
        if len(grooves) < 3:
            raise ValueError("need at least 3 grooves")
        order = sorted(grooves, key=lambda g: g.density)
        third = len(order) // 3
        self.levels = [order[:third], order[third:2 * third], order[2 * third:]]

    def pick(self, energy: int, rng: random.Random) -> Groove:
        return rng.choice(self.levels[energy])


def groove_files(groove_dir: Path) -> list[Path]:
    """The 4/4 beats (not fills) listed in the dataset's info.csv."""
    import csv

    with open(groove_dir / "info.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [groove_dir / r["midi_filename"] for r in rows
            if r["beat_type"] == "beat" and r["time_signature"] == "4-4" and (groove_dir / r["midi_filename"]).is_file()]


_BANKS: dict[str, GrooveBank] = {}


def groove_template(path: Path) -> dict | None:
    """One performance's feel (see music/groove.py): per part and 16th of the bar, the median
    distance from the grid (in 16ths, as played) and the median velocity; a slot the drummer never
    hit takes the part's median (a part never played: on the grid, velocity 80); offsets are
    measured from the performance's own median offset. None for the files `read_groove` leaves
    out (swung, triplets, under 2 bars)."""
    from .groove import PARTS, SLOTS, part_of

    beats, tempo = _groove_hits(path)  # the file is read once
    if _groove(path.stem, beats, GROOVE_HUMAN_TIMING) is None:
        return None
    hits = [(p * 4, k, v) for p, k, v in beats]  # in 16ths
    n_bars = int(max(p for p, _, _ in hits) // 16)
    # The drummer's median distance from the click is not feel but where the click was: taken out,
    # so the template moves the parts and slots against each other, not the whole kit off the grid.
    centre = float(np.median([p - np.round(p) for p, _, _ in hits]))
    hits = [(p - centre, k, v) for p, k, v in hits]
    offsets, velocity = {}, {}
    for part in PARTS:
        cells: list[list[tuple[float, int]]] = [[] for _ in range(SLOTS)]
        for pos, key, vel in hits:
            if part_of(key) == part and pos < 16 * n_bars - 0.5:
                slot = int(np.round(pos))
                cells[slot % SLOTS].append((pos - slot, vel))
        every = [c for cell in cells for c in cell]
        off_all = float(np.median([o for o, _ in every])) if every else 0.0
        vel_all = int(np.median([v for _, v in every])) if every else 80
        offsets[part] = [round(float(np.median([o for o, _ in c])), 3) if c else round(off_all, 3) for c in cells]
        velocity[part] = [int(np.median([v for _, v in c])) if c else vel_all for c in cells]
    return {"name": str(path.relative_to(path.parents[2])) if len(path.parents) > 2 else path.name,
            "bpm": round(60e6 / tempo, 2), "density": len(hits) / max(16 * n_bars, 1),
            "offsets": offsets, "velocity": velocity}


def build_templates(groove_dir: Path, out: Path) -> int:
    """Write the groove templates of every straight 4/4 beat of the dataset to `out` (JSON), each
    with its energy level (hit-density tertile, as GrooveBank's). Returns how many."""
    from ..atomic import write_json_atomic

    temps = [t for t in (groove_template(p) for p in groove_files(Path(groove_dir))) if t is not None]
    order = sorted(range(len(temps)), key=lambda i: temps[i]["density"])
    third = len(order) // 3
    for rank, i in enumerate(order):
        temps[i]["level"] = min(rank // max(third, 1), 2)
        del temps[i]["density"]
    write_json_atomic(out, {
        "source": "Groove MIDI Dataset (Gillick, Roberts, Engel, Eck, Bamman, ICML 2019), "
                  "magenta.tensorflow.org/datasets/groove; copy in github.com/zharry29/drums-with-llm groove/ (commit 476adbc)",
        "licence": "CC-BY-4.0 (Creative Commons Attribution 4.0 International)",
        "built_by": "python -m emsync_bridge.music.data --groove DIR --templates OUT",
        "what": "per performance, per part (kick/snare/hats) and 16th of the bar: median offset from the grid "
                "in 16ths (+ late) and median velocity; level = hit-density tertile",
        "templates": temps})
    return len(temps)


def load_grooves(groove_dir: Path | str) -> GrooveBank:
    """Read (once per process) the Groove MIDI Dataset at `groove_dir` (its info.csv and MIDI files)."""
    key = str(groove_dir)
    if key not in _BANKS:
        grooves = [g for g in (read_groove(p) for p in groove_files(Path(groove_dir))) if g is not None]
        _BANKS[key] = GrooveBank(grooves)
    return _BANKS[key]


def snap_onsets(notes: list[Note], beats: list[float], tolerance: float = SNAP_TOLERANCE) -> list[Note]:
    """Move each onset within `tolerance` 16ths of a 16th of the annotated beats onto it (the note
    keeps its length); other onsets (triplets, ornaments) stay."""
    b = np.asarray(beats, dtype=float)
    if len(b) < 2:
        return notes
    idx = np.arange(len(b), dtype=float)
    # beat position by linear interpolation, extrapolated with the first/last beat length
    def pos_of(t: float) -> float:
        if t < b[0]:
            return (t - b[0]) / (b[1] - b[0])
        if t > b[-1]:
            return len(b) - 1 + (t - b[-1]) / (b[-1] - b[-2])
        return float(np.interp(t, b, idx))

    def time_of(p: float) -> float:
        if p < 0:
            return b[0] + p * (b[1] - b[0])
        if p > len(b) - 1:
            return b[-1] + (p - len(b) + 1) * (b[-1] - b[-2])
        return float(np.interp(p, idx, b))

    out = []
    for n in notes:
        p = pos_of(n.start) * 4
        q = round(p)
        if abs(p - q) <= tolerance:
            t = time_of(q / 4)
            n = Note(n.instrument, n.pitch, t, t + (n.end - n.start), n.velocity)
        out.append(n)
    return out


# ------------------------------------------------------------------------------- arrangement


@dataclass
class Rendition:
    energy: int  # 0 low, 1 mid, 2 high (base level)
    tempo_factor: float
    flip: bool
    transpose: int
    seed: int


@dataclass
class Grid:
    """Beats and bars of the song (seconds, before the tempo factor)."""

    beats: list[float]
    downbeats: list[float]
    bars: list[list[float]] = field(default_factory=list)  # beat times of each bar

    def __post_init__(self) -> None:
        b = np.asarray(self.beats)
        for i, d in enumerate(self.downbeats):
            nxt = self.downbeats[i + 1] if i + 1 < len(self.downbeats) else d + 4 * self.beat_len(d) + 1e-3
            self.bars.append([float(t) for t in b[(b >= d - 1e-6) & (b < nxt - 1e-6)]])

    def beat_len(self, t: float) -> float:
        b = self.beats
        i = int(np.searchsorted(b, t, side="right"))
        i = min(max(i, 1), len(b) - 1)
        return b[i] - b[i - 1] if len(b) > 1 else 0.5

    def bar_end(self, i: int) -> float:
        if i + 1 < len(self.downbeats):
            return self.downbeats[i + 1]
        beats = self.bars[i]
        return beats[-1] + self.beat_len(beats[-1])


def chord_at(chords: list[Chord], t: float) -> Chord | None:
    for c in chords:
        if c.start - 1e-3 <= t < c.end - 1e-3:
            return c
    return None


def pick_phrase_starts(grid: Grid, chords: list[Chord], rng: random.Random) -> list[int]:
    """Bar indices of phrase starts: irregular steps of 2/4/8 bars (1 only in very slow songs),
    preferring phrase lengths of 3.5-14 s, and each moved forward to a bar where a chord starts."""
    chord_starts = np.array([c.start for c in chords]) if chords else np.zeros(0)

    def chord_change(i: int) -> bool:
        d = grid.downbeats[i]
        tol = 0.25 * grid.beat_len(d)
        return bool(len(chord_starts)) and bool(np.any(np.abs(chord_starts - d) <= tol))

    starts = []
    i = 0
    n = len(grid.downbeats)
    while i < n and not chord_change(i):
        i += 1
    while i < n:
        starts.append(i)
        bar_s = grid.bar_end(i) - grid.downbeats[i]
        options = [s for s in (1, 2, 4, 8) if 3.5 <= s * bar_s <= 14 and (s > 1 or bar_s >= 3.5)]
        if not options:
            options = [min((2, 4, 8), key=lambda s: abs(s * bar_s - 8))]
        weights = [{1: 1.0, 2: 1.0, 4: 1.0, 8: 0.6}[s] for s in options]
        i += rng.choices(options, weights)[0]
        while i < n and not chord_change(i):
            i += 1
    return starts


def voice_near(pcs: list[int], center: int, lo: int, hi: int) -> list[int]:
    """One pitch per pitch class, each the one closest to `center` within lo..hi, sorted."""
    out = []
    for pc in pcs:
        cands = [p for p in range(lo, hi + 1) if p % 12 == pc]
        if cands:
            out.append(min(cands, key=lambda p: abs(p - center)))
    return sorted(set(out))


def bass_root(pc: int) -> int:
    cands = [p for p in range(BASS_LO, BASS_HI + 1) if p % 12 == pc]
    return min(cands, key=lambda p: abs(p - 40))  # around E2


def bass_fifth(root: int) -> int:
    return root + 7 if root + 7 <= BASS_HI else root - 5


def arrange(song: Song, r: Rendition, grooves: GrooveBank | None = None) -> tuple[Score, dict]:
    """One rendition of a song (times in the song's own seconds; the tempo factor is applied later).
    With `grooves`, the drums of every 4-beat bar are human performances (Groove MIDI), one groove
    per 8-bar section chosen by the section's energy; without, or in other meters, rule-made drums."""
    rng = random.Random(r.seed)
    src = song.score
    keys = song.keys

    # 1. mode flip + transposition of POP909's notes and the chord labels
    def move_pitch(p: int, t: float) -> int:
        if r.flip:
            p += _flip_delta(p % 12, key_at(keys, t))
        return fold_pitch(p + r.transpose)

    def move_pc(pc: int, t: float) -> int:
        if r.flip:
            pc = flip_pc(pc, key_at(keys, t))
        return (pc + r.transpose) % 12

    notes = [Note(n.instrument, move_pitch(n.pitch, n.start), n.start, n.end, n.velocity) for n in src.notes]
    notes = snap_onsets(notes, src.beats)
    chords = []
    for c in song.chords:
        t = c.start + 1e-3
        chords.append(Chord(c.start, c.end, move_pc(c.root, t), [move_pc(pc, t) for pc in c.tones]))
    out_keys = [Key(k.start, k.end, (k.tonic + r.transpose) % 12, k.minor != r.flip) for k in keys]

    grid = Grid(list(src.beats), list(src.downbeats))
    if len(grid.downbeats) < 2 or len(grid.beats) < 4:
        raise ValueError("song has too few beats")
    n_bars = len(grid.downbeats)

    # 2. energy per 8-bar section: mostly the base level, sometimes one step away
    section_energy = []
    for _ in range((n_bars + SECTION_BARS - 1) // SECTION_BARS):
        e = r.energy
        if rng.random() < 0.4:
            e = min(2, max(0, e + rng.choice((-1, 1))))
        section_energy.append(e)

    def energy_at_bar(i: int) -> int:
        return section_energy[min(i // SECTION_BARS, len(section_energy) - 1)]

    bar_starts = np.asarray(grid.downbeats)

    def bar_of(t: float) -> int:
        return max(0, int(np.searchsorted(bar_starts, t + 1e-6, side="right")) - 1)

    # 3. energy shapes POP909's own parts: low energy keeps only on-beat piano and bridge notes
    #    (the bridge stays, thinned, so guitar is heard at every energy)
    beats_arr = np.asarray(grid.beats)
    kept = []
    for n in notes:
        e = energy_at_bar(bar_of(n.start))
        if e == 0 and n.instrument in ("piano", "guitar"):
            j = int(np.searchsorted(beats_arr, n.start))
            near = min(abs(beats_arr[k] - n.start) for k in (j - 1, j) if 0 <= k < len(beats_arr))
            if near > 0.07:
                continue
        kept.append(n)
    notes = kept

    # 4. phrase hits
    phrase_bars = pick_phrase_starts(grid, chords, rng)
    phrase_set = set(phrase_bars)
    hit_times = []
    gen: list[Note] = []
    for k, i in enumerate(phrase_bars):
        t = grid.downbeats[i]
        c = chord_at(chords, t + 0.25 * grid.beat_len(t)) or chord_at(chords, t)
        if c is None:
            continue
        beat = grid.beat_len(t)
        nxt = grid.downbeats[phrase_bars[k + 1]] if k + 1 < len(phrase_bars) else grid.bar_end(min(i + 3, n_bars - 1))
        pad_end = min(nxt, grid.bar_end(min(i + PAD_MAX_BARS - 1, n_bars - 1)), t + PAD_MAX_S)
        pad_end = max(pad_end, t + HIT_MIN_BEATS * beat)
        hold = max(c.end, t + HIT_MIN_BEATS * beat)
        hold = min(max(hold, t + HIT_MIN_BEATS * beat), pad_end)
        tones = c.tones[:4] if len(c.tones) >= 3 else (c.tones + [(c.root + 7) % 12])[:3]
        for p in voice_near(tones, 58, 48, 70):  # strings pad under the melody
            gen.append(Note("strings", p, t, pad_end - 0.02, 70))
        for p in voice_near(tones, 64, 52, 76):  # piano block chord
            gen.append(Note("piano", p, t, hold - 0.02, 100))
        gen.append(Note("bass", bass_root(c.root), t, hold - 0.02, 100))
        gen.append(Note("drums", CRASH, t, t + 0.3, 110))
        gen.append(Note("drums", KICK, t, t + 0.1, 110))
        hit_times.append(t)

    # 5. bass, drums and guitar comping, bar by bar
    section_grooves: dict[int, tuple[Groove, int]] = {}
    for i, beats in enumerate(grid.bars):
        if not beats:
            continue
        e = energy_at_bar(i)
        end = grid.bar_end(i)
        nb = len(beats)
        beat_times = beats + [end]
        is_hit = i in phrase_set
        # subdivisions: 2 (8ths) or 4 (16ths) per beat
        def sub(b: int, frac: float) -> float:
            return beat_times[b] + frac * (beat_times[b + 1] - beat_times[b])

        # bass: skip the downbeat of a phrase hit (the hit's held root covers it)
        if e == 0:
            steps = [(b, 0.0, 2.0 if nb >= 4 and b % 2 == 0 else nb) for b in range(0, nb, 2 if nb >= 4 else nb)]
            if rng.random() < 0.5:
                steps = [(0, 0.0, nb)]
            legato = 0.95
        elif e == 1:
            steps = [(b, 0.0, 1.0) for b in range(nb)]
            legato = 0.55
        else:
            steps = [(b, f, 0.5) for b in range(nb) for f in (0.0, 0.5)]
            legato = 0.45
        for j, (b, frac, length) in enumerate(steps):
            t = sub(b, frac)
            if is_hit and t < beat_times[0] + HIT_MIN_BEATS * grid.beat_len(t):
                continue
            c = chord_at(chords, t + 0.01)
            if c is None:
                continue
            root = bass_root(c.root)
            pitch = root
            if e == 1 and b % 2 == 1 and rng.random() < 0.5:
                pitch = bass_fifth(root)
            elif e == 2 and frac > 0 and rng.random() < 0.3:
                pitch = bass_fifth(root) if rng.random() < 0.6 else (root + 12 if root + 12 <= BASS_HI else root)
            dur = length * grid.beat_len(t) * legato
            # don't ring over a chord change
            dur = min(dur, c.end - t - 0.02) if c.end - t > 0.1 else dur
            gen.append(Note("bass", pitch, t, t + max(dur, 0.08), 90))

        # drums: a human groove (a bar of it per bar, in order), else the rules below
        if grooves is not None and nb == 4:
            sec = i // SECTION_BARS
            if sec not in section_grooves:
                g = grooves.pick(e, rng)
                section_grooves[sec] = (g, rng.randrange(g.n_bars))
            g, k0 = section_grooves[sec]
            for u, key in g.bar(k0 + i % SECTION_BARS):
                if e == 0 and abs(u - round(u)) > 0.125:
                    continue  # low energy: the drummer's quarter notes only
                if is_hit and key in (KICK, CRASH) and abs(u) < 0.25:
                    continue  # the hit has its own kick and crash
                b = min(max(int(np.floor(u)), 0), nb - 1)
                t = beat_times[0] + u * grid.beat_len(beat_times[0]) if u < 0 else sub(b, u - b)
                gen.append(Note("drums", key, t, t + 0.08, 90))
        dn = []
        if grooves is not None and nb == 4:
            pass
        elif e == 0:
            if rng.random() < 0.5 or i % 2 == 0:
                dn.append((0, 0.0, KICK))
                for b in range(nb):
                    dn.append((b, 0.0, RIDE))
        elif e == 1:
            dn.append((0, 0.0, KICK))
            if nb >= 4:
                dn.append((2, 0.0, KICK))
                if rng.random() < 0.3:
                    dn.append((1, 0.5, KICK))
                dn += [(1, 0.0, SNARE), (3, 0.0, SNARE)]
            else:
                dn += [(b, 0.0, SNARE) for b in range(1, nb)]
            for b in range(nb):
                dn += [(b, 0.0, CLOSED_HAT), (b, 0.5, CLOSED_HAT)]
        else:
            sixteenths = rng.random() < 0.5
            dn.append((0, 0.0, KICK))
            if nb >= 4:
                dn += [(1, 0.5, KICK), (2, 0.0, KICK), (1, 0.0, SNARE), (3, 0.0, SNARE)]
                if rng.random() < 0.5:
                    dn.append((2, 0.5, KICK))
                if rng.random() < 0.3:
                    dn.append((3, 0.75, SNARE))
            else:
                dn += [(1, 0.5, KICK)] + [(b, 0.0, SNARE) for b in range(1, nb)]
            fracs = (0.0, 0.25, 0.5, 0.75) if sixteenths else (0.0, 0.5)
            for b in range(nb):
                for f in fracs:
                    last = b == nb - 1 and f == 0.5
                    dn.append((b, f, OPEN_HAT if last else CLOSED_HAT))
        for b, f, key in dn:
            if b >= nb:
                continue
            t = sub(b, f)
            if is_hit and b == 0 and f == 0.0 and key == KICK:
                continue  # the hit has its own kick
            gen.append(Note("drums", key, t, t + 0.08, 90))

        # guitar comping at high energy: short off-beat stabs (never long: long chords = phrase hits)
        if e == 2:
            for b in range(nb):
                t = sub(b, 0.5)
                c = chord_at(chords, t + 0.01)
                if c is None:
                    continue
                for p in voice_near(c.tones[:3], 62, 52, 72):
                    gen.append(Note("guitar", p, t, t + 0.3 * grid.beat_len(t), 80))

    notes = [n if n.instrument == "drums" or n.end - n.start <= NOTE_MAX_S
             else Note(n.instrument, n.pitch, n.start, n.start + NOTE_MAX_S, n.velocity) for n in notes + gen]
    notes = _clean(notes)

    # 6. long chords only at phrase hits: shorten any other group the CHORD rule would catch
    notes = _trim_offphrase_chords(notes, grid, hit_times)

    # 7. start at the first downbeat before the first note
    t0 = 0.0
    if notes:
        first = min(n.start for n in notes)
        before = [d for d in grid.downbeats if d <= first + 1e-6]
        t0 = before[-1] if before else first
    score = Score(
        notes=[Note(n.instrument, n.pitch, n.start - t0, n.end - t0, n.velocity) for n in notes],
        downbeats=[d - t0 for d in grid.downbeats if d - t0 >= 0],
        beats=[b - t0 for b in grid.beats if b - t0 >= 0],
    )
    score.duration = max([n.end for n in score.notes] + [0.0])
    # key / chord labels for valence
    maj = sum(c.end - c.start for c in chords if c.quality == "maj")
    mn = sum(c.end - c.start for c in chords if c.quality == "min")
    total = sum(c.end - c.start for c in chords) or 1.0
    minor_time = sum(k.end - k.start for k in out_keys if k.minor)
    major_time = sum(k.end - k.start for k in out_keys if not k.minor)
    mode = "minor" if minor_time > major_time else "major"
    meta = {
        "mode": mode,
        "maj_share": round(maj / total, 4),
        "min_share": round(mn / total, 4),
        "section_energy": section_energy,
        "phrase_times": [round(t - t0, 3) for t in hit_times],
        "grooves": sorted({g.name for g, _ in section_grooves.values()}),
    }
    return score, meta


def _clean(notes: list[Note]) -> list[Note]:
    """Pitches in range, and no overlapping notes on one (instrument, pitch): a new onset cuts
    the sounding note (the tokens can't express two overlapping notes on one key)."""
    by_key: dict[tuple[str, int], list[Note]] = {}
    for n in notes:
        if n.instrument != "drums":
            n.pitch = fold_pitch(n.pitch)
        by_key.setdefault((n.instrument, n.pitch), []).append(n)
    out = []
    for group in by_key.values():
        group.sort(key=lambda n: (n.start, -n.end))
        for a, b in zip(group, group[1:]):
            if b.start < a.end:
                a.end = b.start
        out += [n for n in group if n.end - n.start >= 0.016]
    out.sort(key=lambda n: (n.start, n.instrument, n.pitch))
    return out


def _trim_offphrase_chords(notes: list[Note], grid: Grid, hit_times: list[float]) -> list[Note]:
    """Away from phrase hits, no group of notes may count as a *long chord* - neither for the
    tokenizer's CHORD rule (>= 2 held >= 2 beats) nor for the metrics' rule (>= 2 held >= 0.5 s):
    in every other onset group only the longest note keeps its length, the rest end after
    OFFPHRASE_HELD_S. So a held chord means "phrase start" in the data, as at a scene cut, and
    the model learns to keep its other chords short."""
    hits = np.asarray(sorted(hit_times)) if hit_times else np.zeros(1) - 1e9
    onsets = chord_onsets(notes, lambda t: min(2.0 * grid.beat_len(t), OFFPHRASE_RULE_S))
    bad = np.asarray([t for t in onsets if np.min(np.abs(hits - t)) > 0.07])
    if not len(bad):
        return notes
    groups: dict[int, list[Note]] = {}
    for n in notes:
        if n.instrument == "drums":
            continue
        j = int(np.searchsorted(bad, n.start))
        # the tokenizer's group starts at the onset and spans 60 ms
        for k in (j - 1, j):
            if 0 <= k < len(bad) and -1e-6 <= n.start - bad[k] <= 0.065:
                groups.setdefault(k, []).append(n)
                break
    for group in groups.values():
        longest = max(group, key=lambda n: n.end - n.start)
        for n in group:
            if n is not longest:
                n.end = min(n.end, n.start + OFFPHRASE_HELD_S)
    return notes


def stretch(score: Score, factor: float) -> Score:
    """Tempo factor f: every time divided by f (f = 1.2 plays 20 % faster)."""
    s = 1.0 / factor
    return Score(
        notes=[Note(n.instrument, n.pitch, n.start * s, n.end * s, n.velocity) for n in score.notes],
        downbeats=[d * s for d in score.downbeats],
        beats=[b * s for b in score.beats],
        duration=score.duration * s,
    )


def valence_label(mode: str, maj_share: float, min_share: float) -> float:
    """Valence in [-1, 1] from a mode and the shares of major / minor chords (the model card's label)."""
    return float(np.clip(0.6 * (1.0 if mode == "major" else -1.0) + 0.4 * (maj_share - min_share), -1, 1))


def render(song: Song, r: Rendition, grooves: GrooveBank | None = None) -> tuple[list[int], dict, Score]:
    score, meta = arrange(song, r, grooves)
    score = stretch(score, r.tempo_factor)
    tokens = score_to_tokens(score)
    valence = valence_label(meta["mode"], meta["maj_share"], meta["min_share"])
    bl = np.diff(score.beats)
    bpm = float(60.0 / np.median(bl)) if len(bl) else 120.0
    meta.update(
        valence=round(valence, 4),
        mode_flipped=r.flip,
        energy=ENERGIES[r.energy],
        tempo_factor=r.tempo_factor,
        transpose=r.transpose,
        bpm=round(bpm, 2),
        duration_s=round(score.duration, 3),
        notes_per_s=round(len(score.notes) / max(score.duration, 1e-3), 3),
        n_chords=int(sum(1 for t in tokens if t == vocab.CHORD)),
        instrument_notes=score.instruments(),
    )
    meta["phrase_times"] = [round(t / r.tempo_factor, 3) for t in meta["phrase_times"]]
    return tokens, meta, score


def plan_renditions(song_id: str, n: int, seed: int) -> list[Rendition]:
    """Per song: energies and tempo factors spread over the renditions, about half mode-flipped."""
    rng = random.Random(f"{seed}-{song_id}")
    energies = [i % 3 for i in range(n)]
    tempos = [TEMPO_FACTORS[i % 3] for i in range(n)]
    rng.shuffle(energies)
    rng.shuffle(tempos)
    flips = [i % 2 == 0 for i in range(n)]
    if n % 2 == 1 and rng.random() < 0.5:
        flips[0] = False  # odd counts: flip n//2 or n//2+1 renditions
    rng.shuffle(flips)
    return [Rendition(energies[i], tempos[i], flips[i], rng.randint(-5, 6), rng.randrange(2**31)) for i in range(n)]


def split_of(song_id: str) -> str:
    return "val" if int(song_id) % 20 == 0 else "train"


def _process(args: tuple[str, int, int, str | None]) -> tuple[str, list[tuple[np.ndarray, dict]], str]:
    path, n, seed, groove_dir = args
    song_dir = Path(path)
    try:
        song = load_song(song_dir)
        grooves = load_grooves(groove_dir) if groove_dir else None
        out = []
        for r in plan_renditions(song_dir.name, n, seed):
            tokens, meta, _ = render(song, r, grooves)
            out.append((np.asarray(tokens, dtype=np.uint16), meta))
        return song_dir.name, out, ""
    except Exception as exc:  # one broken song must not stop the build
        return song_dir.name, [], f"{type(exc).__name__}: {exc}"


def find_songs(pop909: Path) -> list[Path]:
    root = pop909 / "POP909" if (pop909 / "POP909").is_dir() else pop909
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit() and (p / f"{p.name}.mid").is_file())


def build_cache(pop909: Path, out: Path, workers: int = 2, limit: int | None = None, renditions: int = 3,
                seed: int = 0, progress: bool = True, groove: Path | None = None) -> dict:
    songs = find_songs(pop909)
    if groove is not None:
        load_grooves(groove)  # read once here, before the workers fork
    if limit:
        songs = songs[:limit]
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(s), renditions, seed, str(groove) if groove else None) for s in songs]
    t0 = time.time()
    results = []
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            it = pool.imap(_process, jobs, chunksize=2)
            results = list(_progress(it, len(jobs), progress))
    else:
        results = [_process(j) for j in _progress(iter(jobs), len(jobs), progress)]
    arrays, entries, errors, offset = [], [], [], 0
    for song_id, rends, err in results:
        if err:
            errors.append(f"{song_id}: {err}")
        for tokens, meta in rends:
            entry = {"offset": offset, "length": int(len(tokens)), "song": song_id, "split": split_of(song_id)}
            entry.update(meta)
            entries.append(entry)
            arrays.append(tokens)
            offset += len(tokens)
    tokens_all = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint16)
    np.save(out / "tokens.npy", tokens_all)
    index = {"version": 1, "seed": seed, "vocab_size": vocab.VOCAB_SIZE, "tick_ms": vocab.TICK_MS,
             "groove": _groove_summary(groove),
             "renditions_per_song": renditions, "build_seconds": round(time.time() - t0, 1),
             "errors": errors, "renditions": entries}
    (out / "index.json").write_text(json.dumps(index))
    (out / "data_card.md").write_text(data_card(index, tokens_all))
    return index


def _groove_summary(groove: Path | None) -> dict | None:
    if groove is None:
        return None
    bank = load_grooves(groove)
    return {"files_listed": len(groove_files(groove)), "grooves_used": sum(len(lv) for lv in bank.levels),
            "hits_per_beat_by_energy": [round(float(np.mean([g.density for g in lv])), 2) for lv in bank.levels]}


def _progress(it, total: int, enabled: bool):
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc="POP909 songs", unit="song")


def load_cache(out: Path) -> tuple[np.ndarray, dict]:
    return np.load(Path(out) / "tokens.npy", mmap_mode="r"), json.loads((Path(out) / "index.json").read_text())


def describe_cache(out: Path | None) -> str:
    """One line naming a token cache's sources, for the metadata of weights trained on it; without
    a cache (None, or no index.json there) the POP909 renditions alone."""
    index_path = Path(out) / "index.json" if out is not None else None
    index = json.loads(index_path.read_text()) if index_path is not None and index_path.is_file() else {}
    line = "POP909 five-instrument renditions (held chords only at phrase hits)"
    if index.get("groove"):
        line += (f", drums from {index['groove']['grooves_used']} Groove MIDI Dataset performances "
                 "(CC-BY 4.0, Gillick et al. 2019) on the annotated 16ths")
    return line + ", see DATA_CARD.md"


# ------------------------------------------------------------------------------------ data card


def cache_stats(index: dict, tokens: np.ndarray) -> dict:
    ents = index["renditions"]
    split_tokens = {s: sum(e["length"] for e in ents if e["split"] == s) for s in ("train", "val")}
    minutes = sum(e["duration_s"] for e in ents) / 60 or 1.0
    chords = sum(e["n_chords"] for e in ents)
    inst = {k: sum(e["instrument_notes"][k] for e in ents) for k in vocab.INSTRUMENTS}
    total_notes = sum(inst.values()) or 1
    by_energy = {}
    for name in ENERGIES:
        sel = [e for e in ents if e["energy"] == name]
        if sel:
            by_energy[name] = sum(e["notes_per_s"] * e["duration_s"] for e in sel) / sum(e["duration_s"] for e in sel)
    nps = np.array([e["notes_per_s"] for e in ents]) if ents else np.zeros(1)
    return {
        "songs": len({e["song"] for e in ents}),
        "songs_val": len({e["song"] for e in ents if e["split"] == "val"}),
        "renditions": len(ents),
        "tokens": int(len(tokens)),
        "tokens_train": split_tokens["train"],
        "tokens_val": split_tokens["val"],
        "hours": minutes / 60,
        "chords_per_min": chords / minutes,
        "phrase_hits": sum(len(e["phrase_times"]) for e in ents),
        "chords": chords,
        "instrument_share": {k: v / total_notes for k, v in inst.items()},
        "minor_share": sum(e["mode"] == "minor" for e in ents) / max(len(ents), 1),
        "valence_mean_major": float(np.mean([e["valence"] for e in ents if e["mode"] == "major"] or [0])),
        "valence_mean_minor": float(np.mean([e["valence"] for e in ents if e["mode"] == "minor"] or [0])),
        "notes_per_s_by_energy": by_energy,
        "notes_per_s_p10_p90": (float(np.percentile(nps, 10)), float(np.percentile(nps, 90))),
        "errors": len(index.get("errors", [])),
    }


def chord_token_times(tokens) -> list[float]:
    """Seconds of the CHORD tokens in a token sequence."""
    tick, times = 0, []
    for t in tokens:
        tick += vocab.shift_ticks(t)
        if t == vocab.CHORD:
            times.append(tick * vocab.TICK_S)
    return times


def label_checks(index: dict, tokens: np.ndarray, every: int = 40) -> dict:
    """Do the labels say what the notes do? On every `every`-th rendition, decoded from its tokens:
    CHORD tokens and metric long chords near (<= 0.1 s) a phrase hit, phrase hits that got a long
    chord, and the mode label vs the Krumhansl-Kessler estimate the evaluation uses."""
    from emsync_bridge.music.metrics import estimate_mode, long_chords
    from emsync_bridge.music.midi import tokens_to_score

    n = chord_near = chords = held_near = held = hits_covered = hits = mode_agree = 0
    for e in index["renditions"][::every]:
        seg = [int(t) for t in tokens[e["offset"]:e["offset"] + e["length"]]]
        score = tokens_to_score(seg)
        phrases = np.asarray(e["phrase_times"]) if e["phrase_times"] else np.full(1, -1e9)
        chord_times = chord_token_times(seg)
        held_times = long_chords(score.notes)
        chords += len(chord_times)
        chord_near += sum(np.min(np.abs(phrases - t)) <= 0.1 for t in chord_times)
        held += len(held_times)
        held_near += sum(np.min(np.abs(phrases - t)) <= 0.1 for t in held_times)
        hits += len(e["phrase_times"])
        hits_covered += sum(bool(held_times) and np.min(np.abs(np.asarray(held_times) - p)) <= 0.1
                            for p in e["phrase_times"])
        mode_agree += estimate_mode(score.notes) == e["mode"]
        n += 1
    share = lambda a, b: a / b if b else 0.0  # noqa: E731
    return {"renditions": n, "chord_tokens_at_phrase_hits": share(chord_near, chords),
            "long_chords_at_phrase_hits": share(held_near, held), "phrase_hits_with_long_chord": share(hits_covered, hits),
            "mode_label_agrees_with_kk": share(mode_agree, n)}


def data_card(index: dict, tokens: np.ndarray) -> str:
    s = cache_stats(index, tokens)
    c = label_checks(index, tokens)
    shares = ", ".join(f"{k} {100 * v:.1f} %" for k, v in s["instrument_share"].items())
    g = index.get("groove")
    groove_line = (f"This build: {g['grooves_used']} of the {g['files_listed']} 4/4 beats used, "
                   f"mean hits per beat {' / '.join(str(x) for x in g['hits_per_beat_by_energy'])} "
                   "(low / mid / high energy)." if g else "Not used in this build (no `--groove`).")
    energy = ", ".join(f"{k} {v:.1f}" for k, v in s["notes_per_s_by_energy"].items())
    return f"""# Data card: emsync-bridge training data (POP909 renditions, Groove MIDI drums)

## Sources and licences
- **POP909** (MIT licence): Ziyu Wang, Ke Chen, Junyan Jiang, Yiyi Zhang, Maoran Xu, Shuqi Dai,
  Guxian Bin, Gus Xia, "POP909: A Pop-song Dataset for Music Arrangement Generation", ISMIR 2020
  (arXiv:2008.07142). Commit d83e6edb of github.com/music-x-lab/POP909-Dataset. Used: `NNN.mid`
  (MELODY, BRIDGE, PIANO tracks), `beat_midi.txt`, `chord_midi.txt`, `key_audio.txt`. The
  arrangements are of copyrighted pop songs; they are used to train the model and are not shipped.
- **Groove MIDI Dataset** (Creative Commons Attribution 4.0 International): Jon Gillick, Adam
  Roberts, Jesse Engel, Douglas Eck, David Bamman, "Learning to Groove with Inverse Sequence
  Transformations", ICML 2019 (magenta.tensorflow.org/datasets/groove); the copy vendored in
  github.com/zharry29/drums-with-llm (folder `groove/`, commit 476adbc). Used: the 4/4 "beat"
  performances listed in `info.csv` (human drumming by 10 drummers on a Roland TD-11), as the
  renditions' drums. The model weights trained on it credit the dataset and its authors here and
  in the model card. {groove_line}
- **Generated parts** (bass, guitar comping, phrase hits; drums where no groove fits): rule-based,
  written for this project (`emsync_bridge/music/data.py`), same licence as the project.

## Rendition recipe (`python -m emsync_bridge.music.data`, seed {index['seed']}, {index['renditions_per_song']} renditions per song)
- MELODY -> strings (lead), BRIDGE -> guitar, PIANO -> piano, their onsets moved onto the nearest
  16th of the annotated beats when within 0.3 of a 16th (`snap_onsets`; triplets and ornaments
  stay); generated bass (MIDI 28-55, chord roots/fifths; whole/half notes at low energy, staccato
  quarters mid, staccato 8ths high); at high energy short off-beat guitar chord stabs.
- **Drums: human grooves** (with `--groove`): the 4/4 beats of the Groove MIDI Dataset whose hits
  lie mostly (>= 80 %) within 0.3 of a straight 16th (swung and triplet grooves left out), TD-11
  keys mapped to GM (36 kick, 38 snare, 42 closed / 46 open hat, 43/47/50 toms, 49 crash, 51 ride),
  each hit's distance from its 16th kept at {GROOVE_HUMAN_TIMING:.0%} (a DAW's quantize strength; 0 %: on
  the grid, so the model learns to keep time; the drummers' push, drag and accents come back at
  decode time from groove templates of these same performances, `music/groove.py`), split in three
  energy levels by hits per beat.
  Each 8-bar section plays consecutive bars of one groove of its energy from a random bar, the
  groove's beats laid on the song's annotated beats (so the drums follow POP909's tempo); at low
  energy only the hits on a beat. Bars that are not 4 beats long, or builds without `--groove`, get
  the rule-made drums (sparse ride or none at low, backbeat + 8th hats mid, 8th/16th hats + extra
  kicks high).
- Beats from `beat_midi.txt` column 1; downbeats from its 3rd column in 2-beat (4/4) songs and its
  2nd column in the 3/4 songs (column 2 marks every 2 beats in 877 songs, every 3 in 32).
- **Phrase hits** at irregular phrase starts (steps of 2/4/8 bars drawn at random, phrase length
  3.5-14 s preferred; always at a chord change): strings pad of 3-4 chord tones (MIDI 48-70) held
  to the next phrase (max 4 bars, min 2.25 beats), piano block chord and bass root held >= 2.25
  beats, crash + kick; the pad rings at most 2 bars and 4 s, and no pitched note lasts over 6 s
  (4-bar pads at slow tempos rang 10-14 s: the data's own drones). In any other note group of >= 3 onsets within 60 ms with >= 2 notes held
  >= 0.4 s, all but the longest note end after 0.4 s (before the tempo stretch, so < 0.5 s after it):
  neither the CHORD rule (>= 2 held >= 2 beats) nor the metrics' long-chord rule (>= 2 held >= 0.5 s)
  fires away from phrase hits, so held chords mark phrase starts only.
- **Energy**: base level low/mid/high per rendition (each song gets all three), changed by one step
  in 40 % of 8-bar sections. Low energy also keeps only the on-beat piano and bridge notes.
- **Tempo factor** 0.85/1.0/1.2 (times divided by it), one each per song.
- **Mode**: parallel-mode transform (major->minor moves scale degrees 4/9/11 semitones above the
  tonic of `key_audio.txt` down one semitone; minor->major the reverse) for about half the
  renditions, applied to POP909 notes and chord labels before the parts are generated.
- **Transposition** -5..+6 semitones (not drums); notes folded by octaves into 21..108.
- **Valence** = clip(0.6 * mode_sign + 0.4 * (major_chord_share - minor_chord_share), -1, 1)
  (chord shares by duration). Arousal is computed by the trainer per window from note density.
- Validation split by song: song id % 20 == 0.

## Statistics
- Songs {s['songs']} ({s['songs_val']} val), renditions {s['renditions']}, {s['hours']:.1f} hours of music.
- Tokens: {s['tokens']:,} total; train {s['tokens_train']:,}; val {s['tokens_val']:,}.
- CHORD tokens: {s['chords_per_min']:.2f} per minute (one every {60 / max(s['chords_per_min'], 1e-9):.1f} s);
  {s['chords']:,} CHORD tokens for {s['phrase_hits']:,} phrase hits.
- Label checks on {c['renditions']} renditions (every 40th, decoded from the tokens; `label_checks`):
  - CHORD tokens within 0.1 s of a phrase hit: {100 * c['chord_tokens_at_phrase_hits']:.1f} %;
  - the metrics' long chords within 0.1 s of a phrase hit: {100 * c['long_chords_at_phrase_hits']:.1f} %;
  - phrase hits with a long chord: {100 * c['phrase_hits_with_long_chord']:.1f} %;
  - mode label = Krumhansl-Kessler estimate of the notes (`metrics.estimate_mode`): {100 * c['mode_label_agrees_with_kk']:.0f} %.
- Instrument note shares: {shares}.
- Mode: {100 * (1 - s['minor_share']):.1f} % major / {100 * s['minor_share']:.1f} % minor renditions;
  mean valence major {s['valence_mean_major']:+.2f}, minor {s['valence_mean_minor']:+.2f}.
- Notes per second by base energy: {energy}; over renditions p10-p90
  {s['notes_per_s_p10_p90'][0]:.1f}-{s['notes_per_s_p10_p90'][1]:.1f}.
- Songs that failed to render: {s['errors']}.
- Build time: {index['build_seconds']} s.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pop909", type=Path, help="POP909 folder (holding POP909/NNN/ or NNN/); required but with --templates")
    ap.add_argument("--groove", type=Path, default=None,
                    help="Groove MIDI Dataset folder (info.csv + drummerN/): human drums instead of the rules")
    ap.add_argument("--out", type=Path, default=Path("data_cache"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="only the first N songs")
    ap.add_argument("--renditions", type=int, default=3, help="renditions per song")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--card-only", action="store_true", help="rewrite data_card.md of an existing --out cache")
    ap.add_argument("--templates", type=Path, default=None,
                    help="with --groove: only write the groove templates (music/groove.py) to this JSON file")
    args = ap.parse_args(argv)
    if args.templates is not None:
        if args.groove is None:
            ap.error("--templates needs --groove")
        print(f"{build_templates(args.groove, args.templates)} groove templates -> {args.templates}")
        return 0
    if args.pop909 is None:
        ap.error("--pop909 is required")
    if args.card_only:
        tokens, index = load_cache(args.out)
        (args.out / "data_card.md").write_text(data_card(index, tokens))
        return 0
    t = time.time()
    index = build_cache(args.pop909, args.out, args.workers, args.limit, args.renditions, args.seed,
                        groove=args.groove)
    s = cache_stats(index, np.load(args.out / "tokens.npy", mmap_mode="r"))
    print(f"{s['renditions']} renditions of {s['songs']} songs, {s['tokens']:,} tokens "
          f"(train {s['tokens_train']:,}, val {s['tokens_val']:,}), {s['chords_per_min']:.2f} CHORD/min, "
          f"minor {100 * s['minor_share']:.0f} %, {len(index['errors'])} errors, {time.time() - t:.0f} s")
    for e in index["errors"][:10]:
        print("  error:", e)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
