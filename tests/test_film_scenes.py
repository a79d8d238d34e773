"""Real film scenes (issue 19, benchmarks/film_scenes/): the manifest is complete and sane, and on
the committed clips the default (learned) estimator keeps its measured valence sign agreement.

Full report: `python benchmarks/bench_film_emotion.py` (docs/video-analysis.md, "Real film scenes").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_film_emotion as bench  # noqa: E402

from emsync_bridge.video.emotion import EMOTIONS  # noqa: E402

MAN = bench.HERE / "scenes.json"
CLIPS = bench.HERE / "clips"
# Measured 10/20 (50 %) on 2026-12-06 (docs/video-analysis.md); one scene of slack for decoder or
# onnxruntime differences. Acceptance in issue 19 asks for 80 %: not met, see the docs.
LEARNED_SIGN_MIN = 9 / 20
SOURCE_KEYS = {"film", "licence", "attribution", "repo", "commit", "path", "git_blob", "sha256", "duration_s"}
FREE_LICENCES = {"CC BY 3.0", "CC BY 4.0", "CC BY 2.5", "CC0 1.0", "public domain"}


def test_manifest_scenes_have_sources_licences_and_valid_labels():
    import json

    man = json.loads(MAN.read_text(encoding="utf-8"))
    for key, src in man["sources"].items():
        assert SOURCE_KEYS <= set(src), key
        assert src["licence"] in FREE_LICENCES, (key, src["licence"])  # never NC/ND or "testing only"
        assert len(src["commit"]) == 40 and len(src["sha256"]) == 64, key
    scenes = man["scenes"]
    assert len(scenes) >= 20
    assert len({s["id"] for s in scenes}) == len(scenes)
    for s in scenes:
        src = man["sources"][s["source"]]
        assert 0 <= s["start"] < s["end"] <= src["duration_s"], s["id"]
        assert -1 <= s["valence"] <= 1 and -1 <= s["arousal"] <= 1, s["id"]
        assert s["ekman"] is None or s["ekman"] in EMOTIONS, s["id"]
        assert isinstance(s["faces"], bool) and s["why"].strip(), s["id"]
    labels = [s["ekman"] for s in scenes]
    assert labels.count("joy") >= 3 and labels.count("sadness") >= 3  # the joy-vs-sadness check needs both
    assert sum(abs(s["valence"]) >= bench.CLEAR for s in scenes) >= 20


def test_rank_helpers():
    assert list(bench.ranks([3, 1, 1, 2])) == [3.0, 0.5, 0.5, 2.0]
    assert bench.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert bench.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    lo, hi = bench.wilson(16, 20)
    assert lo < 0.8 < hi


def _clips_or_skip():
    missing = [s["id"] for s in bench.load_scenes() if not (CLIPS / f"{s['id']}.mp4").is_file()]
    if missing:
        pytest.skip(f"{len(missing)} film clips absent from {CLIPS}; build them with "
                    "benchmarks/film_scenes/make_clips.py --src DIR --fetch")


def test_clips_match_the_manifest_spans():
    _clips_or_skip()
    from emsync_bridge.video.decode import probe

    for s in bench.load_scenes():
        info = probe(CLIPS / f"{s['id']}.mp4")
        assert info.duration == pytest.approx(s["end"] - s["start"], abs=0.15), s["id"]
        assert info.height == 180, s["id"]


def test_learned_estimator_keeps_its_sign_agreement_on_real_scenes():
    pytest.importorskip("onnxruntime")
    _clips_or_skip()
    scenes = bench.load_scenes()
    preds = [bench.predict(CLIPS / f"{s['id']}.mp4", "learned") for s in scenes]
    summ = bench.summarise(scenes, preds)
    assert summ["sign_n"] == 20
    assert summ["sign_agreement"] >= LEARNED_SIGN_MIN, summ
    assert summ["joy_above_sadness"], summ
