"""Train and cross-validate the valence/arousal ridge head on OASIS (MobileNet V1 embeddings).

    python benchmarks/oasis_head.py OASIS_DIR [--sizes 128 160 224] [--write-size 160]

OASIS_DIR holds `OASIS.csv` and `images/` from github.com/bkurdi/shiny-server (the OASIS author's
repository, commit 1a3bcada01115bbe651bf0e69f7410c8ef63cc94; Kurdi, Lozano & Banaji 2017, "Introducing
the Open Affective Standardized Image Set (OASIS)", Behav. Res. Methods 49:457–470). The repository
has no licence file; the images come from Pixabay, Wikipedia and Flickr under their own terms. So
the images are never committed: only the head's 2 × 1024 coefficients and standardisation are
(emsync_bridge/models/scene-head-oasis.npz).

Targets, on the pipeline's scale: valence (V_mean − 4) / 2, arousal (A_mean − 4) / 1.5 (OASIS rates
1..7 with 4 neutral). Ridge on standardised embeddings; 10-fold CV (fixed shuffle, seed 0); the
ridge penalty is chosen by an inner 5-fold CV on each training fold (nested, so the reported r is
not tuned on its own test fold). Reports Pearson r, Spearman ρ, sign agreement for valence (items
rated ≠ 4) and the colour-feature baseline (the heuristic's brightness/saturation/colourfulness/warmth).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from emsync_bridge.video import scene_model  # noqa: E402

ALPHAS = [1.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]


def load_oasis(root: Path):
    rows = list(csv.reader(io.StringIO((root / "OASIS.csv").read_text().replace("\r\n", "\n").replace("\r", "\n"))))
    head = rows[0]
    iv, ia, it = head.index("Valence_mean"), head.index("Arousal_mean"), head.index("Theme")
    items = [(r[it].strip(), float(r[iv]), float(r[ia])) for r in rows[1:] if len(r) > ia]
    return items


def image_rgb(root: Path, theme: str) -> np.ndarray:
    p = root / "images" / f"{theme}.jpg"
    if not p.exists():
        p = next((root / "images").glob(f"{theme}*.jpg"))
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    return bgr[:, :, ::-1].copy()


# Colour gradings a film applies to whole shots (applied to 0..255 RGB): the learned head must not
# read them as mood. Warm amber and cool blue casts, a golden haze (lifted blacks + warm), a dark
# low-key look, a bleached (desaturated) look. Set by hand from common grading looks, not fitted.
GRADINGS = {
    "warm": lambda x: x * np.float32([1.25, 1.05, 0.75]),
    "cool": lambda x: x * np.float32([0.8, 0.95, 1.2]),
    "golden haze": lambda x: (x * 0.8 + 40.0) * np.float32([1.2, 1.05, 0.8]),
    "low key": lambda x: 255.0 * 0.7 * (x / 255.0) ** 1.6,
    "bleach": lambda x: 0.4 * x + 0.6 * x.mean(axis=2, keepdims=True),
}


def grade(rgb: np.ndarray, name: str) -> np.ndarray:
    return np.clip(GRADINGS[name](rgb.astype(np.float32)), 0, 255).astype(np.uint8)


def ridge_fit(X, Y, alpha):
    mu, sd = X.mean(0), X.std(0) + 1e-6
    Z = (X - mu) / sd
    ym = Y.mean(0)
    # Dual form (n < d): W = Zᵀ (Z Zᵀ + αI)⁻¹ (Y − ȳ)
    K = Z @ Z.T
    A = np.linalg.solve(K + alpha * np.eye(len(Z)), Y - ym)
    return mu, sd, Z.T @ A, ym


def ridge_predict(model, X):
    mu, sd, W, b = model
    return ((X - mu) / sd) @ W + b


def folds(n, k, seed):
    idx = np.random.default_rng(seed).permutation(n)
    return [idx[i::k] for i in range(k)]


def best_alpha(X, Y, k=5, n=None):
    """The ridge penalty with the least k-fold error. With `n`, X holds n images then copies of
    them ([originals; graded copy 1; ...]): folds go by image, so no image's copy is in both the
    fit and the check, and the error is scored on the originals."""
    n = len(X) if n is None else n
    copies = len(X) // n
    errs = []
    for a in ALPHAS:
        e = 0.0
        for te in folds(n, k, 1):
            tr = np.setdiff1d(np.arange(n), te)
            rows = np.concatenate([tr + c * n for c in range(copies)])
            e += float(((ridge_predict(ridge_fit(X[rows], Y[rows], a), X[te]) - Y[te]) ** 2).sum())
        errs.append(e)
    return ALPHAS[int(np.argmin(errs))]


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def cross_validate(X, Y, raw_v, graded=None, augment=False):
    """10-fold CV on the original images. With `graded` ([k, n, 1024]: embeddings of k graded copies
    of each image) the held-out images' graded copies are scored too: `grading_shift` = mean
    |valence(graded) − valence(original)| on held-out images; with `augment` the training folds
    also get the graded copies of their images, with the same labels."""
    pred = np.zeros_like(Y)
    gpred = None if graded is None else np.zeros((len(graded),) + Y.shape)
    alphas = []
    for te in folds(len(X), 10, 0):
        tr = np.setdiff1d(np.arange(len(X)), te)
        Xtr, Ytr = X[tr], Y[tr]
        if augment:
            Xtr = np.concatenate([Xtr] + [g[tr] for g in graded])
            Ytr = np.concatenate([Ytr] * (1 + len(graded)))
        a = best_alpha(Xtr, Ytr, n=len(tr))
        alphas.append(a)
        model = ridge_fit(Xtr, Ytr, a)
        pred[te] = ridge_predict(model, X[te])
        if graded is not None:
            for k, g in enumerate(graded):
                gpred[k, te] = ridge_predict(model, g[te])
    rv = float(np.corrcoef(pred[:, 0], Y[:, 0])[0, 1])
    ra = float(np.corrcoef(pred[:, 1], Y[:, 1])[0, 1])
    m = raw_v != 4.0
    sign = float((np.sign(pred[m, 0]) == np.sign(Y[m, 0])).mean())
    majority = float(max((Y[m, 0] > 0).mean(), (Y[m, 0] < 0).mean()))
    out = dict(r_valence=rv, r_arousal=ra, rho_valence=spearman(pred[:, 0], Y[:, 0]),
               rho_arousal=spearman(pred[:, 1], Y[:, 1]), sign_valence=sign, majority=majority,
               alphas=alphas, pred=pred)
    if gpred is not None:
        out["grading_shift"] = [float(np.abs(g[:, 0] - pred[:, 0]).mean()) for g in gpred]
        out["graded_r_valence"] = [float(np.corrcoef(g[:, 0], Y[:, 0])[0, 1]) for g in gpred]
    return out


def sign_calibration(pred, y):
    """Logistic fit P(sign(pred) == sign(y)) = σ(c0 + c1·|pred|) on CV predictions (Newton steps)."""
    m = y != 0
    x, ok = np.abs(pred[m]), (np.sign(pred[m]) == np.sign(y[m])).astype(np.float64)
    X = np.stack([np.ones_like(x), x], axis=1)
    w = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-X @ w))
        H = X.T @ (X * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
        w -= np.linalg.solve(H, X.T @ (p - ok))
    return w


def print_reliability(pred, Y, calib):
    """Confidence c = 2·σ(c0 + c1·|pred|) − 1 (clipped at 0) against observed sign accuracy, binned."""
    for i, name in enumerate(("valence", "arousal")):
        c0, c1 = calib[2 * i : 2 * i + 2]
        c = np.clip(2 / (1 + np.exp(-(c0 + c1 * np.abs(pred[:, i])))) - 1, 0, 1)
        ok = np.sign(pred[:, i]) == np.sign(Y[:, i])
        rows = []
        for lo, hi in ((0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 1.01)):
            m = (c >= lo) & (c < hi)
            if m.any():
                rows.append(f"c∈[{lo},{min(hi, 1)}): n {m.sum()}, predicted acc {(1 + c[m].mean()) / 2:.2f}, observed {ok[m].mean():.2f}")
        print(f"{name} calibration σ({c0:.2f} + {c1:.2f}·|pred|): " + "; ".join(rows))


def colour_features(rgb):
    from emsync_bridge.video.features import FrameFeatures

    ff = FrameFeatures()
    small = cv2.resize(rgb, (160, int(160 * rgb.shape[0] / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    ff.push(0.0, np.ascontiguousarray(small[:, :, ::-1]))
    return list(ff.stats[:4])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("oasis", type=Path)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 160, 224])
    ap.add_argument("--write-size", type=int, default=None, help="write the head trained at this input size")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/oasis-embeddings"))
    ap.add_argument("--out", type=Path, default=scene_model.HEAD_FILE)
    ap.add_argument("--grading", action="store_true",
                    help="also score graded copies (GRADINGS) of the held-out images, and train a head on the "
                         "originals plus their graded copies; --write-size then writes that head")
    args = ap.parse_args()
    items = load_oasis(args.oasis)
    raw_v = np.asarray([v for _, v, _ in items])
    raw_a = np.asarray([a for _, _, a in items])
    Y = np.stack([(raw_v - 4.0) / 2.0, (raw_a - 4.0) / 1.5], axis=1)
    args.cache.mkdir(parents=True, exist_ok=True)
    imgs = None
    for size in args.sizes:
        cache = args.cache / f"emb{size}.npy"
        if cache.exists():
            X = np.load(cache)
        else:
            imgs = imgs or [image_rgb(args.oasis, t) for t, _, _ in items]
            t0 = time.process_time()
            X = scene_model.embed(imgs, size=size)
            print(f"size {size}: embedded {len(imgs)} images, {1000 * (time.process_time() - t0) / len(imgs):.1f} CPU-ms/image", flush=True)
            np.save(cache, X)
        graded = None
        if args.grading:
            graded = []
            for name in GRADINGS:
                gcache = args.cache / f"emb{size}-{name.replace(' ', '_')}.npy"
                if not gcache.exists():
                    imgs = imgs or [image_rgb(args.oasis, t) for t, _, _ in items]
                    np.save(gcache, scene_model.embed([grade(im, name) for im in imgs], size=size))
                graded.append(np.load(gcache))
            graded = np.stack(graded)
            plain = cross_validate(X, Y, raw_v, graded)
            print(f"size {size}, trained on originals: valence r {plain['r_valence']:.3f} (sign {plain['sign_valence']:.3f}); "
                  f"arousal r {plain['r_arousal']:.3f}; on graded held-out images valence r "
                  + ", ".join(f"{n} {r:.3f}" for n, r in zip(GRADINGS, plain["graded_r_valence"]))
                  + "; mean |valence shift| " + ", ".join(f"{n} {d:.3f}" for n, d in zip(GRADINGS, plain["grading_shift"])),
                  flush=True)
        res = cross_validate(X, Y, raw_v, graded, augment=args.grading)
        if args.grading:
            print(f"size {size}, trained with graded copies: on graded held-out images valence r "
                  + ", ".join(f"{n} {r:.3f}" for n, r in zip(GRADINGS, res["graded_r_valence"]))
                  + "; mean |valence shift| " + ", ".join(f"{n} {d:.3f}" for n, d in zip(GRADINGS, res["grading_shift"])),
                  flush=True)
        print(f"size {size}: valence r {res['r_valence']:.3f} (ρ {res['rho_valence']:.3f}, sign {res['sign_valence']:.3f}, "
              f"majority {res['majority']:.3f}); arousal r {res['r_arousal']:.3f} (ρ {res['rho_arousal']:.3f}); "
              f"alphas {sorted(set(res['alphas']))}", flush=True)
        if size == args.write_size:
            if graded is not None:  # originals and their graded copies, same labels
                Xfit, Yfit = np.concatenate([X, *graded]), np.concatenate([Y] * (1 + len(graded)))
                a = best_alpha(Xfit, Yfit, k=10, n=len(X))
            else:
                Xfit, Yfit = X, Y
                a = best_alpha(X, Y, k=10)
            mu, sd, W, b = ridge_fit(Xfit, Yfit, a)
            resid = (res["pred"] - Y).std(0)
            calib = np.concatenate([sign_calibration(res["pred"][:, i], Y[:, i]) for i in range(2)])
            print_reliability(res["pred"], Y, calib)
            np.savez(args.out, mean=mu.astype(np.float32), scale=sd.astype(np.float32), W=W.astype(np.float32),
                     b=b.astype(np.float32), input_size=np.int32(size), alpha=np.float32(a),
                     residual_sd=resid.astype(np.float32), sign_calib=calib.astype(np.float32), cv_r=np.float32([res["r_valence"], res["r_arousal"]]))
            print(f"wrote {args.out} (alpha {a}, CV residual sd {resid.round(3).tolist()})")
    # Baseline: the heuristic's colour features, same CV.
    imgs = imgs or [image_rgb(args.oasis, t) for t, _, _ in items]
    C = np.asarray([colour_features(im) for im in imgs], dtype=np.float64)
    res = cross_validate(C, Y, raw_v)
    print(f"colour features: valence r {res['r_valence']:.3f} (sign {res['sign_valence']:.3f}); arousal r {res['r_arousal']:.3f}")


if __name__ == "__main__":
    sys.exit(main())
