"""The EMSYNC event vocabulary: 1011 tokens, index-compatible with the official `mappings.pt`.

| index     | token                                  |
|-----------|----------------------------------------|
| 0 / 1     | PAD / START                            |
| 2 / 3     | BAR / CHORD                            |
| 4–128     | TIMESHIFT 1..125 ticks of 8 ms         |
| 129–1008  | OFF/ON × pitch 21..108 for BASS, DRUMS, GUITAR, PIANO, STRINGS (in that order) |
| 1009/1010 | LESS_INSTRUMENTS / MORE_INSTRUMENTS    |
"""

from __future__ import annotations

from dataclasses import dataclass

PAD, START, BAR, CHORD = 0, 1, 2, 3
TICK_MS = 8
TICK_S = TICK_MS / 1000.0
MAX_SHIFT_TICKS = 125  # one TIMESHIFT token covers at most 1000 ms
TIMESHIFT_BASE = 4
INSTRUMENTS = ("bass", "drums", "guitar", "piano", "strings")
MIN_PITCH, MAX_PITCH = 21, 108
N_PITCHES = MAX_PITCH - MIN_PITCH + 1  # 88
NOTE_BASE = TIMESHIFT_BASE + MAX_SHIFT_TICKS  # 129
LESS_INSTRUMENTS = NOTE_BASE + len(INSTRUMENTS) * 2 * N_PITCHES  # 1009
MORE_INSTRUMENTS = LESS_INSTRUMENTS + 1  # 1010
VOCAB_SIZE = MORE_INSTRUMENTS + 1  # 1011

# Tokens the sampler never emits (EMSYNC excludes them at generation time).
EXCLUDED_AT_SAMPLING = (PAD, START, LESS_INSTRUMENTS, MORE_INSTRUMENTS)


def timeshift(ticks: int) -> int:
    if not 1 <= ticks <= MAX_SHIFT_TICKS:
        raise ValueError(f"timeshift ticks must be 1..{MAX_SHIFT_TICKS}, got {ticks}")
    return TIMESHIFT_BASE + ticks - 1


def note_on(instrument: str, pitch: int) -> int:
    return _note(instrument, pitch, on=True)


def note_off(instrument: str, pitch: int) -> int:
    return _note(instrument, pitch, on=False)


def _note(instrument: str, pitch: int, on: bool) -> int:
    if not MIN_PITCH <= pitch <= MAX_PITCH:
        raise ValueError(f"pitch {pitch} outside {MIN_PITCH}..{MAX_PITCH}")
    block = INSTRUMENTS.index(instrument) * 2 + (1 if on else 0)
    return NOTE_BASE + block * N_PITCHES + pitch - MIN_PITCH


@dataclass(frozen=True)
class Event:
    """A decoded token: kind is one of pad/start/bar/chord/shift/on/off/less/more."""

    kind: str
    ticks: int = 0
    instrument: str = ""
    pitch: int = 0


def decode_token(token: int) -> Event:
    if token == PAD:
        return Event("pad")
    if token == START:
        return Event("start")
    if token == BAR:
        return Event("bar")
    if token == CHORD:
        return Event("chord")
    if TIMESHIFT_BASE <= token < NOTE_BASE:
        return Event("shift", ticks=token - TIMESHIFT_BASE + 1)
    if NOTE_BASE <= token < LESS_INSTRUMENTS:
        block, offset = divmod(token - NOTE_BASE, N_PITCHES)
        instrument = INSTRUMENTS[block // 2]
        return Event("on" if block % 2 else "off", instrument=instrument, pitch=MIN_PITCH + offset)
    if token == LESS_INSTRUMENTS:
        return Event("less")
    if token == MORE_INSTRUMENTS:
        return Event("more")
    raise ValueError(f"token {token} outside the vocabulary (0..{VOCAB_SIZE - 1})")


def is_timeshift(token: int) -> bool:
    return TIMESHIFT_BASE <= token < NOTE_BASE


def shift_ticks(token: int) -> int:
    """Ticks advanced by `token` (0 for anything but a TIMESHIFT)."""
    return token - TIMESHIFT_BASE + 1 if TIMESHIFT_BASE <= token < NOTE_BASE else 0


def timeshift_tokens(ticks: int) -> list[int]:
    """A gap of `ticks` as full 1000 ms shifts plus one remainder shift."""
    out = []
    while ticks > 0:
        step = min(ticks, MAX_SHIFT_TICKS)
        out.append(timeshift(step))
        ticks -= step
    return out
