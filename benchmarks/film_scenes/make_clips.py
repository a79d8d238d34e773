"""Rebuild the film-scene clips from their recorded sources (see scenes.json, PROTOCOL.md).

    python benchmarks/film_scenes/make_clips.py --src DIR [--fetch] [--out DIR]

`--src DIR` holds one file per source, named `<source key><ext>` (e.g. `sintel_trailer.mp4`);
each is checked against the sha256 in scenes.json. `--fetch` first downloads the missing ones
from GitHub at the recorded commit (needs git and network). Each scene becomes
`<out>/<scene id>.mp4`: the exact [start, end] span re-encoded at 180 px height (H.264 CRF 28,
AAC 48 kb/s mono), which keeps all clips together a few MB. `--out` defaults to the committed
`clips/` folder next to this script.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from emsync_bridge.runtime.onnx_cache import sha256_file

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "scenes.json"


def load_manifest(path: Path = MANIFEST) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source_file(src_dir: Path, key: str, info: dict) -> Path:
    return src_dir / (key + Path(info["path"]).suffix)


def fetch(src_dir: Path, key: str, info: dict) -> None:
    """git-fetch one blob of a public GitHub repository at the recorded commit."""
    with tempfile.TemporaryDirectory() as tmp:
        git = ["git", "-C", tmp]
        subprocess.run(git + ["init", "-q"], check=True)
        subprocess.run(git + ["fetch", "-q", "--depth", "1", f"https://github.com/{info['repo']}.git",
                              info["commit"]], check=True)
        blob = subprocess.run(git + ["show", f"FETCH_HEAD:{info['path']}"], check=True,
                              capture_output=True).stdout
    source_file(src_dir, key, info).write_bytes(blob)


def cut(src: Path, start: float, end: float, out: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-ss", f"{start:.3f}", "-to", f"{end:.3f}",
         "-map", "0:v:0", "-map", "0:a:0?", "-vf", "scale=-2:180", "-c:v", "libx264", "-preset", "medium",
         "-crf", "28", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "48k", "-ac", "1",
         "-map_metadata", "-1", "-movflags", "+faststart", str(out)],
        check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, required=True, help="folder with the source files")
    ap.add_argument("--fetch", action="store_true", help="download missing sources from GitHub first")
    ap.add_argument("--out", type=Path, default=HERE / "clips")
    args = ap.parse_args(argv)
    man = load_manifest()
    args.src.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for key, info in man["sources"].items():
        path = source_file(args.src, key, info)
        if not path.exists() and args.fetch:
            fetch(args.src, key, info)
        if not path.exists():
            sys.exit(f"make_clips: missing source {path} (use --fetch, or see PROTOCOL.md)")
        if sha256_file(path) != info["sha256"]:
            sys.exit(f"make_clips: {path} is not the recorded file (sha256 differs)")
    for scene in man["scenes"]:
        info = man["sources"][scene["source"]]
        cut(source_file(args.src, scene["source"], info), scene["start"], scene["end"],
            args.out / f"{scene['id']}.mp4")
    total = sum(p.stat().st_size for p in args.out.glob("*.mp4"))
    print(f"{len(man['scenes'])} clips in {args.out}, {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (subprocess.CalledProcessError, OSError) as e:
        sys.exit(f"make_clips: {e}")
