"""`analyze_video`: decode once, detect cuts, measure features, estimate emotion per scene; cached.

Pipeline (one pass over the frames, then cheap array work):
    decode.decode_frames ──► cuts.HardCutDetector (PySceneDetect, every frame) ─ hard cuts ─┐
                        └──► features.FrameFeatures (motion every frame; colour ~10 Hz)        │
                               └─ thumbnails ~10 Hz ─► cuts.TransitionScanner (fades, content check;
                                                        holds ~1 min of thumbnails) → `cuts`
    cuts.thin_cuts(min_scene_s) → `boundaries` → scenes → estimator → SceneEmotion per scene
    decode.stream_audio → features.AudioFeatureStream (loudness, onsets) feed the scene features;
        the same audio pass at 16 kHz → the estimator's sound sampler (sounds.SoundSampler: YAMNet).

Cache: one JSON (+ an .npz of report thumbnails) per (file content hash, parameters) in the user
cache dir; written atomically (temp file + rename); an unreadable entry is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emsync_bridge.atomic import write_atomic
from emsync_bridge.errors import EmsyncError
from emsync_bridge.video import decode
from emsync_bridge.video.cuts import HardCutDetector, TransitionScanner, thin_cuts
from emsync_bridge.video.estimators import EmotionEstimator, get_estimator
from emsync_bridge.video.features import SAMPLE_HZ, AudioFeatureStream, FrameFeatures, scene_features
from emsync_bridge.video.schema import VideoAnalysis

log = logging.getLogger(__name__)

ANALYSIS_VERSION = 8  # bump when results change for the same inputs (invalidates caches)
Progress = Callable[[float, float], None]  # (seconds analysed, total seconds)


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("emsync-bridge")) / "video-analysis"


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def content_hash(path: Path, cache_dir: Path) -> str:
    """`file_hash`, memoised by (absolute path, size, mtime, inode) so an unchanged multi-GB file
    is not re-read on every cache hit; any change to the file changes the memo key."""
    st = path.stat()
    sig = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    memo = cache_dir / "hashes" / hashlib.sha256(sig.encode()).hexdigest()[:32]
    try:
        h = memo.read_text().strip()
        if len(h) == 64:
            return h
    except OSError:
        pass
    h = file_hash(path)
    try:
        write_atomic(memo, h.encode())
    except OSError:
        pass
    return h


def _load_cached(base: Path, video: str) -> VideoAnalysis | None:
    try:
        d = json.loads(base.with_suffix(".json").read_text())
        if d.get("_version") != ANALYSIS_VERSION:
            return None
        a = VideoAnalysis.from_dict(d)
    except FileNotFoundError:
        return None
    except Exception as exc:  # corrupt/partial entry: rebuild rather than fail
        log.debug("ignoring bad cache entry %s: %s", base, exc)
        return None
    a.video = video
    try:
        import cv2

        with np.load(base.with_suffix(".npz")) as z:
            data, ends = z["jpeg"], z["ends"]
            starts = np.concatenate([[0], ends[:-1]])
            a.thumbnails = [
                (float(t), cv2.imdecode(data[s:e], cv2.IMREAD_COLOR)[:, :, ::-1].copy())
                for t, s, e in zip(z["t"], starts, ends)
            ]
    except Exception:  # thumbnails are optional; the report re-grabs frames if missing
        a.thumbnails = []
    return a


def _store_cached(base: Path, a: VideoAnalysis) -> None:
    try:
        d = a.to_dict(include_features=True)
        d["_version"] = ANALYSIS_VERSION
        if a.thumbnails:
            import io

            import cv2

            # JPEG (q 85) inside a plain .npz: 5× faster to write than savez_compressed, 2.5× smaller.
            enc = [cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])[1] for _, img in a.thumbnails]
            buf = io.BytesIO()
            np.savez(
                buf,
                t=np.asarray([t for t, _ in a.thumbnails]),
                jpeg=np.concatenate(enc).astype(np.uint8),
                ends=np.cumsum([len(e) for e in enc]),
            )
            write_atomic(base.with_suffix(".npz"), buf.getvalue())
        # JSON last: its presence marks a complete entry.
        write_atomic(base.with_suffix(".json"), json.dumps(d).encode())
    except OSError as exc:  # a read-only cache must not break analysis
        log.warning("could not write analysis cache %s: %s", base, exc)


def analyze_video(
    path: str | Path,
    min_scene_s: float = 4.0,
    *,
    estimator: str | EmotionEstimator | None = None,
    detector: str = "both",
    threshold: float | None = None,
    fades: bool = True,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    timeout_s: float | None = None,
    progress: Progress | None = None,
) -> VideoAnalysis:
    """Analyse one video file; see the module docstring and docs/video-analysis.md.

    min_scene_s: minimum spacing of `boundaries` (EMSYNC: 4 s); `cuts` keeps every cut.
    estimator: emotion estimator spec or instance (estimators.get_estimator).
    detector/threshold: hard-cut rule ("both" = PySceneDetect AdaptiveDetector + strong ContentDetector
        rule, "content", "adaptive"; see cuts.HardCutDetector) and its threshold.
    fades: also detect crossfades and fades. cache: reuse/store results keyed by content + params.
    timeout_s: wall-clock limit for decoding (default 60 s + 2 × duration).
    progress: called as progress(seconds_done, seconds_total) while decoding.
    Raises EmsyncError (one line) for any input that cannot be analysed.
    """
    if not (isinstance(min_scene_s, (int, float)) and math.isfinite(min_scene_s) and min_scene_s >= 0):
        raise EmsyncError(f"--min-scene must be a number of seconds >= 0, got {min_scene_s!r}")
    if detector not in ("both", "adaptive", "content"):
        raise EmsyncError(f"unknown cut detector {detector!r}; use both, adaptive or content")
    est = get_estimator(estimator)
    p = Path(path)
    probed = decode.probe(p)  # fail fast with the precise message before hashing or decoding

    base = None
    cache_id = getattr(est, "cache_id", None)
    if cache and cache_id:
        params = dict(
            v=ANALYSIS_VERSION, min_scene_s=float(min_scene_s), est=cache_id, det=detector,
            thr=threshold, fades=fades,
        )
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        key = hashlib.sha256((content_hash(p, root) + json.dumps(params, sort_keys=True)).encode()).hexdigest()[:32]
        base = root / key
        hit = _load_cached(base, str(path))
        if hit is not None:
            if progress:
                progress(hit.duration, hit.duration)
            return hit

    state: dict = {}

    def on_open(info: decode.VideoInfo) -> None:
        state["info"] = info
        state["hard"] = HardCutDetector(info.fps or 25.0, kind=detector, threshold=threshold)
        # Thumbnails are sampled at SAMPLE_HZ, or every frame below that rate.
        scan = TransitionScanner(min(SAMPLE_HZ, info.fps or SAMPLE_HZ), fades=fades)
        state["scan"] = scan
        state["feats"] = FrameFeatures(expected_duration=info.duration, on_thumb=scan.push)

    # An estimator that listens (the learned one) gets the audio pass at its own rate; made now, so a
    # broken sound model fails before the video pass, not after it.
    make_sound = getattr(est, "sound_sampler", None)
    listener = make_sound() if probed.has_audio and callable(make_sound) else None
    # An estimator that looks at frames (the learned one) gets larger ones at its own rate.
    make_sampler = getattr(est, "frame_sampler", None)
    sampler = make_sampler() if callable(make_sampler) else None
    grab = {}
    if sampler is not None:
        grab = dict(on_grab=sampler.push, grab_every_s=sampler.EVERY_S, grab_short_side=sampler.SHORT_SIDE)
    last_report = 0.0
    n_cuts = 0
    for i, (t, bgr) in enumerate(decode.decode_frames(p, timeout_s=timeout_s, on_open=on_open, **grab)):
        feats, hard_det = state["feats"], state["hard"]
        feats.push(t, bgr)
        hard_det.push(i, bgr)
        for c in hard_det.cuts[n_cuts:]:  # judged while the thumbnails around them are held
            if 0 < c <= i:
                state["scan"].add_hard_cut(feats.t[c])
        n_cuts = len(hard_det.cuts)
        if progress and t - last_report >= 1.0:
            progress(t, state["info"].duration or t)
            last_report = t
    info: decode.VideoInfo = state["info"]
    feats = state["feats"]
    arrays = feats.arrays()
    duration = info.duration

    frame_t = arrays["t"]
    hard_det = state["hard"]
    hard_idx = [i for i in hard_det.finish() if 0 < i < len(frame_t)]
    hard = [float(frame_t[i]) for i in hard_idx]
    weak = [float(frame_t[i]) for i in hard_idx if hard_det.is_weak(i)]
    cuts = state["scan"].finish(duration, hard, weak=weak)
    boundaries = thin_cuts(cuts, min_scene_s)

    audio = sounds = None
    if info.has_audio:
        stream = AudioFeatureStream(decode.AUDIO_RATE)  # 8 bytes per 16 ms hop, not the samples
        also = [(listener.RATE, listener.push)] if listener is not None else []
        # Audio after the picture ends is not decoded; the budget grows with the film (audio runs
        # ~100× real time here, with the listener ~50×).
        t0 = decode.stream_audio(p, stream.push, also=also, until=info.start_time + duration + 1.0,
                                 timeout_s=max(120.0, duration))
        if t0 is not None:
            audio = stream.finish()
            # Put audio on the video's clock (streams may start at different PTS).
            audio.frame_t += t0 - info.start_time
            audio.onsets = audio.onsets + (t0 - info.start_time)
            if listener is not None:
                sounds = listener.arrays(offset=t0 - info.start_time)
    samples = sampler.arrays() if sampler is not None else None
    scenes_in = scene_features(boundaries, duration, cuts, arrays, audio, feats.report, samples, sounds)
    try:
        scenes = est.estimate(scenes_in)
    except EmsyncError:
        raise
    except Exception as exc:  # a plug-in's bug or a model/runtime mismatch: one line, not a traceback
        raise EmsyncError(f"emotion estimator {est.name!r} failed: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    if len(scenes) != len(scenes_in):
        raise EmsyncError(f"emotion estimator {est.name!r} returned {len(scenes)} scenes for {len(scenes_in)}")
    total = sum(s.end - s.start for s in scenes) or 1.0
    result = VideoAnalysis(
        video=str(path),
        duration=duration,
        fps=info.fps,
        width=info.width,
        height=info.height,
        has_audio=audio is not None,
        cuts=cuts,
        boundaries=boundaries,
        scenes=scenes,
        valence=sum(s.valence * (s.end - s.start) for s in scenes) / total,
        arousal=sum(s.arousal * (s.end - s.start) for s in scenes) / total,
        thumbnails=feats.report,
    )
    if progress:
        progress(duration, duration)
    if base is not None:
        _store_cached(base, result)
    return result
