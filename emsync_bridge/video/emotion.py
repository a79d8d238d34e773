"""Ekman-6 classes ↔ valence/arousal, exactly as EMSYNC conditions its music model.

Source: EMSYNC's released pipeline (em-sync/emsync-colab `utils.py::adjust_valence_arousal`,
`video/weights_and_labels/emotion_to_va.csv`; see shared/docs/emsync-model-and-peers.md §2.6).
The per-class means and standard deviations there come from Russell & Mehrabian (1977),
"Evidence for a three-factor theory of emotions", J. Research in Personality 11:273–294.

EMSYNC rescales each axis linearly so that the six class means span exactly [−0.8, +0.8]
(stds scale by the same factor: ×1.142857 for V, ×1.702128 for A), then maps classifier
probabilities to V/A as the probability-weighted mixture mean, clipped to [−1, 1].

This module is deliberately light (numpy-free imports are not needed, but nothing heavy): other
parts of the project import `EMOTIONS`, `emotion_to_va` and `va_for_emotion` from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# Fixed class order: the order of EMSYNC's / VEMOCLAP's classifier output.
EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise")

# Raw table (Russell & Mehrabian 1977 via EMSYNC's emotion_to_va.csv): class -> (V mean, V std, A mean, A std).
RAW_VA_TABLE: dict[str, tuple[float, float, float, float]] = {
    "anger": (-0.51, 0.20, 0.59, 0.29),
    "disgust": (-0.60, 0.20, 0.35, 0.41),
    "fear": (-0.64, 0.20, 0.60, 0.32),
    "joy": (0.76, 0.22, 0.48, 0.26),
    "sadness": (-0.63, 0.23, -0.27, 0.34),
    "surprise": (0.40, 0.30, 0.67, 0.27),
}

TARGET_SPAN = 0.8  # EMSYNC: adjusted class means span exactly [-0.8, +0.8] on each axis


def _rescale_axis(means: Sequence[float]) -> tuple[float, float]:
    """Scale and offset mapping min(means) -> -0.8 and max(means) -> +0.8."""
    lo, hi = min(means), max(means)
    scale = 2 * TARGET_SPAN / (hi - lo)
    return scale, -TARGET_SPAN - lo * scale


_V_SCALE, _V_OFFSET = _rescale_axis([RAW_VA_TABLE[e][0] for e in EMOTIONS])
_A_SCALE, _A_OFFSET = _rescale_axis([RAW_VA_TABLE[e][2] for e in EMOTIONS])

# Adjusted table used everywhere: class -> (V mean, V std, A mean, A std), EMSYNC's defaults.
VA_TABLE: dict[str, tuple[float, float, float, float]] = {
    e: (v * _V_SCALE + _V_OFFSET, vs * _V_SCALE, a * _A_SCALE + _A_OFFSET, as_ * _A_SCALE)
    for e, (v, vs, a, as_) in RAW_VA_TABLE.items()
}


def _clip(x: float, lo: float = -1.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


def va_for_emotion(name: str) -> tuple[float, float]:
    """Adjusted (valence, arousal) mean of one Ekman class, e.g. joy -> (0.8, 0.477)."""
    try:
        v, _, a, _ = VA_TABLE[name.lower()]
    except KeyError:
        from emsync_bridge.errors import EmsyncError

        raise EmsyncError(f"unknown emotion {name!r}; expected one of {', '.join(EMOTIONS)}") from None
    return v, a


def _as_weights(probs: Mapping[str, float] | Sequence[float]) -> list[float]:
    if isinstance(probs, Mapping):
        unknown = set(k.lower() for k in probs) - set(EMOTIONS)
        if unknown:
            from emsync_bridge.errors import EmsyncError

            raise EmsyncError(f"unknown emotion(s) {sorted(unknown)}; expected {', '.join(EMOTIONS)}")
        lower = {k.lower(): float(v) for k, v in probs.items()}
        w = [lower.get(e, 0.0) for e in EMOTIONS]
    else:
        w = [float(x) for x in probs]
        if len(w) != len(EMOTIONS):
            from emsync_bridge.errors import EmsyncError

            raise EmsyncError(f"expected {len(EMOTIONS)} probabilities ({', '.join(EMOTIONS)}), got {len(w)}")
    if any(x < 0 or math.isnan(x) for x in w):
        from emsync_bridge.errors import EmsyncError

        raise EmsyncError("emotion probabilities must be non-negative numbers")
    return w


def emotion_to_va(probs: Mapping[str, float] | Sequence[float]) -> tuple[float, float]:
    """EMSYNC's default mapping: V = Σ w_c·V̄_c, A = Σ w_c·Ā_c with w = p/Σp, clipped to [−1, 1].

    `probs` is a {class: p} mapping (missing classes count as 0) or 6 numbers in `EMOTIONS` order.
    All-zero probabilities give the neutral point (0, 0).
    """
    w = _as_weights(probs)
    total = sum(w)
    if total <= 0:
        return 0.0, 0.0
    v = sum(wi * VA_TABLE[e][0] for wi, e in zip(w, EMOTIONS)) / total
    a = sum(wi * VA_TABLE[e][2] for wi, e in zip(w, EMOTIONS)) / total
    return _clip(v), _clip(a)


def va_to_probs(valence: float, arousal: float, temperature: float = 1.0) -> dict[str, float]:
    """Inverse of `emotion_to_va`: soft Ekman-6 probabilities for a (V, A) point.

    Each class is EMSYNC's adjusted axis-aligned Gaussian (mean, std per axis); the posterior with
    equal priors is p_c ∝ N(V; μV_c, σV_c)·N(A; μA_c, σA_c). `temperature` > 1 flattens it (use it
    when the V/A estimate itself is uncertain). This is not an exact inverse — the mixture mean of
    the returned probabilities is pulled toward the centre — but it preserves the nearest class.
    """
    logs = []
    for e in EMOTIONS:
        mv, sv, ma, sa = VA_TABLE[e]
        ll = -0.5 * (((valence - mv) / sv) ** 2 + ((arousal - ma) / sa) ** 2) - math.log(sv * sa)
        logs.append(ll / max(temperature, 1e-6))
    top = max(logs)
    ex = [math.exp(x - top) for x in logs]
    s = sum(ex)
    return {e: x / s for e, x in zip(EMOTIONS, ex)}


def dominant_emotion(probs: Mapping[str, float]) -> str:
    """Class with the highest probability (ties broken by `EMOTIONS` order)."""
    return max(EMOTIONS, key=lambda e: probs.get(e, 0.0))
