"""Does the sound channel hear major vs minor? POP909 songs rendered to audio, against their key labels.

    python benchmarks/audio_mode_pop909.py [--pop909 ../shared/data/pop909] [--songs 80] [--json OUT]

Renders every other song of POP909 (MIT; 001, 003, ...) with FluidSynth and the General MIDI
soundfont the project uses (first 60 s, 16 kHz mono), runs `sounds.SoundSampler` on it — the same
code the learned estimator runs on a film's audio: YAMNet's "Music" score and chroma per patch —
and compares the sign of the mode score with POP909's audio key label (`key_audio.txt`; the key
covering most of the first 60 s, songs whose key covers < 40 s of it skipped). Reports accuracy,
the majority-class rate and the mean |d| that sets `sounds.MODE_SCALE`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from emsync_bridge.score import find_soundfont
from emsync_bridge.video import decode, sounds
from emsync_bridge.music.metrics import key_correlations

DEFAULT_POP909 = Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909"


def label(song: Path, span: float = 60.0) -> str | None:
    cover: dict[str, float] = {}
    for line in (song / "key_audio.txt").read_text().splitlines():
        if line.strip():
            a, b, key = line.split()
            cover[key] = cover.get(key, 0.0) + max(0.0, min(span, float(b)) - max(0.0, float(a)))
    key = max(cover, key=cover.get)
    return None if cover[key] < 40.0 else ("major" if key.endswith("maj") else "minor")


def render(mid: Path, out: Path, seconds: float = 60.0) -> None:
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["fluidsynth", "-ni", "-q", "-F", str(raw), "-r", "16000", "-g", "0.6", str(find_soundfont()),
                    str(mid)], check=True, capture_output=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-t", str(seconds), "-ac", "1", "-ar", "16000",
                    str(out)], check=True)
    raw.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pop909", type=Path, default=DEFAULT_POP909)
    ap.add_argument("--songs", type=int, default=80)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    root = args.pop909 / "POP909"
    if not root.is_dir():
        print(f"POP909 not found at {root}; pass --pop909 DIR", file=sys.stderr)
        return 2
    if not (shutil.which("fluidsynth") and shutil.which("ffmpeg")):
        print("needs fluidsynth and ffmpeg (scripts/install_system_deps.sh)", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.songs):
            song = root / f"{2 * k + 1:03d}"
            lab = label(song)
            if lab is None:
                continue
            wav = Path(tmp) / f"{song.name}.wav"
            render(song / f"{song.name}.mid", wav)
            sampler = sounds.SoundSampler()
            decode.stream_audio(wav, sampler.push, rate=sounds.RATE)
            arr = sampler.arrays()
            m, mu = sounds.mode_valence(arr["chroma"], arr["music"])
            r = key_correlations(arr["chroma"].T.astype(np.float64) @ arr["music"] / max(arr["music"].sum(), 1e-9))
            rows.append({"song": song.name, "label": lab, "mode_valence": round(m, 4), "music": round(mu, 4),
                         "d": round(float(r[:12].max() - r[12:].max()), 4)})
            print(f"{song.name} {lab:5s} d {rows[-1]['d']:+.3f} M {m:+.2f} music {mu:.2f}")
    right = sum((r["d"] > 0) == (r["label"] == "major") for r in rows)
    minor = sum(r["label"] == "minor" for r in rows)
    summary = {"songs": len(rows), "mode_right": right, "accuracy": round(right / max(1, len(rows)), 4),
               "majority": round(max(minor, len(rows) - minor) / max(1, len(rows)), 4),
               "mean_abs_d": round(float(np.mean([abs(r["d"]) for r in rows])), 4),
               "mean_music": round(float(np.mean([r["music"] for r in rows])), 4)}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "songs": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
