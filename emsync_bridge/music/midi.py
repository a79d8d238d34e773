"""MIDI files <-> notes <-> EMSYNC tokens.

Times are seconds on one global 8 ms grid (rounding each gap separately, as midi-emotion does,
lets error accumulate; a global grid keeps every note within 8 ms of where it was).
"""

from __future__ import annotations

import bisect
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import mido

from emsync_bridge.atomic import write_atomic
from emsync_bridge.errors import EmsyncError
from emsync_bridge.music import vocab
from emsync_bridge.music.vocab import INSTRUMENTS, MAX_PITCH, MIN_PITCH, TICK_S

# EMSYNC's decode-side programs (emsync-colab utils.py) and our channel layout (drums on 10).
PROGRAMS = {"bass": 32, "drums": 0, "guitar": 25, "piano": 0, "strings": 48}
CHANNELS = {"bass": 0, "guitar": 1, "piano": 2, "strings": 3, "drums": 9}
CHORD_VELOCITY, DEFAULT_VELOCITY = 120, 80
# Chord rule shared by the tokenizer (CHORD targets) and the metrics (long chords): >= 3 pitched
# notes starting within this window.
CHORD_ONSET_WINDOW_S = 0.06
# Sort order at one instant: drums first, then bass, as midi-emotion does.
_INSTRUMENT_ORDER = {"drums": 0, "bass": 1, "guitar": 2, "piano": 3, "strings": 4}


@dataclass
class Note:
    instrument: str
    pitch: int
    start: float
    end: float
    velocity: int = DEFAULT_VELOCITY

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Score:
    """Notes in seconds plus what the file says about meter (downbeats, beat length)."""

    notes: list[Note] = field(default_factory=list)
    downbeats: list[float] = field(default_factory=list)
    beats: list[float] = field(default_factory=list)
    duration: float = 0.0

    def instruments(self) -> dict[str, int]:
        counts = {name: 0 for name in INSTRUMENTS}
        for n in self.notes:
            counts[n.instrument] += 1
        return counts

    def beat_length_at(self, t: float) -> float:
        """Seconds per beat around time t (0.5 s, i.e. 120 BPM, when the file has no beats)."""
        b = self.beats
        if len(b) < 2:
            return 0.5
        i = min(max(bisect.bisect_right(b, t), 1), len(b) - 1)
        return b[i] - b[i - 1]


def program_to_instrument(program: int) -> str:
    """General MIDI program -> one of the five EMSYNC instruments (LPD-5 style merge)."""
    if 24 <= program <= 31:
        return "guitar"
    if 32 <= program <= 39:
        return "bass"
    if program <= 23:  # pianos, chromatic percussion, organs
        return "piano"
    return "strings"  # strings, ensembles, brass, reeds, pipes, synths


# ---------------------------------------------------------------------------------- reading MIDI


def read_midi(path: str | os.PathLike, track_instruments: dict[str, str] | None = None) -> Score:
    """Read a MIDI file into a Score. `track_instruments` maps a track name to an instrument
    (overriding its GM program), e.g. POP909's MELODY/BRIDGE/PIANO tracks."""
    path = Path(path)
    if not path.is_file():
        raise EmsyncError(f"MIDI file not found: {path}")
    try:
        mid = mido.MidiFile(str(path), clip=True)
    except Exception as exc:  # mido raises OSError/EOFError/ValueError/KeyError on junk
        raise EmsyncError(f"not a readable MIDI file: {path} ({type(exc).__name__}: {exc})") from None
    if mid.type == 2:
        raise EmsyncError(f"MIDI type 2 (sequential patterns) is not supported: {path}")
    return _score_from_midifile(mid, track_instruments or {})


def _score_from_midifile(mid: mido.MidiFile, track_instruments: dict[str, str]) -> Score:
    tpb = mid.ticks_per_beat
    events = []  # (tick, track index, order, msg)
    for ti, track in enumerate(mid.tracks):
        tick = 0
        for i, msg in enumerate(track):
            tick += msg.time
            events.append((tick, ti, i, msg))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    track_names = {}
    for ti, track in enumerate(mid.tracks):
        for msg in track:
            if msg.type == "track_name":
                track_names[ti] = msg.name.strip()
                break

    # ticks -> seconds through the tempo map
    tempo, last_tick, last_sec = 500000, 0, 0.0
    tempo_changes = []  # (tick, seconds, tempo)
    meter_changes = []  # the file's own; 4/4 from tick 0 only where the file sets none there
    has_meter = False
    programs: dict[tuple[int, int], int] = {}
    open_notes: dict[tuple[int, int, int], list[tuple[float, int]]] = {}
    notes: list[Note] = []

    def seconds(tick: int) -> float:
        return last_sec + (tick - last_tick) * tempo / 1e6 / tpb

    for tick, ti, _, msg in events:
        now = seconds(tick)
        if msg.type == "set_tempo":
            last_sec, last_tick, tempo = now, tick, msg.tempo
            tempo_changes.append((tick, now, msg.tempo))
            has_meter = True
        elif msg.type == "time_signature":
            meter_changes.append((tick, msg.numerator, msg.denominator))
            has_meter = True
        elif msg.type == "program_change":
            programs[(ti, msg.channel)] = msg.program
        elif msg.type in ("note_on", "note_off"):
            key = (ti, msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault(key, []).append((now, msg.velocity))
            elif open_notes.get(key):
                start, vel = open_notes[key].pop(0)
                inst = _instrument_for(ti, msg.channel, programs, track_names, track_instruments)
                if inst and MIN_PITCH <= msg.note <= MAX_PITCH and now > start:
                    notes.append(Note(inst, msg.note, start, now, vel))
    end_tick = max((e[0] for e in events), default=0)
    end_sec = seconds(end_tick)
    notes = _resolve_overlaps(notes)

    downbeats, beats = [], []
    if has_meter:
        downbeats, beats = _grid(mid.ticks_per_beat, meter_changes, tempo_changes, end_tick)
    duration = max([end_sec] + [n.end for n in notes])
    return Score(notes=notes, downbeats=downbeats, beats=beats, duration=duration)


def _resolve_overlaps(notes: list[Note]) -> list[Note]:
    """One instrument can sound a pitch only once at a time (as a synth plays it, and as the
    token stream can say it): an earlier note of the same key ends where the next one starts,
    and exact duplicates (same key, same 8 ms onset) are merged."""
    by_key: dict[tuple[str, int], list[Note]] = {}
    for n in sorted(notes, key=lambda n: n.start):
        by_key.setdefault((n.instrument, n.pitch), []).append(n)
    out = []
    for group in by_key.values():
        for cur, nxt in zip(group, group[1:] + [None]):
            if nxt is not None and quantize(nxt.start) <= quantize(cur.start):
                nxt.end = max(nxt.end, cur.end)
                continue  # duplicate onset: keep the later copy, with the longer end
            if nxt is not None and nxt.start < cur.end:
                cur.end = nxt.start
            out.append(cur)
    out.sort(key=lambda n: (n.start, _INSTRUMENT_ORDER[n.instrument], n.pitch))
    return out


def _instrument_for(ti, channel, programs, track_names, track_instruments) -> str | None:
    name = track_names.get(ti, "")
    if name in track_instruments:
        return track_instruments[name]
    if channel == 9:
        return "drums"
    return program_to_instrument(programs.get((ti, channel), 0))


def _grid(tpb, meter_changes, tempo_changes, end_tick):
    """Beat and downbeat times in seconds from the meter and tempo changes."""
    tempo_changes = sorted(tempo_changes) or [(0, 0.0, 500000)]
    if tempo_changes[0][0] != 0:
        tempo_changes.insert(0, (0, 0.0, 500000))

    def tick_to_sec(tick):
        sec, t0, tempo = 0.0, 0, 500000
        for ct, csec, ctempo in tempo_changes:
            if ct > tick:
                break
            sec, t0, tempo = csec, ct, ctempo
        return sec + (tick - t0) * tempo / 1e6 / tpb

    # By tick only, stable: at one tick the file's last event wins. The 4/4 default is added only
    # when the file sets no meter at tick 0 (sorted in with it, 4/4 beat a 2/4 or 3/4 at tick 0).
    meters = sorted(meter_changes, key=lambda m: m[0])
    if not meters or meters[0][0] > 0:
        meters.insert(0, (0, 4, 4))
    beats, downbeats = [], []
    tick, mi = 0, 0
    while tick <= end_tick:
        while mi + 1 < len(meters) and meters[mi + 1][0] <= tick:
            mi += 1
        num, den = meters[mi][1], meters[mi][2]
        beat_ticks = tpb * 4 // den
        downbeats.append(tick_to_sec(tick))
        for b in range(num):
            beats.append(tick_to_sec(tick + b * beat_ticks))
        tick += num * beat_ticks
    return downbeats, beats


# ------------------------------------------------------------------------------ notes <-> tokens


def quantize(t: float) -> int:
    return int(round(t / TICK_S))


def chord_onsets(notes: list[Note], min_held: float | Callable[[float], float], min_notes: int = 3,
                 min_long: int = 2) -> list[float]:
    """Onset times of chords: >= `min_notes` pitched notes starting within 60 ms, at least
    `min_long` of them lasting >= `min_held` seconds (a number, or a function of the onset time).

    One rule for both the tokenizer's CHORD targets (held >= 2 beats) and the metrics' long
    chords (held >= 0.5 s), so what the model is taught is what the metric counts."""
    pitched = sorted((n for n in notes if n.instrument != "drums"), key=lambda n: n.start)
    onsets, i = [], 0
    while i < len(pitched):
        j = i
        while j < len(pitched) and pitched[j].start - pitched[i].start <= CHORD_ONSET_WINDOW_S:
            j += 1
        group = pitched[i:j]
        held = min_held(group[0].start) if callable(min_held) else min_held
        if len(group) >= min_notes and sum(n.duration >= held - 1e-6 for n in group) >= min_long:
            onsets.append(group[0].start)
        i = j
    return onsets


def score_to_tokens(score: Score, chord_beats: float = 2.0, with_bars: bool = True) -> list[int]:
    """Notes -> EMSYNC tokens: BAR at downbeats, CHORD before chord onsets lasting
    >= `chord_beats` beats, note OFF before ON at one instant (so a repeated note re-triggers)."""
    chord_ticks = {
        quantize(t)
        for t in chord_onsets(score.notes, lambda t: chord_beats * score.beat_length_at(t))
    }
    # (tick, order, token): order puts BAR, then offs, then CHORD, then ons.
    timed: list[tuple[int, int, int, int]] = []
    for n in score.notes:
        s, e = quantize(n.start), quantize(n.end)
        e = max(e, s + 1)
        timed.append((s, 3, _INSTRUMENT_ORDER[n.instrument] * 128 + n.pitch, vocab.note_on(n.instrument, n.pitch)))
        timed.append((e, 1, _INSTRUMENT_ORDER[n.instrument] * 128 + n.pitch, vocab.note_off(n.instrument, n.pitch)))
    for t in chord_ticks:
        timed.append((t, 2, 0, vocab.CHORD))
    if with_bars:
        for t in score.downbeats:
            timed.append((quantize(t), 0, 0, vocab.BAR))
    timed.sort()
    tokens: list[int] = []
    cursor = 0
    for tick, _, _, token in timed:
        if tick > cursor:
            tokens.extend(vocab.timeshift_tokens(tick - cursor))
            cursor = tick
        tokens.append(token)
    return tokens


def tokens_to_score(tokens: list[int], end_time: float | None = None) -> Score:
    """EMSYNC tokens -> notes. Fixes midi-emotion's decode quirks: a stray OFF does nothing,
    an ON on a sounding key closes the old note first, and every note still open at the end is
    closed there (no stuck notes). Piano/guitar ONs after CHORD (until the next TIMESHIFT) get
    velocity 120, everything else 80, as EMSYNC decodes."""
    tick = 0
    open_notes: dict[tuple[str, int], tuple[int, int]] = {}
    notes: list[Note] = []
    downbeats: list[float] = []
    chord_accent = False
    for token in tokens:
        ev = vocab.decode_token(int(token))
        if ev.kind == "shift":
            tick += ev.ticks
            chord_accent = False
        elif ev.kind == "chord":
            chord_accent = True
        elif ev.kind == "bar":
            downbeats.append(tick * TICK_S)
        elif ev.kind == "on":
            key = (ev.instrument, ev.pitch)
            if key in open_notes:
                _close(notes, key, open_notes.pop(key), tick)
            accent = chord_accent and ev.instrument in ("piano", "guitar")
            open_notes[key] = (tick, CHORD_VELOCITY if accent else DEFAULT_VELOCITY)
        elif ev.kind == "off":
            key = (ev.instrument, ev.pitch)
            if key in open_notes:
                _close(notes, key, open_notes.pop(key), tick)
    end_tick = tick if end_time is None else max(tick, quantize(end_time))
    for key, opened in list(open_notes.items()):
        _close(notes, key, opened, max(end_tick, opened[0] + 1))
    notes.sort(key=lambda n: (n.start, _INSTRUMENT_ORDER[n.instrument], n.pitch))
    duration = max([end_tick * TICK_S] + [n.end for n in notes])
    return Score(notes=notes, downbeats=downbeats, duration=duration)


def _close(notes, key, opened, tick):
    start_tick, velocity = opened
    if tick > start_tick:
        notes.append(Note(key[0], key[1], start_tick * TICK_S, tick * TICK_S, velocity))


# -------------------------------------------------------------------------------- writing MIDI


def score_to_midifile(score: Score, instruments: tuple[str, ...] = INSTRUMENTS, bpm: float = 120.0,
                      ticks_per_beat: int = 960, tempo=None) -> mido.MidiFile:
    """SMF type 1: a tempo track, then one named track per instrument with its GM program
    (drums on channel 10). Times are seconds: the tempo sets the grid the DAW shows, and notes
    are placed through it so they keep their seconds. `tempo`: a TempoMap (emsync_bridge/tempo.py)
    whose tempo and time-signature changes the file carries (a ramp as one step per 16th, each
    step's tempo the ramp's average over it, so every 16th lands where the ramp puts it);
    default a constant `bpm` in 4/4."""
    from emsync_bridge.tempo import TempoPoint
    from emsync_bridge.tempo import TempoMap

    tmap = tempo if tempo is not None else TempoMap([TempoPoint(0.0, bpm)])

    def tick_at(seconds: float) -> int:
        return round(tmap.time_to_qn(seconds) * ticks_per_beat)

    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    end_tick = tick_at(score.duration)
    conductor = mido.MidiTrack()
    now = 0
    for tick, msg in _conductor_events(tmap, ticks_per_beat, end_tick):
        conductor.append(msg.copy(time=tick - now))
        now = tick
    conductor.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    mid.tracks.append(conductor)
    for inst in instruments:
        ch = CHANNELS[inst]
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=f"EmSync {inst}", time=0))
        track.append(mido.Message("program_change", channel=ch, program=PROGRAMS[inst], time=0))
        msgs = []
        for n in score.notes:
            if n.instrument != inst:
                continue
            on = tick_at(n.start)
            off = max(on + 1, tick_at(n.end))
            msgs.append((off, 0, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
            msgs.append((on, 1, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity)))
        msgs.sort(key=lambda m: (m[0], m[1]))
        now = 0
        for tick, _, msg in msgs:
            track.append(msg.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
        mid.tracks.append(track)
    return mid


def _conductor_events(tmap, tpb: int, end_tick: int) -> list[tuple[int, mido.MetaMessage]]:
    """(tick, set_tempo/time_signature) for a TempoMap, in order."""
    out: list[tuple[int, int, mido.MetaMessage]] = []
    meter = None
    points = tmap.points
    for i, p in enumerate(points):
        q0 = tmap.time_to_qn(p.time)
        tick = round(q0 * tpb)
        if tick > end_tick and i > 0:
            break
        if (p.num, p.denom) != meter:
            meter = (p.num, p.denom)
            out.append((tick, 0, mido.MetaMessage("time_signature", numerator=p.num, denominator=p.denom)))
        nxt = points[i + 1] if i + 1 < len(points) else None
        if not (p.linear and nxt is not None and nxt.bpm != p.bpm):
            out.append((tick, 1, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(p.bpm))))
            continue
        q1 = tmap.time_to_qn(nxt.time)
        steps = max(1, math.ceil((q1 - q0) * 4 - 1e-9))
        for k in range(steps):
            a, b = q0 + (q1 - q0) * k / steps, q0 + (q1 - q0) * (k + 1) / steps
            step_bpm = 60.0 * (b - a) / (tmap.qn_to_time(b) - tmap.qn_to_time(a))
            out.append((round(a * tpb), 1, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(step_bpm))))
    out.sort(key=lambda e: (e[0], e[1]))
    return [(tick, msg) for tick, _, msg in out]


def write_midi(score: Score, path: str | os.PathLike, **kwargs) -> Path:
    """Write atomically (temp file in the same folder + rename): a reader never sees half a file."""
    mid = score_to_midifile(score, **kwargs)
    return write_atomic(path, writer=lambda fh: mid.save(file=fh))
