"""EMSYNC generation: sample tokens until the time cursor reaches the requested duration, with
boundary offsets recomputed after every token so long chords land on the targets.

Bookkeeping follows EMSYNC's released loop (emsync-colab generate.py):
- b = seconds from the time cursor to the nearest target still ahead and unused, clamped to
  [0, 8]; 8 when none is ahead (a target the cursor has passed is dropped silently);
- a CHORD token within 1 s of a target marks that target hit (and used up);
- the sequence is [V, A, <MORE_INSTRUMENTS>, tokens...]; sampling excludes PAD, START and the
  instrument-count tokens; temperature, inclusive top-p that keeps the top token, and the
  repeat penalty that heats up when the nucleus collapses.
Valence/arousal may change over time (one value per scene): the prefix is then re-primed.

Two decoders share this loop: `reference` recomputes the whole window for every token (EMSYNC's
way, kept as the correctness and speed baseline); `cached` keeps a KV cache and, when the window
is full, drops the oldest chunk and re-primes once.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from emsync_bridge.errors import EmsyncError
from emsync_bridge.music import groove, vocab
from emsync_bridge.music.metrics import key_correlations, key_from_histogram
from emsync_bridge.music.midi import Score, tokens_to_score
from emsync_bridge.music.model_config import (DEFAULT_DRUM_FEEL, DEFAULT_TEMPERATURE, DEFAULT_TOP_P,
                                              DEFAULT_VALENCE_GUIDANCE, MAX_SECONDS_TO_CHORD,
                                              N_PREFIX, VALENCE_GUIDANCE_S)
from emsync_bridge.tempo import TempoPoint
from emsync_bridge.tempo import TempoMap

log = logging.getLogger(__name__)

CHORD_SENSITIVITY_S = 1.0
MAX_NOTE_S = 8.0
# A note still sounding after RELEASE_S is released in the token stream (the model sees the OFF):
# the training data holds no pitched note longer than 6 s (data.NOTE_MAX_S) and its pads end
# within 4 s; 6 s let ~12 notes per 30 s ring >= 4 s under everything else (issue 17).
RELEASE_S = 4.0
# A drum hit is a one-shot: the model sometimes never releases one, and score.mid showed drum
# "notes" seconds long across scenes (a bar a composer has to trim). Released after this.
DRUM_RELEASE_S = 0.5
# Voices per instrument (a synth's voice stealing): a note-on over the limit releases that
# instrument's oldest sounding note at the same instant (boundary-chord notes excepted for their
# SUSTAIN_S). A bass line is one voice, strings a lead over a held note, guitar a triad, piano a
# four-note voicing. Measured on 20 pieces (issue 17; MODEL_CARD.md): polyphony 5.9 -> 4.1,
# beats on the most common triad 0.61 -> 0.50, distinct long triads 2.5 -> 3.0. None = no limit.
VOICES: dict[str, int | None] = {"bass": 1, "drums": None, "guitar": 3, "piano": 4, "strings": 2}
CHORD_NOTES = 3  # pitched notes a boundary CHORD gets before time moves on (the long-chord rule's 3)
MAX_TOKENS_HELD = 24
SUSTAIN_S = 1.0  # a boundary chord's notes sound at least this long (the long-chord rule needs 0.5 s)
# The valence -> mode aid (SamplingConfig.mode_from_valence, ModeSteer): see ModeSteer. Below
# MODE_MIN_VALENCE the model is left alone.
MODE_NOTES = 4
MODE_PENALTY = 3.0
# The scale alone drifts to the relative key (same notes): the bass leans away from the rival key's
# tonic (below; at first the relative key's: degree 9 in major, 3 in minor) by
# MODE_BASS_RIVAL_PENALTY * |valence| nats and
# toward the tonic's root by MODE_BASS_TONIC_BONUS * |valence|. The bass only, and a lean, not a
# pull to the tonic triad (+3 on every token vamped one chord). With the voice limits (VOICES: no
# ringing tonic drones to lean on) measured on the shipped weights, major share pp at valence
# +-0.8 (20 seeds) / beats on the top triad / distinct long triads (16 pieces): relative 2, tonic 0:
# 40 / 0.51 / 2.9; relative 4: 45 / 0.51 / 3.2; relative 6: 50 / 0.51 / 3.0; tonic 1: 75 / 0.59 /
# 2.3; relative 4 + tonic 0.5: 80 / 0.50 / 3.2 (kept).
MODE_BASS_RIVAL_PENALTY = 4.0
MODE_BASS_TONIC_BONUS = 0.5
# The bass lean acts only while the music drifts toward a key of the other mode: while the
# best-correlating such key (KK correlation with what sounded, duration-weighted, fading with
# MODE_MEMORY_S) comes within MODE_LEAN_MARGIN of the wanted key, the bass leans away from its
# tonic (ModeSteer.drifting). A secure key leaves the bass free (vi in major, III in minor).
# Measured on held-out seeds (music: 32-64 pieces as in evaluate, seeds 100-131 / 200-263; mode:
# seeds 100-139 / 100-159), shipped weights; major share pp / top triad / distinct triads on >= 4
# beats / entropy. At top-p 0.7: lean always (before) 70 / 0.58 / 3.03 / 2.25 (64 pieces: 0.53 /
# 3.36 / 2.27); relative key only, margin 0.1: 52.5 / 0.47 / 3.94 / 2.40 (64: 0.49 / 3.66 / 2.38);
# margin 0.2: 45 / 0.46 / 4.09; 20 s memory: 47.5 / 0.46 / 3.91. At top-p 0.8 (DEFAULT_TOP_P),
# 60 seeds for the mode, 64 pieces: relative key only 58 / 0.39 / 4.31 / 2.48 (margin 0.25: 48 pp);
# any key of the other mode (kept) 75 / 0.39 / 4.22 / 2.48 -- minor pieces had drifted mostly to
# the major key on bVII (5 of 9 read major), which the relative key's lean did not see.
# SamplingConfig.wake_nats: the retrained weights left the guitar out of 9 of 32 held-out 30 s
# pieces (all at arousal -0.8); +1.5 nats once a part is silent for 8 s: 0 of 32 (3 nats: 0, with
# a fifth more guitar notes).
WAKE_S = 8.0
WAKE_NATS = 1.5
MODE_MEMORY_S = 8.0
MODE_LEAN_MARGIN = 0.1
MODE_MIN_VALENCE = 0.2
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the harmonic minor's leading tone


@dataclass(frozen=True)
class EmotionSegment:
    start: float  # seconds; the segment lasts until the next one starts
    valence: float | None
    arousal: float | None


GRID_DIVISIONS = (2, 3, 4, 6, 8, 12)  # grid points per quarter note the guard knows (4: 16ths; 3, 6: triplets)


@dataclass
class Conditioning:
    """What the music should follow: emotion over time, the boundary targets (seconds) and, when
    known, the tempo map whose grid the onsets keep to (`grid`: points per quarter note; several
    values are merged, e.g. (4, 3) allows 16ths and 8th triplets)."""

    emotion: list[EmotionSegment] = field(default_factory=lambda: [EmotionSegment(0.0, 0.0, 0.0)])
    boundaries: list[float] = field(default_factory=list)
    tempo: TempoMap | None = None
    grid: tuple[int, ...] = (4,)
    tempo_origin: float = 0.0  # the tempo map's time at this conditioning's 0 s (a DAW plan's start)

    @classmethod
    def constant(cls, valence: float | None, arousal: float | None, boundaries=(),
                 tempo: "float | TempoMap | None" = None, grid: tuple[int, ...] = (4,)) -> "Conditioning":
        """`tempo`: a BPM (constant 4/4) or a TempoMap; None: no grid."""
        return cls([EmotionSegment(0.0, valence, arousal)], sorted(boundaries), as_tempo_map(tempo), tuple(grid))

    def emotion_at(self, t: float) -> tuple[float | None, float | None]:
        current = self.emotion[0]
        for seg in self.emotion:
            if seg.start <= t + 1e-9:
                current = seg
            else:
                break
        return current.valence, current.arousal

    def validate(self, duration: float) -> None:
        if not (duration > 0 and math.isfinite(duration)):
            raise EmsyncError(f"duration must be a positive number of seconds, got {duration}")
        for seg in self.emotion:
            for name, value in (("valence", seg.valence), ("arousal", seg.arousal)):
                if value is not None and not (-1.0 <= value <= 1.0):
                    raise EmsyncError(f"{name} must be within [-1, 1], got {value}")
        for t in self.boundaries:
            if not (t >= 0 and math.isfinite(t)):
                raise EmsyncError(f"boundary times must be non-negative seconds, got {t}")
        if not self.grid or any(g not in GRID_DIVISIONS for g in self.grid):
            raise EmsyncError(f"grid must be points per quarter note from {GRID_DIVISIONS}, got {self.grid}")


def as_tempo_map(tempo: "float | TempoMap | None") -> TempoMap | None:
    """A BPM becomes a constant 4/4 map; a map or None passes through; bad values are one-line errors."""
    if tempo is None or isinstance(tempo, TempoMap):
        return tempo
    bpm = float(tempo)
    if not 20.0 <= bpm <= 400.0:
        raise EmsyncError(f"tempo must be 20..400 BPM, got {tempo}")
    return TempoMap([TempoPoint(0.0, bpm)])


@dataclass
class SamplingConfig:
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    repeat_penalty: float = 0.4
    seed: int = 0
    instruments: tuple[str, ...] = vocab.INSTRUMENTS  # others are masked out at sampling
    # Three decode-side aids for boundaries, all off reproduces EMSYNC exactly:
    # - land: shorten a time shift that would jump over an unused boundary so the cursor lands on
    #   it (b = 0, the state that precedes every CHORD in training, where an event always sits on
    #   the chord's tick; EMSYNC lets such jumps skip the target);
    # - hold: a target not yet hit keeps b at 0 for up to the 1 s hit tolerance instead of being
    #   dropped the moment the cursor passes it, so the model is still told the chord is due.
    # - chord: when the cursor sits on an unused boundary, the next token is CHORD (the token the
    #   model was trained to follow with a held chord), time stands still until it has started
    #   three pitched notes there, and those notes neither end nor re-strike for SUSTAIN_S; off its
    #   own beat grid the model would often let the cut pass or release the chord at once.
    land_on_boundaries: bool = True
    hold_missed_boundaries: bool = True
    chord_on_boundaries: bool = True
    # The grid guard (GridGuard): when the conditioning has a tempo, time shifts may only land on
    # its grid, so every onset sits on a 16th (or the grid asked for). With `chord_on_grid` a cut
    # between grid points gets its boundary chord on the nearest grid point (within a 32nd, far
    # inside the 1 s hit tolerance) instead of on the cut itself, which would put the chord and
    # everything after it until the next shift off the grid.
    grid_guard: bool = True
    chord_on_grid: bool = True
    # Valence guidance (classifier-free guidance on the valence condition only): the logits are
    # uncond + w * (cond - uncond), where uncond is the same sequence with valence missing (the
    # model's trained null). w = 1 is plain EMSYNC; w > 1 follows valence (major/minor) more
    # strongly at twice the compute per token. Measured on the shipped model: see MODEL_CARD.md.
    valence_guidance: float = DEFAULT_VALENCE_GUIDANCE
    # Guidance only matters while the key is being chosen: once a few bars are in the window the
    # notes themselves carry the mode. So it runs for this many seconds from the start and from
    # each valence change (None: throughout), which keeps its cost to a fraction of the piece.
    valence_guidance_s: float | None = VALENCE_GUIDANCE_S
    # Valence -> mode: the shipped model barely follows valence (MODEL_CARD.md), so the decoder keeps
    # the piece in the mode valence asks for: major above 0, minor below, around the tonic of the
    # first notes (ModeSteer). The tonic stays, so a valence change is a parallel-mode change.
    mode_from_valence: bool = True
    # A live splice (the bridge regenerating from the play head): no time passes before the first
    # pitched note-on, so the new material is heard at once instead of after a rest the model chose.
    attack_at_start: bool = False
    # Human drum feel (music/groove.py): on a grid, each drum hit is moved and accented as one real
    # drummer of the Groove MIDI Dataset played that 16th of the bar (a template drawn by the seed
    # at the energy arousal asks for), scaled by this strength; 0 leaves the drums on the grid.
    drum_feel: float = DEFAULT_DRUM_FEEL
    # Every part keeps a voice: a pitched instrument silent for WAKE_S (from the start or its last
    # note-on) gets WAKE_NATS on its note-ons until it plays (0 = off).
    wake_nats: float = WAKE_NATS

    def validate(self) -> None:
        if not 0.0 < self.temperature <= 10.0:
            raise EmsyncError(f"temperature must be within (0, 10], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise EmsyncError(f"top-p must be within (0, 1], got {self.top_p}")
        if not 0.0 <= self.valence_guidance <= 10.0:
            raise EmsyncError(f"valence guidance must be within [0, 10], got {self.valence_guidance}")
        if self.valence_guidance_s is not None and not self.valence_guidance_s >= 0:
            raise EmsyncError(f"valence guidance seconds must be >= 0, got {self.valence_guidance_s}")
        if not 0.0 <= self.drum_feel <= 1.0:
            raise EmsyncError(f"drum feel must be within [0, 1], got {self.drum_feel}")


@dataclass
class BoundaryHit:
    target: float
    hit_time: float | None  # time cursor at the CHORD token that used it up


@dataclass
class Generation:
    tokens: list[int]
    duration: float
    hits: list[BoundaryHit]
    wall_time: float
    decoder: str
    engine: str
    provider: str
    seed: int
    truncated: bool = False  # stopped by the token cap before reaching the duration
    grid: "GridGuard | None" = None  # the grid the onsets were kept to, if any
    feel: "groove.Feel | None" = None  # the human drum feel laid on that grid, if any

    def score(self) -> Score:
        s = tokens_to_score(self.tokens, end_time=self.duration)
        if self.grid is not None:
            # the guard keeps onsets within half an 8 ms tick of the grid: put them exactly on it,
            # so a DAW reading score.mid shows them on its grid lines (ends stay on the 8 ms ticks:
            # moving them too would change where a splice cuts the notes held across it)
            for n in s.notes:
                t = self.grid.nearest(n.start)
                if abs(t - n.start) <= vocab.TICK_S / 2 + 1e-6 and t < n.end:
                    n.start = t
        groove.apply_feel(s.notes, self.feel)
        # Notes may run past the film: cut them at the end (nothing sounds after it). A note the
        # model never released is let go after MAX_NOTE_S: a drone under every later scene is
        # never what the film needs (the training data holds nothing longer than 4 bars).
        s.notes = [n for n in s.notes if n.start < self.duration - 1e-6]
        for n in s.notes:
            n.end = min(n.end, self.duration, n.start + MAX_NOTE_S)
        s.duration = self.duration
        return s


class BoundaryTracker:
    """Targets, the time cursor and EMSYNC's hit bookkeeping; testable on hand-made tokens."""

    def __init__(self, targets, hold_s: float = 0.0):
        """`hold_s`: how long a missed target keeps b at 0 (EMSYNC: 0, dropped at once)."""
        self.hold_s = hold_s
        self.targets = sorted(float(t) for t in targets)
        self.hit_time: list[float | None] = [None] * len(self.targets)
        self.cursor = 0.0

    def b(self) -> float:
        ahead = [max(t - self.cursor, 0.0) for t, h in zip(self.targets, self.hit_time)
                 if h is None and (t - self.cursor >= 0 or t - self.cursor > -self.hold_s)]
        return min(min(ahead, default=MAX_SECONDS_TO_CHORD), MAX_SECONDS_TO_CHORD)

    def advance(self, token: int) -> float:
        """Apply a token; returns the b value for the next position."""
        if token == vocab.CHORD:
            for i, t in enumerate(self.targets):
                if self.hit_time[i] is None and abs(self.cursor - t) < CHORD_SENSITIVITY_S:
                    self.hit_time[i] = self.cursor
        self.cursor += vocab.shift_ticks(token) * vocab.TICK_S
        return self.b()

    def land(self, token: int) -> int:
        """`token`, or a shorter TIMESHIFT that ends on the next unused target it would skip."""
        ticks = vocab.shift_ticks(token)
        if ticks == 0:
            return token
        end = self.cursor + ticks * vocab.TICK_S
        for t, h in zip(self.targets, self.hit_time):
            if h is None and self.cursor < t < end - 1e-9:
                to_target = int(round((t - self.cursor) / vocab.TICK_S))
                return vocab.timeshift(to_target) if to_target >= 1 else token
        return token

    def on_unused_target(self) -> bool:
        """The cursor is on (within a tick of) a target no CHORD has used yet."""
        return any(h is None and abs(t - self.cursor) <= vocab.TICK_S / 2 + 1e-9 for t, h in zip(self.targets, self.hit_time))

    def hits(self) -> list[BoundaryHit]:
        return [BoundaryHit(t, h) for t, h in zip(self.targets, self.hit_time)]


class GridGuard:
    """Allows only the time shifts that end on a grid point of a tempo map.

    Grid points are absolute (QN k/d through the tempo map, rounded to the 8 ms tick), so the
    cursor never drifts off the grid however many shifts it takes; a cursor off the grid (a primer
    or a splice) is brought back by its first shift. At any cursor at least one shift is allowed
    (the next grid point; a 16th is far under the longest shift, 1 s, above 15 BPM).

    With the guard on, the model often samples a CHORD of its own up to a second before a cut
    (measured: 2 of 9 cuts on the test film), which uses the cut up (EMSYNC's 1 s hit window)
    without a held chord on it; so within 1 s before an unused cut the decoder's CHORD on the
    cut is the only one."""

    def __init__(self, tempo: TempoMap, grid: tuple[int, ...] = (4,), origin: float = 0.0):
        """`origin`: the map's time at the generation's 0 s (the grid stays the map's own)."""
        self.tempo, self.grid, self.origin = tempo, tuple(grid), float(origin)
        self._cursor: float | None = None
        self._allowed = np.zeros(0, dtype=int)
        self._weights = np.zeros((0, 0))

    def points_between(self, t0: float, t1: float) -> list[float]:
        """Grid times in [t0, t1], sorted (generation seconds)."""
        o = self.origin
        q0, q1 = self.tempo.time_to_qn(max(t0 + o, 0.0)), self.tempo.time_to_qn(max(t1 + o, 0.0))
        pts = set()
        for d in self.grid:
            for k in range(math.floor(q0 * d - 1e-6), math.ceil(q1 * d + 1e-6) + 1):
                if k >= 0:
                    pts.add(round(self.tempo.qn_to_time(k / d) - o, 9))
        return sorted(t for t in pts if t0 - 1e-9 <= t <= t1 + 1e-9)

    def nearest(self, t: float) -> float:
        """The grid point nearest to `t` (seconds)."""
        pts = self.points_between(t - 1.0, t + 1.0)
        return min(pts, key=lambda p: (abs(p - t), p)) if pts else t

    def allowed_ticks(self, cursor: float) -> list[int]:
        """Shift lengths (ticks) from `cursor` that end on a grid point."""
        span = vocab.MAX_SHIFT_TICKS * vocab.TICK_S
        ticks = {int(round((t - cursor) / vocab.TICK_S)) for t in self.points_between(cursor, cursor + span + vocab.TICK_S)}
        return sorted(n for n in ticks if 1 <= n <= vocab.MAX_SHIFT_TICKS)

    def fold(self, logits: np.ndarray, cursor: float) -> np.ndarray:
        """The logits with each TIMESHIFT's probability split between the two grid points around
        where it would land (stochastic rounding: a shift of t ticks between grid shifts a < t < b
        goes to b with probability (t - a) / (b - a), else to a; below the first grid point, a is
        "stay in this instant", whose share is dropped so it goes to what happens here). The time
        the model meant to move on is kept on average, so its pace and note density survive the
        grid: rounding to the nearest point instead spread strums a 16th apart on fast grids and
        stacked notes into thick chords on slow ones; masking the off-grid shifts handed the
        probability of moving on to the notes."""
        if cursor != self._cursor:
            allowed = np.array(self.allowed_ticks(cursor))
            ticks = np.arange(1, vocab.MAX_SHIFT_TICKS + 1)
            hi = np.minimum(np.searchsorted(allowed, ticks), len(allowed) - 1)  # first grid shift >= t
            lo_t = np.where(hi > 0, allowed[np.maximum(hi - 1, 0)], 0)
            hi_t = allowed[hi]
            w_hi = np.where(ticks >= hi_t, 1.0, (ticks - lo_t) / np.maximum(hi_t - lo_t, 1))
            weights = np.zeros((len(ticks), len(allowed)))
            weights[np.arange(len(ticks)), hi] = w_hi
            below = hi > 0  # the rest goes to the grid shift before, or (first gap) stays
            weights[np.arange(len(ticks))[below], hi[below] - 1] = 1.0 - w_hi[below]
            self._cursor, self._allowed, self._weights = cursor, allowed, weights
        out = logits.astype(np.float64)
        shifts = out[vocab.TIMESHIFT_BASE:vocab.NOTE_BASE]
        m = np.max(shifts)
        if not np.isfinite(m):
            return out
        with np.errstate(divide="ignore"):  # a grid shift that gets nothing stays at -inf
            folded = m + np.log(np.exp(shifts - m) @ self._weights)
        shifts[:] = -np.inf
        shifts[self._allowed - 1] = folded
        return out


def note_on_grid(logits: np.ndarray) -> np.ndarray:
    """The note-on logits as a writable [instrument, pitch] view (vocab.INSTRUMENTS order, pitches
    from MIN_PITCH): each instrument's note-ons are one contiguous block of the vocabulary."""
    notes = logits[vocab.NOTE_BASE:vocab.LESS_INSTRUMENTS].reshape(len(vocab.INSTRUMENTS), 2, vocab.N_PITCHES)
    return notes[:, 1]


_PITCH_CLASS = (np.arange(vocab.N_PITCHES) + vocab.MIN_PITCH) % 12
_PITCHED_ROWS = np.array([i != "drums" for i in vocab.INSTRUMENTS])
_BASS_ROW = vocab.INSTRUMENTS.index("bass")


def _row(on: int) -> int:
    """The instrument row (index in vocab.INSTRUMENTS) of a note-on token."""
    return (on - vocab.NOTE_BASE) // (2 * vocab.N_PITCHES)


def _wake(last_on: np.ndarray, cursor: float, nats: float) -> np.ndarray | None:
    """Nats per instrument row for the note-ons of each pitched instrument silent for WAKE_S, or None."""
    silent = _PITCHED_ROWS & (cursor - last_on >= WAKE_S)
    return np.where(silent, nats, 0.0) if silent.any() else None


class ModeSteer:
    """Puts a piece in the mode its valence asks for and lets the model choose the harmony.

    A fresh piece opens on the tonic chord of the wanted mode (`chord`: bass root and a piano
    triad, the tonic drawn from the seed); a valence change across 0 re-primes with the parallel
    mode's tonic chord at that instant. Between the two, pitch classes outside the wanted scale
    lose MODE_PENALTY * |valence| nats and, while the music drifts toward a key of the other mode
    (`drifting`), the bass leans away from that key's tonic: a light touch, so the model's own
    progressions stay (measured against the former key lock, which raised the bass's tonic triad
    on every token and vamped one chord: MODEL_CARD.md). A splice (a
    primer of real music) takes the key of all of it; a piece without a primer or valence takes
    the key of its first MODE_NOTES notes."""

    def __init__(self, tonic: int | None = None):
        self.counts = np.zeros(12)
        self.tonic: int | None = tonic
        self.heard = np.zeros(12)  # seconds each pitch class sounded, fading with MODE_MEMORY_S
        self._key_r = np.zeros(24)  # key_correlations(heard), updated by listen (time passing), read per token
        self._cached: tuple = (None, None)

    def listen(self, sounding, seconds: float) -> None:
        """`sounding` (note-on tokens) sounded for `seconds`."""
        self.heard *= math.exp(-seconds / MODE_MEMORY_S)
        for on in sounding:
            if _PITCHED_ROWS[_row(on)]:
                self.heard[_PITCH_CLASS[(on - vocab.NOTE_BASE) % vocab.N_PITCHES]] += seconds
        self._key_r = key_correlations(self.heard)

    def drifting(self, valence: float) -> int | None:
        """The tonic pitch class of the key of the other mode that sounds within MODE_LEAN_MARGIN
        of the wanted key (the best-correlating one), or None while the wanted mode is secure.
        Before anything has sounded: the relative key's."""
        r = self._key_r
        if not r.any():
            return (self.tonic + (9 if valence > 0 else 3)) % 12
        wanted = self.tonic if valence > 0 else 12 + self.tonic
        other = r[12:] if valence > 0 else r[:12]  # the keys of the other mode, by tonic
        rival = int(np.argmax(other))
        return rival if other[rival] >= r[wanted] - MODE_LEAN_MARGIN else None

    def hear(self, token: int, settle: bool = True) -> None:
        """Count a pitched note-on until the tonic is chosen. `settle=False` for a primer: the key
        of all of it (the music just before a splice), not of its first notes."""
        if self.tonic is not None:
            return
        ev = vocab.decode_token(token)
        if ev.kind == "on" and ev.instrument != "drums":
            self.counts[ev.pitch % 12] += 1
            if settle:
                self.settle()

    def settle(self) -> None:
        if self.tonic is None and self.counts.sum() >= MODE_NOTES:
            self.tonic = key_from_histogram(self.counts)[0]

    @staticmethod
    def acts(valence: float | None) -> bool:
        return valence is not None and abs(valence) >= MODE_MIN_VALENCE

    def chord(self, valence: float) -> list[int]:
        """Note-ons of the tonic chord in valence's mode: the bass root (E1-D#2) and a piano triad
        in root position from the tonic at or above G3."""
        third = 4 if valence > 0 else 3
        bass = 28 + (self.tonic - 4) % 12
        root = 55 + (self.tonic - 7) % 12
        return [vocab.note_on("bass", bass)] + [vocab.note_on("piano", root + d) for d in (0, third, 7)]

    def bias(self, valence: float | None) -> np.ndarray | None:
        """Nats to add to the note-on logits, [instrument, pitch] as `note_on_grid`, or None."""
        if self.tonic is None or not self.acts(valence):
            return None
        key = (self.tonic, valence, self.drifting(valence))
        if self._cached[0] != key:  # valence is constant over long stretches
            self._cached = (key, self._bias(*key))
        return self._cached[1]

    @staticmethod
    def _bias(tonic: int, valence: float, rival: int | None) -> np.ndarray:
        scale = MAJOR_SCALE if valence > 0 else MINOR_SCALE
        degree = (_PITCH_CLASS - tonic) % 12
        grid = np.zeros((len(vocab.INSTRUMENTS), vocab.N_PITCHES))
        grid[np.ix_(_PITCHED_ROWS, ~np.isin(degree, scale))] = -MODE_PENALTY * abs(valence)
        if rival is not None and rival != tonic:
            grid[_BASS_ROW, _PITCH_CLASS == rival] -= MODE_BASS_RIVAL_PENALTY * abs(valence)
            grid[_BASS_ROW, degree == 0] = MODE_BASS_TONIC_BONUS * abs(valence)
        return grid


class NoteKeeper:
    """The notes sounding now, so that every release is of a sounding note. The model loses track
    of its open notes (the shipped model: 5-6 % of its note-offs are of notes not sounding, 95 % of
    those while a note of the same instrument sounds, which then rings until the 8 s cap): the
    probability it gives to releasing a silent key of an instrument goes to releasing that
    instrument's oldest sounding note. A note still sounding after RELEASE_S is released in the
    token stream (`due`), so the model sees it end."""

    def __init__(self):
        self.sounding: dict[int, float] = {}  # note-on token -> cursor at its onset

    def advance(self, token: int, cursor: float) -> None:
        if vocab.NOTE_BASE <= token < vocab.LESS_INSTRUMENTS:
            block = (token - vocab.NOTE_BASE) // vocab.N_PITCHES
            if block % 2:  # on (a re-strike counts from now: onset order is age order)
                self.sounding.pop(token, None)
                self.sounding[token] = cursor
            else:
                self.sounding.pop(token + vocab.N_PITCHES, None)

    def due(self, cursor: float, keep=()) -> int | None:
        """The note-off of a pitched note sounding >= RELEASE_S or a drum hit >= DRUM_RELEASE_S, or
        of an instrument's oldest note (not in `keep`: a boundary chord's notes stay their SUSTAIN_S)
        while it sounds more than its VOICES; else None."""
        for on, start in self.sounding.items():
            limit = RELEASE_S if _PITCHED_ROWS[_row(on)] else DRUM_RELEASE_S
            if cursor - start >= limit - 1e-9:
                return on - vocab.N_PITCHES
        per_row: dict[int, list[int]] = {}
        for on in self.sounding:  # in onset order
            per_row.setdefault(_row(on), []).append(on)
        for row, ons in per_row.items():
            limit = VOICES[vocab.INSTRUMENTS[row]]
            if limit is not None and len(ons) > limit:
                free = [on for on in ons if on not in keep]
                if free:
                    return free[0] - vocab.N_PITCHES
        return None

    def redirect(self, logits: np.ndarray, keep=()) -> np.ndarray:
        """`logits` with each pitched instrument's note-offs of silent keys moved (their summed
        probability) onto the note-off of its oldest sounding note not in `keep`."""
        oldest: dict[int, int] = {}
        for on, start in sorted(self.sounding.items(), key=lambda kv: kv[1], reverse=True):
            if on not in keep:
                oldest[_row(on)] = on - vocab.N_PITCHES
        if not oldest:
            return logits
        logits = logits.astype(np.float64)
        offs = logits[vocab.NOTE_BASE:vocab.LESS_INSTRUMENTS].reshape(len(vocab.INSTRUMENTS), 2, vocab.N_PITCHES)[:, 0]
        for row, off in oldest.items():
            if not _PITCHED_ROWS[row]:
                continue
            silent = np.ones(vocab.N_PITCHES, dtype=bool)
            for on in self.sounding:
                if _row(on) == row:
                    silent[(on - vocab.NOTE_BASE) % vocab.N_PITCHES] = False
            moved = _logsumexp(offs[row, silent])
            offs[row, silent] = -np.inf
            logits[off] = np.logaddexp(logits[off], moved)
        return logits


class Sampler:
    """EMSYNC's sampling step, in numpy, seeded: the same seed gives the same notes."""

    def __init__(self, cfg: SamplingConfig):
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.collapse_count = 0
        excluded = set(vocab.EXCLUDED_AT_SAMPLING)
        for inst in vocab.INSTRUMENTS:
            if inst not in cfg.instruments:
                excluded.update(vocab.note_on(inst, p) for p in range(vocab.MIN_PITCH, vocab.MAX_PITCH + 1))
        self.mask = np.zeros(vocab.VOCAB_SIZE, dtype=bool)
        self.mask[list(excluded)] = True
        self.mask_no_time = self.mask.copy()
        self.mask_no_time[vocab.TIMESHIFT_BASE:vocab.NOTE_BASE] = True

    # Candidates sorted per step: a full argsort of the vocabulary is the sampler's largest cost,
    # and the nucleus almost always lies within the top few dozen tokens.
    TOP_K = 64

    def __call__(self, logits: np.ndarray, allow_time: bool = True, forbid=(), bias=None, wake=None) -> int:
        """`forbid`: tokens that may not be sampled; `bias`: nats added to the note-ons (ModeSteer),
        which pitch but not whether; `wake`: nats per instrument row added to all its note-ons."""
        logits = logits.astype(np.float64)
        if np.isnan(logits).any():
            logits = np.nan_to_num(logits, nan=0.0)
        if bias is not None:
            # which pitch, not whether or on what a note is played: each pitched instrument's
            # note-ons keep their total probability
            ons = note_on_grid(logits)  # a view: the edits land in logits
            before = _logsumexp(ons, axis=1)
            ons += bias
            ons += (before - _logsumexp(ons, axis=1))[:, None]
        if wake is not None:
            note_on_grid(logits)[...] += wake[:, None]
        logits[self.mask if allow_time else self.mask_no_time] = -np.inf
        if forbid:
            logits[list(forbid)] = -np.inf
        logp = logits - _logsumexp(logits)
        temp = self.cfg.temperature * (
            1 + self.cfg.repeat_penalty * max(0.0, math.log((self.collapse_count + 1) / 4)))
        logp = logp / temp
        probs = np.exp(logp - _logsumexp(logp))
        kept = self._nucleus(probs)
        self.collapse_count = self.collapse_count + 1 if len(kept) <= 2 else self.collapse_count // 2
        p = probs[kept] / probs[kept].sum()
        return int(kept[self.rng.choice(len(kept), p=p)])

    def _nucleus(self, probs: np.ndarray) -> np.ndarray:
        """Tokens by descending probability (ties by index, as a stable sort), cut where the
        inclusive cumsum passes top_p (as EMSYNC: the crossing token is cut, but the top token
        always stays). Same result as sorting the whole vocabulary, which remains the fallback."""
        k = self.TOP_K
        if k < len(probs):
            part = np.argpartition(-probs, k)  # the k largest first (unordered), then the k+1-th
            top = part[:k]
            top = top[np.lexsort((top, -probs[top]))]
            cum = np.cumsum(probs[top])
            # Exact only if the nucleus ends inside the top k and no tie straddles the cut.
            if cum[-1] > self.cfg.top_p and probs[top[-1]] > probs[part[k]]:
                keep = cum <= self.cfg.top_p
                keep[0] = True
                return top[keep]
        order = np.argsort(-probs, kind="stable")
        cum = np.cumsum(probs[order])
        keep = cum <= self.cfg.top_p
        keep[0] = True
        return order[keep]


def _logsumexp(x, axis=None):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


class _ReferenceDecoder:
    """Full recompute of the whole window for every token (EMSYNC's loop)."""

    name = "reference"

    def __init__(self, engine):
        self.engine = engine

    def next_logits(self, seq, bs, valence, arousal, emotion_changed):
        tokens, b = _window(seq, bs, self.engine.context_len - N_PREFIX)
        return self.engine.prefill(tokens, b, valence, arousal)


class _CachedDecoder:
    """KV cache; re-primes once when the window is full (dropping the oldest chunk) or when the
    emotion prefix changes."""

    name = "cached"

    def __init__(self, engine, drop_fraction: float = 0.25):
        self.engine = engine
        self.drop = max(1, int(engine.context_len * drop_fraction))
        self.fed = 0  # how many of seq the cache holds

    def next_logits(self, seq, bs, valence, arousal, emotion_changed):
        ctx = self.engine.context_len
        if self.fed == 0 or emotion_changed or len(seq) - self.fed > 1 or self.engine.cached_len >= ctx:
            keep = ctx - N_PREFIX - (self.drop if self.engine.cached_len >= ctx else 0)
            self.fed = len(seq)
            tokens, b = _window(seq, bs, keep)
            return self.engine.prefill(tokens, b, valence, arousal)
        self.fed = len(seq)
        return self.engine.step(seq[-1], bs[-1])


class _GuidedDecoder:
    """Valence guidance: one decoder with the valence, one without, each with its own cache."""

    def __init__(self, cond, uncond, weight: float):
        self.cond, self.uncond, self.weight = cond, uncond, weight
        self.name = cond.name
        self.active = True  # set by generate(): guidance runs only over its windows

    def next_logits(self, seq, bs, valence, arousal, emotion_changed):
        cond = self.cond.next_logits(seq, bs, valence, arousal, emotion_changed)
        if valence is None or not self.active:  # nothing to guide by; the other cache catches up when needed
            return cond
        uncond = self.uncond.next_logits(seq, bs, None, arousal, emotion_changed)
        return uncond + self.weight * (cond - uncond)


def _decoder(name: str, engine, guidance: float):
    cls = {"reference": _ReferenceDecoder, "cached": _CachedDecoder}[name]
    twin = getattr(engine, "twin", None)
    if guidance == 1.0 or twin is None:
        return cls(engine)
    return _GuidedDecoder(cls(engine), cls(twin()), guidance)


def _window(seq, bs, n):
    """The last `n` positions the model sees: the instrument-count token (always first, its b
    "same"-padded from the first music token) followed by the newest music tokens."""
    if len(seq) <= n:
        return np.asarray(seq), np.asarray(bs, dtype=np.float32)
    tokens = [seq[0]] + seq[len(seq) - n + 1:]
    b = bs[len(bs) - n + 1:]
    return np.asarray(tokens), np.asarray([b[0]] + b, dtype=np.float32)


def generate(engine, duration: float, conditioning: Conditioning | None = None,
             sampling: SamplingConfig | None = None, decoder: str = "cached",
             primer: list[int] | None = None, max_tokens: int | None = None,
             progress=None, start_time: float = 0.0, on_token=None) -> Generation:
    """Generate `duration` seconds of music with `engine` (any `Engine`).

    Regenerating from a boundary (the bridge): `primer` holds the tokens before it and
    `start_time` is the clock time where the primer begins, so a primer cut to its last few hundred
    tokens still puts the cursor on the boundary (boundaries and emotions stay absolute).
    `on_token(token, cursor)` is called after each sampled token; returning True stops early.
    """
    conditioning = conditioning or Conditioning()
    sampling = sampling or SamplingConfig()
    conditioning.validate(duration)
    sampling.validate()
    dec = _decoder(decoder, engine, sampling.valence_guidance)
    sampler = Sampler(sampling)
    guard = (GridGuard(conditioning.tempo, conditioning.grid, conditioning.tempo_origin)
             if sampling.grid_guard and conditioning.tempo else None)
    targets = sorted(conditioning.boundaries)
    tracker = BoundaryTracker([guard.nearest(t) for t in targets] if guard and sampling.chord_on_grid else targets,
                              CHORD_SENSITIVITY_S if sampling.hold_missed_boundaries else 0.0)
    tracker.cursor = float(start_time)
    steer = ModeSteer() if sampling.mode_from_valence else None
    emotion = conditioning.emotion_at(tracker.cursor)
    if primer is None:
        primer = [vocab.BAR]
        if steer is not None and steer.acts(emotion[0]):  # a fresh piece opens on its tonic chord
            steer.tonic = int(np.random.default_rng([sampling.seed, 12]).integers(12))
            primer += steer.chord(emotion[0])
    primer = list(primer)
    keeper = NoteKeeper()
    # The sequence the model sees after its V/A prefix: the instrument-count token, then music.
    seq = [vocab.MORE_INSTRUMENTS]
    bs = [tracker.b()]
    for tok in primer:
        seq.append(tok)
        keeper.advance(tok, tracker.cursor)
        bs.append(tracker.advance(tok))
        if steer is not None:
            steer.hear(tok, settle=False)
    bs[0] = bs[1] if len(bs) > 1 else bs[0]  # EMSYNC "same"-pads the instrument slot's b
    if steer is not None:
        steer.settle()
    max_tokens = max_tokens or int(duration * 200) + 2000
    forced: list[int] = []  # tokens the decoder plays next: a re-primed tonic chord
    guide_s = math.inf if sampling.valence_guidance_s is None else sampling.valence_guidance_s
    guide_until = tracker.cursor + guide_s
    start = time.perf_counter()
    truncated = False
    changed = True
    last_progress = 0.0
    # Pitched note-ons still due before time may pass (a splice's attack, a boundary chord's notes);
    # at most MAX_TOKENS_HELD tokens are sampled in one instant for them.
    ons_due = 1 if sampling.attack_at_start else 0
    held = 0
    last_on = np.full(len(vocab.INSTRUMENTS), float(start_time))  # cursor of each instrument's last note-on
    at_boundary = False  # the current instant holds a boundary CHORD
    sustained: dict[int, float] = {}  # note-on token of a boundary chord note -> cursor it may end
    while tracker.cursor < duration:
        if len(seq) - 1 >= max_tokens:
            truncated = True
            log.warning("generation stopped at the token cap (%d) at %.1f s", max_tokens, tracker.cursor)
            break
        if isinstance(dec, _GuidedDecoder):
            dec.active = tracker.cursor < guide_until
        logits = dec.next_logits(seq, bs, emotion[0], emotion[1], changed)
        if guard is not None:
            logits = guard.fold(logits, tracker.cursor)
        release = keeper.due(tracker.cursor, keep=sustained)
        if sampling.chord_on_boundaries and tracker.on_unused_target():
            token = vocab.CHORD
            ons_due, held, at_boundary = CHORD_NOTES, 0, True
        elif forced:  # a re-primed chord stays whole; releases follow in the same instant
            token = forced.pop(0)
        elif release is not None:
            token = release
        else:
            sustained = {k: t for k, t in sustained.items() if t > tracker.cursor + 1e-9}
            # a boundary chord's notes neither end nor re-strike before SUSTAIN_S
            forbid = [k - vocab.N_PITCHES for k in sustained] + list(sustained)
            if guard is not None and sampling.chord_on_boundaries and bs[-1] < CHORD_SENSITIVITY_S:
                forbid.append(vocab.CHORD)  # on the grid the model's own CHORD comes early, using the cut up (see GridGuard)
            token = sampler(keeper.redirect(logits, keep=sustained), allow_time=ons_due == 0 or held >= MAX_TOKENS_HELD,
                            forbid=forbid, bias=steer.bias(emotion[0]) if steer is not None else None,
                            wake=_wake(last_on, tracker.cursor, sampling.wake_nats) if sampling.wake_nats else None)
            held += 1
        ev = vocab.decode_token(token)
        if ev.kind == "on":
            last_on[vocab.INSTRUMENTS.index(ev.instrument)] = tracker.cursor
        if ev.kind == "on" and ev.instrument != "drums":
            ons_due = max(0, ons_due - 1)
            if at_boundary:
                sustained[token] = tracker.cursor + SUSTAIN_S
        if vocab.is_timeshift(token):
            ons_due, held, at_boundary = 0, 0, False
        if sampling.land_on_boundaries:
            token = tracker.land(token)
        if steer is not None:
            steer.hear(token)
            if vocab.is_timeshift(token):
                steer.listen(keeper.sounding, vocab.shift_ticks(token) * vocab.TICK_S)
        keeper.advance(token, tracker.cursor)
        seq.append(token)
        bs.append(tracker.advance(token))
        new_emotion = conditioning.emotion_at(tracker.cursor)
        changed = new_emotion != emotion
        if (steer is not None and steer.tonic is not None and steer.acts(new_emotion[0])
                and not (steer.acts(emotion[0]) and (emotion[0] > 0) == (new_emotion[0] > 0))):
            forced = steer.chord(new_emotion[0])  # a change of mode: re-prime with its tonic chord
        if new_emotion[0] != emotion[0]:
            guide_until = tracker.cursor + guide_s
        emotion = new_emotion
        if on_token is not None and on_token(token, tracker.cursor):
            break
        if progress is not None and tracker.cursor - last_progress >= 1.0:
            progress(min(tracker.cursor, duration), duration)
            last_progress = tracker.cursor
    wall = time.perf_counter() - start
    hits = [BoundaryHit(t, h.hit_time) for t, h in zip(targets, tracker.hits())]  # the cuts, not their grid points
    return Generation(tokens=seq[1:], duration=duration, hits=hits, wall_time=wall,
                      decoder=dec.name, engine=engine.name, provider=engine.provider,
                      seed=sampling.seed, truncated=truncated, grid=guard,
                      feel=drum_feel(conditioning, sampling, start_time))


def drum_feel(conditioning: Conditioning, sampling: SamplingConfig, start_time: float = 0.0) -> "groove.Feel | None":
    """The human drum feel for a generation on a grid (None when `drum_feel` is 0, or with no
    tempo or no grid guard). `start_time` is generate()'s: the same arguments, the same feel, so a
    caller streaming the tokens (the bridge) can build it before the generation ends."""
    if not sampling.drum_feel or conditioning.tempo is None or not sampling.grid_guard:
        return None
    template = groove.choose(conditioning.emotion_at(start_time)[1], sampling.seed)
    return groove.Feel(template, conditioning.tempo, conditioning.tempo_origin, sampling.drum_feel)
