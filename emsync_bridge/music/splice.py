"""Splicing a regeneration into a piece, on the token grid: used by `score` (regenerate from a
time) and by the bridge daemon (live and commit regenerations) alike.

- `tick_of`: seconds -> the model's tick (`vocab.TICK_S`).
- `primer_until`: the tokens before a boundary, closed there, to prime a regeneration.
- `trim_primer`: the tail of a primer that keeps the prefill short, and the ticks it dropped.
"""

from __future__ import annotations

from emsync_bridge.music import vocab
from emsync_bridge.music.vocab import TICK_S


def tick_of(seconds: float) -> int:
    return int(round(seconds / TICK_S))


def primer_until(tokens, tick: int) -> list[int]:
    """Tokens up to exactly `tick` (the last TIMESHIFT split there, silence added if the tokens
    end earlier), then note-offs for every note still sounding at `tick`: regeneration cuts held
    notes at the boundary, live and committed alike."""
    if tick <= 0:
        return []
    out: list[int] = []
    now = 0
    sounding: dict[tuple[str, int], None] = {}
    for tok in tokens:
        ticks = vocab.shift_ticks(tok)
        if ticks:
            if now + ticks > tick:
                out += vocab.timeshift_tokens(tick - now)
                now = tick
                break
            now += ticks
            out.append(tok)
            if now == tick:
                break
            continue
        ev = vocab.decode_token(int(tok))
        if ev.kind == "on":
            sounding[(ev.instrument, ev.pitch)] = None
        elif ev.kind == "off":
            sounding.pop((ev.instrument, ev.pitch), None)
        out.append(tok)
    if now < tick:
        out += vocab.timeshift_tokens(tick - now)
    out += [vocab.note_off(inst, pitch) for inst, pitch in sounding]
    return out


def trim_primer(tokens: list[int], max_tokens: int) -> tuple[list[int], int]:
    """The last `max_tokens` or fewer tokens, starting right after a TIMESHIFT so the clock of the
    kept part is whole ticks; returns (kept tokens, ticks covered by the dropped part).

    Keeps the prefill of a regeneration short (its cost grows with the primer) while the cursor
    still starts at the right absolute time (generate's `start_time`).
    """
    if len(tokens) <= max_tokens:
        return list(tokens), 0
    cut = len(tokens) - max_tokens
    while cut < len(tokens) and not vocab.is_timeshift(tokens[cut - 1]):
        cut += 1
    dropped = sum(vocab.shift_ticks(t) for t in tokens[:cut])
    return list(tokens[cut:]), dropped
