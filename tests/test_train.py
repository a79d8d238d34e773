"""Training on a small token cache built here (no POP909 needed): window sampling, checkpoints,
resume after a stop, shipping the weights, and the CLI's one-line error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from emsync_bridge.music import vocab
from emsync_bridge.music.midi import Note, Score, score_to_tokens
from emsync_bridge.music.model_config import CONFIGS
from emsync_bridge.music.data import describe_cache
from emsync_bridge.music.train import Corpus, WindowSampler, ship, train


def _rendition(tonic: int, minor: bool, bars: int, beat_s: float) -> list[int]:
    """Bars of held triads over a bass line, drums on the beats: a real if plain piece of music."""
    third = 3 if minor else 4
    notes, downbeats, beats = [], [], []
    for bar in range(bars):
        t0 = bar * 4 * beat_s
        downbeats.append(t0)
        root = tonic + (0, 5, 7, 0)[bar % 4]
        notes += [Note("piano", 60 + root + i, t0, t0 + 4 * beat_s) for i in (0, third, 7)]
        for beat in range(4):
            t = t0 + beat * beat_s
            beats.append(t)
            notes.append(Note("bass", 36 + root, t, t + 0.8 * beat_s))
            notes.append(Note("drums", 36 if beat % 2 == 0 else 38, t, t + 0.1))
    return score_to_tokens(Score(notes, downbeats, beats, bars * 4 * beat_s))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache")
    arrays, entries, offset = [], [], 0
    for i in range(8):
        minor = i % 2 == 1
        tokens = _rendition(tonic=i % 5, minor=minor, bars=24, beat_s=0.45 + 0.05 * (i % 3))
        entries.append({"offset": offset, "length": len(tokens), "split": "val" if i == 7 else "train",
                        "valence": -0.8 if minor else 0.8})
        arrays.append(np.asarray(tokens, dtype=np.uint16))
        offset += len(tokens)
    np.save(out / "tokens.npy", np.concatenate(arrays))
    (out / "index.json").write_text(json.dumps({"renditions": entries}))
    return out


def test_windows_fit_the_context_and_carry_their_labels(cache):
    corpus = Corpus.load(cache, "train")
    n = 200
    sampler = WindowSampler(corpus, n, np.random.default_rng(0))
    for _ in range(200):
        start, end, valence = sampler._pick()
        off, length, label = next(s for s in corpus.spans if s[0] <= start < s[0] + s[1])
        assert end - start == n and end <= off + length and valence == label
    x, y, b, v, a = sampler.batch(8)
    assert x.shape == (8, n) and (x[:, 0] >= vocab.LESS_INSTRUMENTS).all()
    assert torch.equal(x[:, 1:], y[:, :-1])  # next-token targets
    assert ((b >= 0) & (b <= 8)).all()
    finite = ~torch.isnan(a)
    assert ((a[finite] >= -1) & (a[finite] <= 1)).all()


def test_training_checkpoints_resumes_and_ships(cache, tmp_path):
    from emsync_bridge.models import load_torch_model

    run = tmp_path / "run"
    config = CONFIGS["emsync-small"]
    first = train(cache, run, config, minutes=0.05, batch_size=2, lr=2e-3, seed=0, threads=1)
    assert (run / "ckpt.pt").is_file() and (run / "best.pt").is_file()
    assert first["steps"] > 0 and np.isfinite(first["best_val_loss"])
    # a second call with a larger budget continues the same run instead of starting again
    second = train(cache, run, config, minutes=0.1, batch_size=2, lr=2e-3, seed=0, threads=1)
    assert second["steps"] > first["steps"]
    assert f"resumed at step {first['steps']}" in (run / "train.log").read_text()
    out = ship(run, tmp_path / "mine.safetensors")
    meta = json.loads(out.with_suffix(".json").read_text())["meta"]
    assert meta["trained"] and meta["steps"] == second["steps"]
    assert meta["data"].startswith("POP909") and "Groove" not in meta["data"]  # as the cache says: no grooves
    grooved = json.loads((cache / "index.json").read_text())
    grooved["groove"] = {"grooves_used": 274}
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "index.json").write_text(json.dumps(grooved))
    assert "274 Groove MIDI Dataset performances (CC-BY 4.0" in describe_cache(tmp_path / "g")
    model, files = load_torch_model(str(out))
    assert files.trained and model.num_parameters() == first["params"]


@pytest.mark.parametrize("args,needle", [
    (["--data", "NOTHING"], "no token cache"),
    (["--run", "NOTHING", "--ship", "OUT/x.safetensors"], "no finished checkpoint"),
])
def test_train_cli_bad_input_is_one_line(tmp_path, args, needle):
    args = [a.replace("NOTHING", str(tmp_path / "nothing")).replace("OUT", str(tmp_path)) for a in args]
    for cmd in (["-m", "emsync_bridge", "train"], ["-m", "emsync_bridge.music.train"]):
        proc = subprocess.run([sys.executable, *cmd, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        assert needle in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "x.safetensors").exists()
