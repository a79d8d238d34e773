"""Small typed messages between the generator, the scheduler and the MIDI sinks.

- `MidiMsg`: a mido-like channel message (note_on / note_off / control_change) that knows its bytes.
- `NoteEvent`: one note-on or note-off at a project time, as the scheduler plays it.
- `TokenStream`: EMSYNC tokens -> `NoteEvent`s as they are generated, with exactly the decoding
  rules of `music.midi.tokens_to_score` (a test keeps the two equal), so live playback and the
  committed MIDI file contain the same notes; with a `Feel` its drum hits get the human feel
  that `Generation.score()` gives them (music/groove.py).
(Splicing a regeneration into the old tokens is `emsync_bridge.music.splice`.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from emsync_bridge.music import vocab
from emsync_bridge.music.groove import Feel
from emsync_bridge.music.midi import CHANNELS, CHORD_VELOCITY, DEFAULT_VELOCITY
from emsync_bridge.music.vocab import TICK_S

CC_ALL_SOUND_OFF = 120
CC_ALL_NOTES_OFF = 123
DRUM_CHANNEL = CHANNELS["drums"]  # 9, i.e. MIDI channel 10


@dataclass(frozen=True, slots=True)
class MidiMsg:
    """A MIDI channel message; `channel` is 0-based (drums: 9)."""

    type: str  # "note_on" | "note_off" | "control_change"
    channel: int
    note: int = 0
    velocity: int = 0
    control: int = 0
    value: int = 0

    def bytes(self) -> list[int]:
        if self.type == "note_on":
            return [0x90 | self.channel, self.note, self.velocity]
        if self.type == "note_off":
            return [0x80 | self.channel, self.note, self.velocity]
        if self.type == "control_change":
            return [0xB0 | self.channel, self.control, self.value]
        raise ValueError(f"unsupported MIDI message type {self.type!r}")

    @classmethod
    def from_bytes(cls, data) -> "MidiMsg":
        status, a, b = int(data[0]), int(data[1]), int(data[2])
        kind, ch = status & 0xF0, status & 0x0F
        if kind == 0x90 and b > 0:
            return cls("note_on", ch, note=a, velocity=b)
        if kind in (0x80, 0x90):
            return cls("note_off", ch, note=a, velocity=0)
        if kind == 0xB0:
            return cls("control_change", ch, control=a, value=b)
        raise ValueError(f"unsupported MIDI status byte {status:#x}")


def note_on(channel: int, note: int, velocity: int) -> MidiMsg:
    return MidiMsg("note_on", channel, note=note, velocity=velocity)


def note_off(channel: int, note: int) -> MidiMsg:
    return MidiMsg("note_off", channel, note=note)


def all_notes_off(channel: int) -> MidiMsg:
    return MidiMsg("control_change", channel, control=CC_ALL_NOTES_OFF, value=0)


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """A note-on (`on`) or note-off at `time` project seconds."""

    time: float
    on: bool
    instrument: str
    pitch: int
    velocity: int = 0

    @property
    def channel(self) -> int:
        return CHANNELS[self.instrument]

    def msg(self) -> MidiMsg:
        if self.on:
            return note_on(self.channel, self.pitch, self.velocity)
        return note_off(self.channel, self.pitch)


@dataclass
class TokenStream:
    """Incremental `tokens_to_score`: feed tokens, get note events in time order.

    Within a tick a later token can cancel an earlier one: an ON closed (or struck again) at the
    same tick makes no note in `tokens_to_score`, so it must not sound live either. Two ways:
    - default: events at one tick are held until the clock moves past it (the next TIMESHIFT or
      `finish`); at each released tick note-offs come before note-ons;
    - `early=True` (live regeneration, where the first notes are needed within milliseconds):
      each event comes out at once, and an ON cancelled within its tick is listed in
      `take_retracted()` for the caller to withdraw (`LiveScore.retract`).
    `origin` is the project time of tick 0, which is the generation's 0 s.

    `feel` (the generation's `Generation.feel`, from `generate.drum_feel`): each drum hit is played
    where and as hard as `Feel.at` says, as `Generation.score()` plays it; its note-off moves with
    it (the note keeps its length). A hit is never moved before the stream's first tick (a splice
    must not overlap the old music) nor before the same drum's previous hit has ended (a key sounds
    once at a time; `groove.apply_feel` keeps the same rule). Events then no longer come out in
    time order: `LiveScore.append` and `events_from_tokens` put them in order.
    """

    origin: float = 0.0
    tick: int = 0
    early: bool = False
    feel: Feel | None = None
    open: dict[tuple[str, int], tuple[int, int, float]] = field(default_factory=dict)  # key -> (tick, vel, feel shift s)
    _offs: list[NoteEvent] = field(default_factory=list)  # this tick's
    _ons: dict[tuple[str, int], tuple[float, int]] = field(default_factory=dict)  # key -> (time, vel), this tick
    _emitted: dict[tuple[str, int], NoteEvent] = field(default_factory=dict)  # early: the open ON event
    _retracted: list[NoteEvent] = field(default_factory=list)
    _chord_accent: bool = False
    _ended: dict[tuple[str, int], float] = field(default_factory=dict)  # with a feel: a drum's last note-off time
    _floor: float = field(init=False)  # the first tick's time: no hit is moved before it

    def __post_init__(self) -> None:
        self._floor = self.time_of(self.tick)

    def take_retracted(self) -> list[NoteEvent]:
        out, self._retracted = self._retracted, []
        return out

    def time_of(self, tick: int) -> float:
        return self.origin + tick * TICK_S

    def feed(self, token: int) -> list[NoteEvent]:
        if self.early:
            return self._feed_early(int(token))
        ev = vocab.decode_token(int(token))
        if ev.kind == "shift":
            out = self._release()
            self.tick += ev.ticks
            self._chord_accent = False
            return out
        if ev.kind == "chord":
            self._chord_accent = True
        elif ev.kind == "on":
            key = (ev.instrument, ev.pitch)
            self._close(key)
            t, velocity = self._onset(key)
            self.open[key] = (self.tick, velocity, t - self.time_of(self.tick))
            self._ons[key] = (t, velocity)
        elif ev.kind == "off":
            self._close((ev.instrument, ev.pitch))
        return []

    def _feed_early(self, token: int) -> list[NoteEvent]:
        ev = vocab.decode_token(token)
        if ev.kind == "shift":
            self.tick += ev.ticks
            self._chord_accent = False
            return []
        if ev.kind == "chord":
            self._chord_accent = True
            return []
        if ev.kind not in ("on", "off"):
            return []
        key = (ev.instrument, ev.pitch)
        out: list[NoteEvent] = []
        opened = self.open.pop(key, None)
        if opened is not None:
            if opened[0] < self.tick:
                out.append(self._off(key, opened[2]))
            else:  # opened at this very tick: no note after all
                self._retracted.append(self._emitted[key])
            self._emitted.pop(key, None)
        if ev.kind == "on":
            t, velocity = self._onset(key)
            on = NoteEvent(t, True, key[0], key[1], velocity)
            self.open[key] = (self.tick, velocity, t - self.time_of(self.tick))
            self._emitted[key] = on
            out.append(on)
        return out

    def _onset(self, key: tuple[str, int]) -> tuple[float, int]:
        """(time, velocity) of a note-on at this tick: EMSYNC's velocity on the tick, or for a
        drum hit with a feel, moved and accented by it (within the limits in the class doc)."""
        t = self.time_of(self.tick)
        accent = self._chord_accent and key[0] in ("piano", "guitar")
        velocity = CHORD_VELOCITY if accent else DEFAULT_VELOCITY
        if self.feel is None or key[0] != "drums":
            return t, velocity
        moved, felt = self.feel.at(key[1], self.tick * TICK_S)
        return max(self.origin + moved, self._floor, self._ended.get(key, -math.inf)), velocity if felt is None else felt

    def _off(self, key: tuple[str, int], shift: float, tick: int | None = None) -> NoteEvent:
        """The note-off of `key` at `tick` (default: now), moved by its note-on's feel shift."""
        t = self.time_of(self.tick if tick is None else tick)
        if shift:
            t += shift
            self._ended[key] = t
        return NoteEvent(t, False, key[0], key[1])

    def _close(self, key: tuple[str, int]) -> None:
        opened = self.open.pop(key, None)
        if opened is None:
            return
        if opened[0] == self.tick:
            self._ons.pop(key, None)  # opened and closed within one tick: no note at all
        else:
            self._offs.append(self._off(key, opened[2]))

    def _release(self) -> list[NoteEvent]:
        out = list(self._offs)
        out += [NoteEvent(t, True, inst, pitch, vel) for (inst, pitch), (t, vel) in self._ons.items()]
        self._offs.clear()
        self._ons.clear()
        return out

    def finish(self, end_tick: int | None = None) -> list[NoteEvent]:
        """Release the current tick and close every open note at `end_tick` (default: now),
        or one tick after its start if that is later, as `tokens_to_score` does."""
        out = self._release()
        end = self.tick if end_tick is None else max(self.tick, end_tick)
        offs = []
        for key, (start, _, shift) in self.open.items():
            offs.append(self._off(key, shift, max(end, start + 1)))
        self.open.clear()
        self._emitted.clear()
        offs.sort(key=lambda e: e.time)
        return out + offs


def events_from_tokens(tokens, origin: float = 0.0, end_time: float | None = None,
                       early: bool = False, feel: Feel | None = None) -> list[NoteEvent]:
    """All events of a token list (a finished generation; `feel`: its `Generation.feel`), in
    time order (at one time, in the order the stream gave them: a note-off before a note-on)."""
    ts = TokenStream(origin, early=early, feel=feel)
    out: list[NoteEvent] = []
    for tok in tokens:
        new = ts.feed(tok)
        for r in ts.take_retracted():
            i = max(i for i, e in enumerate(out) if e is r)
            del out[i]
        out += new
    end_tick = None if end_time is None else max(0, round((end_time - origin) / TICK_S))
    out += ts.finish(end_tick)
    out.sort(key=lambda e: e.time)  # stable: without a feel they already are in order
    return out
