"""Face channel on OASIS: does pulling valence toward the faces' expressions help on photos of people?

    python benchmarks/oasis_faces.py OASIS_DIR [--cache DIR]

For every OASIS image (see benchmarks/oasis_head.py for the data and its terms) the shipped face
channel (faces.frame_summary, on the image scaled to a 160 px shorter side like the sampler's
frames) gives a face weight and face valence; the image head's 10-fold cross-validated valence
prediction (160 px, as shipped) is combined exactly as LearnedEstimator does,
v = (1 − k·f)·v_image + k·f·v_face (k = LearnedEstimator.FACE_PULL). Reports, on the images with a face found: r and sign agreement
of the face valence alone, the image head alone, and the fused value.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oasis_head  # noqa: E402

from emsync_bridge.video import faces, scene_model  # noqa: E402
from emsync_bridge.video.estimators import LearnedEstimator  # noqa: E402

PULL = LearnedEstimator.FACE_PULL


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("oasis", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/oasis-embeddings"))
    args = ap.parse_args()
    items = oasis_head.load_oasis(args.oasis)
    raw_v = np.asarray([v for _, v, _ in items])
    raw_a = np.asarray([a for _, _, a in items])
    Y = np.stack([(raw_v - 4.0) / 2.0, (raw_a - 4.0) / 1.5], axis=1)
    cache = args.cache / f"emb{scene_model.INPUT_SIZE}.npy"
    X = np.load(cache) if cache.exists() else scene_model.embed([oasis_head.image_rgb(args.oasis, t) for t, _, _ in items])
    pred = oasis_head.cross_validate(X, Y, raw_v)["pred"]
    fw, fv = np.zeros(len(items)), np.zeros(len(items))
    for i, (theme, _, _) in enumerate(items):
        rgb = oasis_head.image_rgb(args.oasis, theme)
        s = 160 / min(rgb.shape[:2])
        small = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        summ = faces.frame_summary(small)
        fw[i], fv[i] = summ[0], summ[1]
    m = fw > 0
    pull = PULL * fw
    fused = (1 - pull) * pred[:, 0] + pull * fv
    y = Y[:, 0]
    nz = m & (raw_v != 4.0)

    def rep(name, x):
        r = float(np.corrcoef(x[m], y[m])[0, 1])
        sign = float((np.sign(x[nz]) == np.sign(y[nz])).mean())
        print(f"  {name:26s} r {r:.3f}  sign {sign:.3f}")

    print(f"faces found in {m.sum()} of {len(items)} images (mean weight {fw[m].mean():.2f})")
    rep("face valence alone", fv)
    rep("image head (CV)", pred[:, 0])
    rep(f"fused, pull {PULL} (shipped)", fused)
    for k in (0.1, 0.25, 0.5, 1.0):  # the pull constant: how the shipped value was chosen
        rep(f"fused, pull {k}", (1 - k * fw) * pred[:, 0] + k * fw * fv)


if __name__ == "__main__":
    main()
