"""The sound channel (`video/sounds.py`): YAMNet's AudioSet classes → a scene's sound valence."""

from __future__ import annotations

import hashlib
import subprocess

import numpy as np
import pytest

from emsync_bridge.errors import EmsyncError
from emsync_bridge.video import sounds
from emsync_bridge.video.analysis import analyze_video
from emsync_bridge.video.estimators import LearnedEstimator
from emsync_bridge.video.features import SceneFeatures
from emsync_bridge.video.synth import Segment, make_video
from emsync_bridge.video.weights import AUDIO_CLASSES_FILE, AUDIO_FILE

pytest.importorskip("onnxruntime")

# Also in emsync_bridge/models/VIDEO_MODELS.md.
SHA256 = {
    AUDIO_FILE: "6db54b003b1bcb7d5f00f96140096dcee5caf15f4dc7998666de7fff8ecf21c3",
    AUDIO_CLASSES_FILE: "cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2",
}
T = np.arange(sounds.WINDOW) / sounds.RATE


def test_weights_and_class_map_ship_pinned():
    for path, digest in SHA256.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path.name
    names = sounds.class_names()
    assert len(names) == 521 and names[0] == "Speech" and names[132] == "Music"
    idx, val = sounds._valence_columns()
    assert [names[i] for i in idx] == list(sounds.VALENCE_CLASSES)  # every affect class exists by name
    assert set(np.sign(val)) == {-1.0, 1.0}


def test_network_hears_what_is_played():
    """Real audio through the shipped network: a pure tone, white noise, a C major chord, silence."""
    names = sounds.class_names()
    rng = np.random.default_rng(0)
    x = np.stack([
        0.5 * np.sin(2 * np.pi * 440 * T),
        0.3 * rng.standard_normal(len(T)),
        sum(0.1 * np.sin(2 * np.pi * f * T) for f in (261.6, 329.6, 392.0)),
        np.zeros(len(T)),
    ]).astype(np.float32)
    scores = sounds.class_scores(x)
    assert scores.shape == (4, 521) and ((scores >= 0) & (scores <= 1)).all()
    top = [[names[i] for i in np.argsort(-s)[:3]] for s in scores]
    assert {"Dial tone", "Sine wave", "Telephone", "Busy signal"} & set(top[0]), top[0]
    assert {"White noise", "Noise", "Static"} & set(top[1]), top[1]
    assert {"Music", "Sine wave", "Musical instrument", "Tuning fork"} & set(top[2]), top[2]
    evidence, _ = sounds.affect(scores)
    assert (evidence < 0.1).all()  # none of these is a sob, a laugh or sad music


def test_affect_and_weight_on_hand_made_scores():
    names = sounds.class_names()
    scores = np.zeros((3, 521), np.float32)
    scores[0, names.index("Crying, sobbing")] = 0.6
    scores[1, names.index("Laughter")] = 0.2
    scores[2, names.index("Tender music")] = 0.4
    e, p = sounds.affect(scores)
    np.testing.assert_allclose(e, [0.6, 0.2, 0.2], atol=1e-6)
    np.testing.assert_allclose(p, [-0.6, 0.2, 0.2], atol=1e-6)
    a, ev = sounds.scene_valence(e, p)
    assert a == pytest.approx(-0.2 / 1.0) and ev == pytest.approx(1.0 / 3)
    assert sounds.weight(0.0) == 0.0 and sounds.weight(0.1) == pytest.approx(0.25)
    assert sounds.weight(5.0) == sounds.W_AUDIO  # never more than half
    assert sounds.scene_sound({}) == {"valence": 0.0, "evidence": 0.0, "weight": 0.0}


def test_sampler_cuts_back_to_back_patches_whatever_the_chunks():
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(int(40.3 * sounds.WINDOW))).astype(np.float32)
    whole = sounds.SoundSampler()
    whole.push(x)
    a = whole.arrays(offset=2.0)
    parts = sounds.SoundSampler()
    for chunk in np.array_split(x, 97):
        parts.push(chunk)
    b = parts.arrays(offset=2.0)
    assert len(a["t"]) == 41  # 40 whole patches and the last 0.3 of one (≥ ¼: zero-padded)
    np.testing.assert_allclose(a["t"][:3], 2.0 + (np.arange(3) + 0.5) * sounds.WINDOW / sounds.RATE)
    for k in ("t", "evidence", "polarity"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
    short = sounds.SoundSampler()
    short.push(x[: sounds.WINDOW // 5])  # under a quarter of a patch: nothing to hear
    assert len(short.arrays()["t"]) == 0


def _scene_with(sound: dict | None) -> SceneFeatures:
    """A 6 s scene whose 8 sampled frames read valence 0.6, with the given sound patches."""
    return SceneFeatures(
        start=0.0, end=6.0, brightness=0.45, saturation=0.35, colourfulness=33.0, warmth=0.0, motion=1.0,
        cut_count=0, cut_rate=0.0, shot_length=6.0, loudness_db=-40.0, onset_rate=0.2,
        samples={"t": np.arange(8) * 0.5, "valence": np.full(8, 0.6, np.float32), "arousal": np.zeros(8, np.float32)},
        sounds=sound or {},
    )


def test_sound_moves_valence_by_its_weight():
    est = LearnedEstimator()
    plain = est.estimate([_scene_with(None)])[0]
    sobbing = {"t": np.arange(4.0), "evidence": np.full(4, 0.4, np.float32), "polarity": np.full(4, -0.4, np.float32)}
    faint = {"t": np.arange(4.0), "evidence": np.full(4, 0.02, np.float32), "polarity": np.full(4, -0.02, np.float32)}
    sad, weak = est.estimate([_scene_with(sobbing), _scene_with(faint)])
    v0 = plain.features["valence_unshrunk"]
    assert plain.features["sound_weight"] == 0.0
    # Full evidence: half picture, half sound (A = −1).
    assert sad.features["sound_weight"] == pytest.approx(0.5)
    assert sad.features["valence_unshrunk"] == pytest.approx(0.5 * v0 - 0.5, abs=1e-4)
    assert sad.valence < 0 < plain.valence
    # Faint evidence (E = 0.02): a tenth of that pull.
    assert weak.features["sound_weight"] == pytest.approx(0.05)
    assert weak.features["valence_unshrunk"] == pytest.approx(0.95 * v0 - 0.05, abs=1e-4)
    assert plain.arousal == sad.arousal  # the sound channel is about valence only


def test_sound_network_failure_is_one_line(tmp_path, monkeypatch):
    path = make_video(tmp_path / "tone.mp4", [Segment("testsrc2", 2.0)], size=(160, 90), fps=25)

    def broken(_patches):
        raise RuntimeError("bad model\nsecond line")

    monkeypatch.setattr(sounds, "class_scores", broken)
    with pytest.raises(EmsyncError, match=r"^sound network failed: RuntimeError: bad model$"):
        analyze_video(path, min_scene_s=1.0, cache=False)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _every_patch_sobs(monkeypatch) -> list[int]:
    """Make every patch read as full-evidence sobbing (e 0.4, P −0.4); returns a list that
    collects how many patches each network run scored."""
    runs: list[int] = []

    def sobbing(scores):
        runs.append(len(scores))
        return np.full(len(scores), 0.4, np.float32), np.full(len(scores), -0.4, np.float32)

    monkeypatch.setattr(sounds, "affect", sobbing)
    return runs


def test_analysis_listens_to_films_with_sound_only(tmp_path, monkeypatch):
    segs = [Segment("testsrc2", 3.0), Segment("smptehdbars", 3.0)]
    loud = make_video(tmp_path / "tone.mp4", segs, size=(320, 180), fps=25)
    mute = make_video(tmp_path / "mute.mp4", segs, size=(320, 180), fps=25, audio=None)
    a = analyze_video(loud, min_scene_s=1.0, cache=False)
    assert a.has_audio and all(s.features["sound_weight"] < 0.05 for s in a.scenes)  # a 220 Hz tone is no emotion
    runs = _every_patch_sobs(monkeypatch)
    a = analyze_video(loud, min_scene_s=1.0, cache=False)
    assert sum(runs) == 6  # 6 s of audio: six whole patches (the 0.15-patch tail is dropped)
    assert [s.features["sound_weight"] for s in a.scenes] == [0.5, 0.5]
    runs.clear()
    m = analyze_video(mute, min_scene_s=1.0, cache=False)
    assert not m.has_audio and not runs and all(s.features["sound_weight"] == 0.0 for s in m.scenes)


def test_sound_patches_sit_on_the_video_clock(tmp_path, monkeypatch):
    """Audio that starts 5 s into an 8 s film (cut at 4 s): the first scene hears nothing — neither
    patches put at t = 0 nor the nearest patch from across the hole — the second hears all."""
    video = make_video(tmp_path / "v.mp4", [Segment("testsrc2", 4.0), Segment("smptehdbars", 4.0)],
                       size=(320, 180), fps=25, audio=None)
    late = tmp_path / "late.mkv"
    _ffmpeg("-i", str(video), "-itsoffset", "5", "-f", "lavfi", "-t", "3", "-i", "sine=frequency=440",
            "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(late))
    _every_patch_sobs(monkeypatch)
    a = analyze_video(late, min_scene_s=1.0, cache=False)
    assert [round(s.start) for s in a.scenes] == [0, 4]
    assert a.scenes[0].features["sound_weight"] == 0.0
    assert a.scenes[1].features["sound_weight"] == 0.5 and a.scenes[1].features["sound_valence"] == -1.0


def test_audio_keeps_its_clock_through_holes_bad_packets_and_nan(tmp_path):
    from emsync_bridge.video import decode

    def heard(path, **kw) -> tuple[float | None, np.ndarray]:
        chunks: list[np.ndarray] = []
        t0 = decode.stream_audio(path, chunks.append, **kw)
        return t0, (np.concatenate(chunks) if chunks else np.zeros(0))

    # 150 AAC packets (3.2 s) dropped from 12 s: silence fills the hole, later audio keeps its time.
    hole = tmp_path / "hole.mkv"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=12", "-c:a", "aac", "-bsf:a", "noise=drop=between(n\\,100\\,250)", str(hole))
    t0, x = heard(hole)
    assert abs(len(x) / decode.AUDIO_RATE - 12.0) < 0.2
    k = int(round((100 * 1024 / 44100 + 0.5) * decode.AUDIO_RATE))
    assert np.abs(x[k : k + 8000]).max() < 1e-3 and np.abs(x[-16000:-8000]).max() > 0.05
    # Bytes flipped in the middle of an AAC stream: the bad packets are skipped, not the rest.
    adts = tmp_path / "a.aac"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=12", "-c:a", "aac", str(adts))
    raw = bytearray(adts.read_bytes())
    a, b = len(raw) // 3, len(raw) // 3 + 4000
    raw[a:b] = bytes(v ^ 0x5A for v in raw[a:b])
    adts.write_bytes(bytes(raw))
    bad = tmp_path / "bad.mkv"
    _ffmpeg("-i", str(adts), "-c", "copy", str(bad))
    t0, x = heard(bad)
    assert len(x) / decode.AUDIO_RATE > 11.0 and np.abs(x[-8000:]).max() > 0.05
    # NaN and inf samples read as silence.
    f32 = tmp_path / "nan.f32"
    y = (0.5 * np.sin(2 * np.pi * 440 * np.arange(3 * 16000) / 16000)).astype(np.float32)
    y[1000:1050], y[5000:5010] = np.nan, np.inf
    y.tofile(f32)
    nan = tmp_path / "nan.mkv"
    _ffmpeg("-f", "f32le", "-ar", "16000", "-ac", "1", "-i", str(f32), "-c:a", "pcm_f32le", str(nan))
    t0, x = heard(nan, rate=16000)
    assert np.isfinite(x).all() and abs(len(x) - len(y)) < 200
    # Decoding stops at `until`.
    t0, x = heard(nan, rate=16000, until=1.5)
    assert 1.5 <= len(x) / 16000 < 1.6


def test_nan_evidence_never_flips_a_scene():
    assert sounds.scene_valence(np.array([np.nan, 0.3]), np.array([np.nan, -0.3])) == (0.0, 0.0)
    est = LearnedEstimator()
    plain = est.estimate([_scene_with(None)])[0]
    broken = {"t": np.arange(3.0), "evidence": np.full(3, np.nan, np.float32), "polarity": np.full(3, np.nan, np.float32)}
    got = est.estimate([_scene_with(broken)])[0]
    assert got.valence == plain.valence and got.features["sound_weight"] == 0.0


def test_a_last_partial_patch_counts_by_its_share(monkeypatch):
    monkeypatch.setattr(sounds, "affect", lambda s: (np.full(len(s), 0.4, np.float32), np.full(len(s), 0.4, np.float32)))
    sampler = sounds.SoundSampler()
    sampler.push(np.zeros(int(1.5 * sounds.WINDOW), np.float32))
    a = sampler.arrays()
    np.testing.assert_allclose(a["t"], np.array([0.5, 1.25]) * sounds.WINDOW / sounds.RATE)
    np.testing.assert_allclose(a["evidence"], [0.4, 0.2], rtol=1e-5)


def test_broken_sound_model_is_one_line_before_the_video_pass(tmp_path, monkeypatch):
    from emsync_bridge.video import decode

    path = make_video(tmp_path / "tone.mp4", [Segment("testsrc2", 2.0)], size=(160, 90), fps=25)
    broken = tmp_path / "audio-yamnet.onnx"
    broken.write_bytes(AUDIO_FILE.read_bytes()[:1000])  # a truncated download
    monkeypatch.setattr(sounds, "AUDIO_FILE", broken)
    sounds._session.cache_clear()

    def no_video_pass(*a, **k):
        raise AssertionError("the video was decoded before the sound model was opened")

    monkeypatch.setattr(decode, "decode_frames", no_video_pass)
    try:
        with pytest.raises(EmsyncError, match=r"^the learned video estimator cannot load audio-yamnet\.onnx .*[^\n]$"):
            analyze_video(path, min_scene_s=1.0, cache=False)
    finally:
        sounds._session.cache_clear()
