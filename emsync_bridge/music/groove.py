"""Human drum feel from real performances: groove templates measured on the Groove MIDI Dataset.

The model and the grid guard keep every onset on the 16th grid (issue 18); a drummer does not.
A groove template is what a DAW's "groove quantize" uses: for each 16th of a 4/4 bar and each
part of the kit (kick, snare, hats/cymbals), how far from the grid one real drummer played it
(the median over that performance, in 16ths) and how hard (the median velocity). Applying it
moves each generated drum hit by its slot's offset and gives it its slot's velocity, so the push
and drag and the accents are a person's, while the pattern stays the model's.

The templates are built once from the dataset (`python -m emsync_bridge.music.data --pop909 ...
--groove DIR` writes them with the token cache; `build_templates` in data.py) and shipped as
`emsync_bridge/models/groove-templates.json` with their source and licence (CC-BY 4.0, credited in
DATA_CARD.md). Nothing here reads the dataset.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from emsync_bridge.music.model_config import DEFAULT_DRUM_FEEL
from emsync_bridge.tempo import TempoMap

TEMPLATES_PATH = Path(__file__).resolve().parent.parent / "models" / "groove-templates.json"
SLOTS = 16  # 16ths of a 4/4 bar
PARTS = ("kick", "snare", "hats")
_PART_OF = {35: "kick", 36: "kick", 37: "snare", 38: "snare", 39: "snare", 40: "snare"}


def part_of(pitch: int) -> str:
    """Kick, snare (also rims, claps and toms: played by the same hands' feel) or hats (cymbals)."""
    if pitch in _PART_OF:
        return _PART_OF[pitch]
    return "snare" if pitch in (41, 43, 45, 47, 48, 50) else "hats"


@dataclass(frozen=True)
class GrooveTemplate:
    """One performance's feel: offsets[part][slot] in 16ths (+ = late), velocity[part][slot]."""

    name: str
    level: int  # energy level 0..2 (hit density tertile of the dataset's grooves)
    bpm: float  # the tempo it was played at
    offsets: dict[str, tuple[float, ...]]
    velocity: dict[str, tuple[int, ...]]

    def feel(self, pitch: int, slot: int) -> tuple[float, int]:
        part = part_of(pitch)
        return self.offsets[part][slot % SLOTS], self.velocity[part][slot % SLOTS]


@lru_cache(maxsize=4)
def load_templates(path: str | Path = TEMPLATES_PATH) -> tuple[GrooveTemplate, ...]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return tuple(GrooveTemplate(t["name"], int(t["level"]), float(t["bpm"]),
                                {p: tuple(float(x) for x in t["offsets"][p]) for p in PARTS},
                                {p: tuple(int(x) for x in t["velocity"][p]) for p in PARTS})
                 for t in data["templates"])


def choose(arousal: float | None, seed: int, templates: tuple[GrooveTemplate, ...] | None = None) -> GrooveTemplate:
    """A template of the energy level arousal asks for (low < -1/3 <= mid <= 1/3 < high), drawn by
    the seed: the same seed, the same drummer."""
    templates = templates if templates is not None else load_templates()
    a = 0.0 if arousal is None else float(arousal)
    level = 0 if a < -1 / 3 else 2 if a > 1 / 3 else 1
    pool = [t for t in templates if t.level == level] or list(templates)
    return pool[int(np.random.default_rng([seed, 9]).integers(len(pool)))]


@dataclass(frozen=True)
class Feel:
    """A template laid on a tempo map: where and how hard a drum hit at `t` is played.

    `origin` is the map's time at the generation's 0 s (as GridGuard's). Only hits within a
    quarter of a 16th of a grid 16th are moved (the guard puts all of them there); the slot is the
    16th within the bar by the map's own bars and meter."""

    template: GrooveTemplate
    tempo: TempoMap
    origin: float = 0.0
    strength: float = DEFAULT_DRUM_FEEL  # a DAW's groove strength; 1 = as played

    def to_dict(self) -> dict:
        return {"template": self.template.name, "level": self.template.level, "strength": self.strength,
                "source": "Groove MIDI Dataset (CC-BY 4.0)"}

    def at(self, pitch: int, t: float) -> tuple[float, int | None]:
        """(time to play it, velocity) for a drum hit the model put at `t` (generation seconds);
        velocity None = leave it as it is."""
        at = max(t + self.origin, 0.0)
        _, beat = self.tempo.time_to_bar_beat(at)
        pos16 = (beat - 1.0) * 16.0 / self.tempo.time_signature_at(at)[1]  # 16ths from the downbeat
        slot = round(pos16)
        if abs(pos16 - slot) > 0.25:
            return t, None
        offset, velocity = self.template.feel(pitch, slot)
        sixteenth = 60.0 / self.tempo.bpm_at(at) / 4.0
        return max(t + self.strength * offset * sixteenth, 0.0), velocity


def apply_feel(notes, feel: Feel | None) -> None:
    """Move the drum notes of a list of `Note`s in place (their lengths kept). A hit is never moved
    before the same drum's previous hit has ended: a key sounds once at a time (a synth, a MIDI
    file); the bridge's live stream (bridge/events.py TokenStream) keeps the same rule."""
    if feel is None:
        return
    ended: dict[int, float] = {}
    for n in sorted((n for n in notes if n.instrument == "drums"), key=lambda n: n.start):
        start, velocity = feel.at(n.pitch, n.start)
        start = max(start, ended.get(n.pitch, start))
        n.end += start - n.start
        n.start = start
        ended[n.pitch] = n.end
        if velocity is not None:
            n.velocity = velocity
