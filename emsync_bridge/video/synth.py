"""Synthetic test videos with known cuts, made with ffmpeg's lavfi sources.

Used by `bench_analyze` and the tests: ground truth is known by construction, nothing is
downloaded. Each segment is one lavfi source; segments are joined by hard cuts (concat) or by an
`xfade` crossfade, so cut times are exact multiples of the frame period.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from emsync_bridge.errors import EmsyncError


@dataclass
class Segment:
    source: str  # lavfi source graph producing frames, e.g. "testsrc2" or "color=c=red"
    duration: float  # seconds this segment occupies on the timeline (before any crossfade overlap)
    fade_in: float = 0.0  # crossfade from the previous segment over this many seconds (0 = hard cut)


def make_video(
    path: str | Path,
    segments: list[Segment],
    size: tuple[int, int] = (640, 360),
    fps: float = 25.0,
    audio: str | None = "sine=frequency=220",
    codec: str = "libx264",
    extra_args: list[str] | None = None,
) -> Path:
    """Encode `segments` into one file; returns the path.

    A segment with `fade_in > 0` overlaps the previous one by that long (ffmpeg `xfade`), so the
    transition occupies [t - fade_in, t] where t is the end of the previous segment. Audio (a lavfi
    audio source, or None for a silent file without an audio stream) spans the whole video.
    """
    if shutil.which("ffmpeg") is None:
        raise EmsyncError("ffmpeg not found on PATH (needed to make synthetic videos)")
    path = Path(path)
    w, h = size
    inputs: list[str] = []
    chains: list[str] = []
    for i, seg in enumerate(segments):
        # Each source gets its own size/rate so concat and xfade see identical formats.
        # Size/rate go on the source itself, i.e. the first element of a filter chain.
        head, comma, tail = seg.source.partition(",")
        if _takes_size(head):
            head += f"{':' if '=' in head else '='}size={w}x{h}:rate={fps}"
        inputs += ["-f", "lavfi", "-i", head + comma + tail]
        chains.append(
            f"[{i}:v]scale={w}:{h},fps={fps},format=yuv420p,setsar=1,"
            f"trim=duration={seg.duration:.6f},setpts=PTS-STARTPTS,settb=AVTB[s{i}]"
        )
    # Join left to right; track the running duration for xfade offsets.
    cur, total = "s0", segments[0].duration
    for i, seg in enumerate(segments[1:], start=1):
        out = f"j{i}"
        if seg.fade_in > 0:
            offset = total - seg.fade_in
            chains.append(
                f"[{cur}][s{i}]xfade=transition=fade:duration={seg.fade_in:.6f}:offset={offset:.6f},settb=AVTB[{out}]"
            )
            total = offset + seg.duration
        else:
            chains.append(f"[{cur}][s{i}]concat=n=2:v=1:a=0,settb=AVTB[{out}]")
            total += seg.duration
        cur = out
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs]
    maps = ["-map", f"[{cur}]"]
    if audio:
        cmd += ["-f", "lavfi", "-t", f"{total:.6f}", "-i", audio]
        maps += ["-map", f"{len(segments)}:a", "-c:a", "aac", "-b:a", "64k"]
    cmd += ["-filter_complex", ";".join(chains), *maps, "-c:v", codec]
    if codec == "libx264":
        cmd += ["-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    cmd += [*(extra_args or []), "-t", f"{total:.6f}", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise EmsyncError(f"ffmpeg failed making {path.name}: {res.stderr.strip()[-300:]!r}")
    return path


def _takes_size(src: str) -> bool:
    # Sources that accept size/rate options; anything else (e.g. a 'movie=' source) is passed as is.
    name = src.split("=", 1)[0]
    return name in {
        "testsrc", "testsrc2", "rgbtestsrc", "smptebars", "smptehdbars", "pal100bars", "pal75bars",
        "mandelbrot", "gradients", "color", "life", "cellauto", "yuvtestsrc", "allrgb", "allyuv",
    } and name not in {"allrgb", "allyuv"}


# The bench video: six sources, five hard cuts and one 1 s crossfade (cf. shared/docs/dependencies.md Q5).
BENCH_SEGMENTS = [
    Segment("testsrc2", 10.0),
    Segment("mandelbrot", 8.0),
    Segment("smptehdbars", 8.0),
    Segment("rgbtestsrc", 7.0),
    Segment("testsrc", 8.0),
    Segment("gradients=speed=0.02:seed=7", 10.0, fade_in=1.0),  # xfade over 40..41 (seeded: repeatable)
    Segment("pal100bars", 10.0),
]
BENCH_HARD_CUTS = [10.0, 18.0, 26.0, 33.0, 50.0]
BENCH_FADES = [(40.0, 41.0)]


def make_bench_video(path: str | Path, size: tuple[int, int] = (640, 360), fps: float = 25.0) -> Path:
    """60 s, 640×360, 25 fps H.264 + AAC; truth in BENCH_HARD_CUTS / BENCH_FADES."""
    return make_video(
        path,
        BENCH_SEGMENTS,
        size=size,
        fps=fps,
        audio="sine=frequency=220:beep_factor=4,volume=0.5",
    )
