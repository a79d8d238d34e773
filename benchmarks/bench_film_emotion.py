"""Video emotion on real film scenes: the learned estimator (default) vs `heuristic` (issue 19).

    python benchmarks/bench_film_emotion.py [--clips DIR] [--json OUT] [--estimators learned,heuristic]

Scenes, labels and their protocol: benchmarks/film_scenes/ (scenes.json, PROTOCOL.md). Each
clip (default: the committed benchmarks/film_scenes/clips/) is analysed whole with
`analyze_video` (no cache); the prediction is the clip's duration-weighted valence/arousal (after
confidence shrinkage, as shipped) and its duration-weighted Ekman-6 probabilities. Reported per
estimator:

* valence sign agreement on the scenes whose label sign is clear (|label| >= 0.25), with a 95 %
  Wilson interval; a confusion table label sign x predicted sign;
* Spearman rank correlation (ties averaged) of valence and arousal over all scenes, and of
  valence within each film (Sintel; Big Buck Bunny) — all positive scenes come from one film and
  all negative ones from the other, so the within-film numbers show whether more than the film
  is being told apart;
* Ekman label x predicted top class;
* joy vs sadness: mean predicted valence of the joy scenes and of the sadness scenes, and the
  share of (joy, sadness) pairs ordered correctly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from emsync_bridge.errors import EmsyncError  # noqa: E402
from emsync_bridge.video.analysis import analyze_video  # noqa: E402
from emsync_bridge.video.emotion import EMOTIONS  # noqa: E402

HERE = Path(__file__).resolve().parent / "film_scenes"
CLEAR = 0.25  # |label valence| at or above which its sign counts


def load_scenes(manifest: Path = HERE / "scenes.json") -> list[dict]:
    return json.loads(manifest.read_text(encoding="utf-8"))["scenes"]


def ranks(x) -> np.ndarray:
    """Ranks 0..n-1 with ties given their average rank."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(a, b) -> float:
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


def predict(clip: Path, estimator: str) -> dict:
    a = analyze_video(clip, estimator=estimator, cache=False)
    dur = np.array([s.end - s.start for s in a.scenes])
    w = dur / dur.sum()
    probs = {e: float(sum(wi * s.emotions.get(e, 0.0) for wi, s in zip(w, a.scenes))) for e in EMOTIONS}
    def feat(name, default):  # duration-weighted per-scene diagnostic (learned estimator only)
        return float(np.dot(w, [(s.features or {}).get(name, default(s)) for s in a.scenes]))

    return {"valence": float(a.valence), "arousal": float(a.arousal),
            "valence_unshrunk": feat("valence_unshrunk", lambda s: s.valence),
            "image_valence": feat("image_valence", lambda s: float("nan")),
            "face_share": feat("face_share", lambda s: float("nan")),
            "face_valence": feat("face_valence", lambda s: float("nan")),
            **{f"sound_{k}": feat(f"sound_{k}", lambda s: float("nan"))
               for k in ("valence", "evidence", "weight")},
            "confidence": float(np.dot(w, [s.confidence for s in a.scenes])),
            "top": max(probs, key=probs.get), "emotions": probs, "n_scenes": len(a.scenes)}


def film(scene: dict) -> str:
    return scene["source"].split("_")[0]  # sintel / bbb / tos


def summarise(scenes: list[dict], preds: list[dict]) -> dict:
    lv = np.array([s["valence"] for s in scenes])
    la = np.array([s["arousal"] for s in scenes])
    pv = np.array([p["valence"] for p in preds])
    pa = np.array([p["arousal"] for p in preds])
    clear = np.abs(lv) >= CLEAR
    right = np.sign(pv[clear]) == np.sign(lv[clear])
    k, n = int(right.sum()), int(clear.sum())
    conf = {f"label {ls} / pred {ps}": int(((np.sign(lv) == li) & clear & ((pv >= 0) == (pi > 0))).sum())
            for ls, li in (("-", -1), ("+", 1)) for ps, pi in (("-", -1), ("+", 1))}
    within = {}
    for f in ("sintel", "bbb"):
        m = np.array([film(s) == f for s in scenes])
        within[f] = {"n": int(m.sum()), "rho_valence": spearman(pv[m], lv[m]),
                     "rho_arousal": spearman(pa[m], la[m])}
    ekman = {}
    for s, p in zip(scenes, preds):
        key = s["ekman"] or "none"
        ekman.setdefault(key, {})
        ekman[key][p["top"]] = ekman[key].get(p["top"], 0) + 1
    joy = [p["valence"] for s, p in zip(scenes, preds) if s["ekman"] == "joy"]
    sad = [p["valence"] for s, p in zip(scenes, preds) if s["ekman"] == "sadness"]
    pairs = [j > q for j in joy for q in sad]
    return {
        "sign_agreement": k / n, "sign_right": k, "sign_n": n, "sign_ci95": wilson(k, n),
        "majority_baseline": max(int((lv[clear] < 0).sum()), int((lv[clear] > 0).sum())) / n,
        "rho_valence": spearman(pv, lv), "rho_arousal": spearman(pa, la),
        "arousal_sign_agreement": float(np.mean(np.sign(pa[np.abs(la) >= CLEAR]) == np.sign(la[np.abs(la) >= CLEAR]))),
        "within_film": within, "sign_confusion": conf, "ekman_confusion": ekman,
        "joy_mean_valence": float(np.mean(joy)), "sadness_mean_valence": float(np.mean(sad)),
        "joy_above_sadness": bool(np.mean(joy) > np.mean(sad)), "joy_sadness_pairs_right": float(np.mean(pairs)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, default=HERE / "clips", help="folder with <scene id>.mp4")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--estimators", default="learned,heuristic")
    args = ap.parse_args(argv)
    scenes = load_scenes()
    missing = [s["id"] for s in scenes if not (args.clips / f"{s['id']}.mp4").is_file()]
    if missing:
        sys.exit(f"bench_film_emotion: {len(missing)} clips missing in {args.clips} (e.g. {missing[0]}.mp4); "
                 "build them with benchmarks/film_scenes/make_clips.py")
    clips = args.clips.resolve()
    root = Path(__file__).resolve().parents[1]
    out = {"clips": str(clips.relative_to(root) if clips.is_relative_to(root) else clips), "n_scenes": len(scenes), "load_before": os.getloadavg(), "estimators": {}}
    for est in args.estimators.split(","):
        t0 = time.perf_counter()
        try:
            preds = [predict(args.clips / f"{s['id']}.mp4", est) for s in scenes]
        except EmsyncError as e:
            sys.exit(f"bench_film_emotion: {e}")
        wall = time.perf_counter() - t0
        summ = summarise(scenes, preds)
        out["estimators"][est] = {"summary": summ, "wall_s": wall,
                                  "scenes": [{"id": s["id"], "label_valence": s["valence"], "label_arousal": s["arousal"],
                                              "label_ekman": s["ekman"], **p} for s, p in zip(scenes, preds)]}
        print(f"\n== {est}  ({wall:.1f} s for {len(scenes)} clips)")
        print(f"{'scene':32s} {'V lab':>6s} {'V pred':>7s} {'(raw)':>6s} {'A lab':>6s} {'A pred':>7s} {'conf':>5s}  ekman -> top")
        for s, p in zip(scenes, preds):
            mark = "" if abs(s["valence"]) < CLEAR else ("ok" if np.sign(p["valence"]) == np.sign(s["valence"]) else "XX")
            print(f"{s['id']:32s} {s['valence']:+6.2f} {p['valence']:+7.2f} {p['valence_unshrunk']:+6.2f} "
                  f"{s['arousal']:+6.2f} {p['arousal']:+7.2f} {p['confidence']:5.2f}  {s['ekman'] or '-'} -> {p['top']} {mark}")
        lo, hi = summ["sign_ci95"]
        print(f"valence sign agreement {summ['sign_right']}/{summ['sign_n']} = {summ['sign_agreement']:.0%} "
              f"(95 % CI {lo:.0%}-{hi:.0%}; majority {summ['majority_baseline']:.0%}); "
              f"Spearman valence {summ['rho_valence']:+.2f}, arousal {summ['rho_arousal']:+.2f}; "
              f"arousal sign {summ['arousal_sign_agreement']:.0%}")
        print("within film: " + "; ".join(f"{f} (n={w['n']}) rho V {w['rho_valence']:+.2f} A {w['rho_arousal']:+.2f}"
                                          for f, w in summ["within_film"].items()))
        print("sign confusion: " + ", ".join(f"{k} {v}" for k, v in summ["sign_confusion"].items()))
        print("ekman confusion (label: predicted top counts): " +
              "; ".join(f"{k}: {v}" for k, v in sorted(summ["ekman_confusion"].items())))
        print(f"joy mean V {summ['joy_mean_valence']:+.2f} vs sadness {summ['sadness_mean_valence']:+.2f} "
              f"({'holds' if summ['joy_above_sadness'] else 'FAILS'}); pairs right {summ['joy_sadness_pairs_right']:.0%}")
    out["load_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
