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


def _gaussian_posterior(valence: float, arousal: float, temperature: float) -> list[float]:
    logs = []
    for e in EMOTIONS:
        mv, sv, ma, sa = VA_TABLE[e]
        ll = -0.5 * (((valence - mv) / sv) ** 2 + ((arousal - ma) / sa) ** 2) - math.log(sv * sa)
        logs.append(ll / max(temperature, 1e-6))
    top = max(logs)
    ex = [math.exp(x - top) for x in logs]
    s = sum(ex)
    return [x / s for x in ex]


def _hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Convex hull, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted(set(points))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


_MEANS = [(VA_TABLE[e][0], VA_TABLE[e][2]) for e in EMOTIONS]
_HULL = _hull(_MEANS)
_CENTRE = (sum(m[0] for m in _MEANS) / 6, sum(m[1] for m in _MEANS) / 6)


def reachable_va(valence: float, arousal: float) -> tuple[float, float]:
    """Nearest point to (V, A) that a probability mixture of the six class means can reach.

    EMSYNC's `emotion_to_va` can only produce points inside the convex hull of the class means
    (e.g. not "pleasant and calm" below the sadness–joy edge). Outside points go to the nearest
    hull point, nudged 2 % toward the centre so the mixture weights stay finite.
    """
    p = (valence, arousal)
    n = len(_HULL)
    inside = all(
        (_HULL[(i + 1) % n][0] - _HULL[i][0]) * (p[1] - _HULL[i][1])
        - (_HULL[(i + 1) % n][1] - _HULL[i][1]) * (p[0] - _HULL[i][0]) >= 0
        for i in range(n)
    )
    if inside:
        return p
    best, best_d = p, math.inf
    for i in range(n):
        a, b = _HULL[i], _HULL[(i + 1) % n]
        dx, dy = b[0] - a[0], b[1] - a[1]
        t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy)))
        q = (a[0] + t * dx, a[1] + t * dy)
        d = math.hypot(p[0] - q[0], p[1] - q[1])
        if d < best_d:
            best, best_d = q, d
    return (best[0] + 0.02 * (_CENTRE[0] - best[0]), best[1] + 0.02 * (_CENTRE[1] - best[1]))


def va_to_probs(valence: float, arousal: float, temperature: float = 1.0) -> dict[str, float]:
    """Inverse of `emotion_to_va`: soft Ekman-6 probabilities whose EMSYNC mixture mean is (V, A).

    Start from the posterior under EMSYNC's per-class axis-aligned Gaussians (adjusted means and
    stds, equal priors, 2 % uniform floor; `temperature` > 1 flattens it), then tilt it as little as possible (the
    minimum-KL "I-projection", p_c ∝ q_c·exp(λ·μ_c), λ found by Newton's method) so that
    `emotion_to_va(p)` equals (V, A) exactly — or `reachable_va(V, A)` when no mixture of the six
    class means can reach (V, A). So inside that hull the scoring pipeline gets the same V/A
    whether it reads a scene's valence/arousal or recomputes them from its class probabilities
    (EMSYNC's way); outside, the recomputed point is the nearest one EMSYNC itself could produce.
    Each class mean maps back to that class.
    """
    tv, ta = reachable_va(valence, arousal)
    # 2 % uniform floor: the Gaussians' far tails underflow, and a class with q ≈ 0 could not be
    # tilted in even when the target needs it (e.g. a little sadness next to joy).
    q = [0.98 * x + 0.02 / len(EMOTIONS) for x in _gaussian_posterior(tv, ta, temperature)]
    lq = [math.log(x) for x in q]

    def dual(lv: float, la: float) -> tuple[float, list[float]]:
        # Convex dual log Σ q·exp(λ·μ) − λ·target; its minimiser gives the tilted distribution.
        z = [l + lv * m[0] + la * m[1] for l, m in zip(lq, _MEANS)]
        top = max(z)
        w = [math.exp(x - top) for x in z]
        s = sum(w)
        return top + math.log(s) - lv * tv - la * ta, [x / s for x in w]

    lam = (0.0, 0.0)
    f, p = dual(*lam)
    for _ in range(100):
        mv = sum(pi * m[0] for pi, m in zip(p, _MEANS))
        ma = sum(pi * m[1] for pi, m in zip(p, _MEANS))
        gv, ga = mv - tv, ma - ta  # gradient of the dual
        if abs(gv) < 1e-7 and abs(ga) < 1e-7:
            break
        cvv = sum(pi * (m[0] - mv) ** 2 for pi, m in zip(p, _MEANS)) + 1e-9  # Hessian = Cov_p[μ]
        caa = sum(pi * (m[1] - ma) ** 2 for pi, m in zip(p, _MEANS)) + 1e-9
        cva = sum(pi * (m[0] - mv) * (m[1] - ma) for pi, m in zip(p, _MEANS))
        det = max(cvv * caa - cva * cva, 1e-12)
        dv, da = (caa * gv - cva * ga) / det, (cvv * ga - cva * gv) / det
        step = min(1.0, 4.0 / max(math.hypot(dv, da), 1e-12))
        while step > 1e-6:  # backtracking: Newton on a softmax can overshoot
            cand = (lam[0] - step * dv, lam[1] - step * da)
            fc, pc = dual(*cand)
            if fc <= f - 1e-4 * step * (gv * dv + ga * da):
                lam, f, p = cand, fc, pc
                break
            step *= 0.5
        else:
            break
    return {e: x for e, x in zip(EMOTIONS, p)}


def dominant_emotion(probs: Mapping[str, float]) -> str:
    """Class with the highest probability (ties broken by `EMOTIONS` order)."""
    return max(EMOTIONS, key=lambda e: probs.get(e, 0.0))
