"""The one place that decodes video and audio (PyAV).

Frames are scaled by libswscale straight from the decoder's YUV to a small BGR image (area
filter, one reused context): analysis never sees full-size frames, which is what keeps the whole
`analyze` command well above 20× real time. Timestamps come from each frame's PTS, so variable
frame rate works; display-matrix rotation is applied to the small frames; odd sizes are fine
because swscale does the scaling. Audio is decoded separately (mono, low rate) — it is cheap and
keeps the video loop simple.

Every way a file can be unusable ends in an `EmsyncError` with one line. Limits (stated in the
messages): each side 16..8192 px (8192 = DCI 8K), at least 2 decodable frames, and a wall-clock
timeout per file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from emsync_bridge.errors import EmsyncError

log = logging.getLogger(__name__)

MIN_SIDE = 16  # px; below this nothing about the picture is measurable
MAX_SIDE = 8192  # px; DCI 8K (8192×4320). Larger is almost surely a broken header or not a video
MIN_FRAMES = 2  # a single frame has no duration: that is a still image, not a video
ANALYSIS_PIXELS = 160 * 90  # analysis frames are scaled to about this many pixels (aspect kept)
AUDIO_RATE = 8000  # Hz; loudness and onset rate need nothing higher
GAP_S = 0.1  # a hole in the audio packets longer than this is filled with silence
# Container formats that are single still images (PyAV opens them as 1-frame "videos").
_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe", "gif_pipe"}


@dataclass
class VideoInfo:
    path: str
    width: int  # as displayed (after rotation)
    height: int
    fps: float  # average frame rate declared by the stream (measured value replaces it after decoding)
    duration: float  # declared by the container/stream; 0.0 when unknown
    has_audio: bool
    rotation: int  # degrees counter-clockwise applied for display (0, 90, 180, 270)
    codec: str
    duration_exact: bool = False  # the video stream itself declares its duration
    start_time: float = 0.0  # PTS (s) of the first decoded frame; analysis times are relative to it


def _fail(path: str | Path, what: str) -> EmsyncError:
    return EmsyncError(f"{Path(path).name}: {what}")


def _reason(exc: Exception) -> str:
    """FFmpeg's own short message ("Invalid data found when processing input"), without errno noise."""
    return (getattr(exc, "strerror", None) or str(exc)).splitlines()[0]


def _open(path: str | Path, timeout_s: float) -> av.container.InputContainer:
    """Open with the checks that do not need decoding; returns the container."""
    p = Path(path)
    if not p.exists():
        raise EmsyncError(f"no such file: {path}")
    if not p.is_file():
        # FIFOs and devices could block forever; directories are a plain mistake.
        raise _fail(path, "not a regular file")
    if p.stat().st_size == 0:
        raise _fail(path, "empty file (0 bytes)")
    try:
        # The timeout bounds every blocking read inside libav, not only network I/O.
        return av.open(str(p), mode="r", timeout=(timeout_s, timeout_s))
    except av.error.FFmpegError as exc:
        raise _fail(path, f"not a video file, or corrupt/truncated ({_reason(exc)})") from None
    except (OSError, ValueError) as exc:
        raise _fail(path, f"cannot open ({exc})") from None


def _video_stream(container, path) -> av.video.stream.VideoStream:
    streams = [
        s for s in container.streams.video
        # Cover art in music files is a video stream with the attached_pic disposition.
        if not (int(s.disposition) & int(av.stream.Disposition.attached_pic))
    ]
    if not streams:
        kind = "audio-only file" if container.streams.audio else "no video stream"
        raise _fail(path, f"{kind}: nothing to analyse (need a video stream)")
    return streams[0]


def _rotation_of(stream, first_frame=None) -> int:
    rot = 0
    if first_frame is not None:
        try:
            rot = int(round(first_frame.rotation or 0))
        except Exception:  # old PyAV or odd side data: treat as unrotated
            rot = 0
    return rot % 360


def probe(path: str | Path, timeout_s: float = 30.0) -> VideoInfo:
    """Open, validate and describe a video without decoding it all."""
    with _open(path, timeout_s) as c:
        return _describe(c, path)


def _describe(c, path, rotation: int = 0) -> VideoInfo:
    if c.format.name in _IMAGE_FORMATS:
        raise _fail(path, f"a still image ({c.format.name}), not a video")
    vs = _video_stream(c, path)
    cc = vs.codec_context
    w, h = int(cc.width or 0), int(cc.height or 0)
    if w == 0 or h == 0:
        raise _fail(path, "video stream has no picture size (corrupt header?)")
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise _fail(path, f"unsupported resolution {w}x{h} (each side must be {MIN_SIDE}..{MAX_SIDE} px)")
    if rotation in (90, 270):
        w, h = h, w
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    fps = float(rate) if rate else 0.0
    exact = vs.duration is not None and vs.time_base is not None
    if exact:
        duration = float(vs.duration * vs.time_base)
    elif c.duration is not None:
        duration = c.duration / 1e6  # container-wide: may include a longer audio track
    else:
        duration = 0.0
    has_audio = len(c.streams.audio) > 0
    return VideoInfo(str(path), w, h, fps, max(duration, 0.0), has_audio, rotation, cc.name or "?", exact)


def analysis_size(width: int, height: int, pixels: int = ANALYSIS_PIXELS) -> tuple[int, int]:
    """(w, h) with about `pixels` pixels and the same aspect; never upscales, never below 8 px."""
    scale = min(1.0, (pixels / (width * height)) ** 0.5)
    return max(8, int(round(width * scale))), max(8, int(round(height * scale)))


def decode_frames(
    path: str | Path,
    pixels: int = ANALYSIS_PIXELS,
    timeout_s: float | None = None,
    on_open: Callable[[VideoInfo], None] | None = None,
    on_grab: Callable[[float, np.ndarray], None] | None = None,
    grab_every_s: float = 0.5,
    grab_short_side: int = 160,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (t seconds from the first frame, small BGR uint8 frame) in presentation order.

    `on_open(info)` is called once, before the first frame, with the validated stream description
    (rotation applied). After the last frame, `info.duration` holds the decoded duration and
    `info.fps` the measured average rate. Raises EmsyncError for unusable input, for too few frames,
    for a file that stops well short of its declared length (truncated), and when decoding takes
    longer than `timeout_s` (default 60 s + 2 × declared duration).
    `on_grab(t, rgb)`, if given, also gets one larger RGB frame (shorter side `grab_short_side`,
    never upscaled, aspect kept) every `grab_every_s` seconds, before that frame is yielded: the
    learned estimator's input, scaled by swscale from the decoder's picture like the small frames.
    """
    from av.video.reformatter import Interpolation, VideoReformatter

    t_start = time.monotonic()
    c = _open(path, 10.0)
    try:
        vs = _video_stream(c, path)
        # Frame threading roughly halves decode time on 2 cores and keeps frame order.
        vs.thread_type = "AUTO"
        info: VideoInfo | None = None
        reformatter = VideoReformatter()  # reused: creating an sws context per frame costs 3×
        declared = 0.0
        deadline = None
        t0 = None
        last_t = -1.0
        n = 0
        errors = 0
        packets = 0
        size = (0, 0)
        k_rot = 0
        grab_size = (0, 0)
        next_grab = 0.0
        grabber = VideoReformatter()  # its own context: alternating sizes on one would rebuild it
        demux = c.demux(vs)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                # A demuxer error mid-file means the rest is unreadable: truncated or damaged.
                log.debug("demux error in %s: %s", path, exc)
                break
            packets += 1
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                errors += 1
                log.debug("decode error in %s: %s", path, exc)
                if errors > 20 and errors > 0.2 * packets:
                    raise _fail(path, f"corrupt video data (decoding failed repeatedly: {_reason(exc)})") from None
                continue
            for frame in frames:
                if info is None:
                    rot = _rotation_of(vs, frame)
                    info = _describe(c, path, rot)
                    declared = info.duration
                    k_rot = (rot // 90) % 4
                    w, h = analysis_size(frame.width, frame.height, pixels)
                    size = (w, h)
                    g = min(1.0, grab_short_side / max(1, min(frame.width, frame.height)))
                    grab_size = (max(8, int(round(frame.width * g))), max(8, int(round(frame.height * g))))
                    if timeout_s is None:
                        timeout_s = 60.0 + 2.0 * (declared or 300.0)
                    deadline = t_start + timeout_s
                    if on_open is not None:
                        on_open(info)
                t = frame.time
                if t is None:  # no PTS (rare raw streams): fall back to the nominal rate
                    t = n / (info.fps or 25.0)
                if t0 is None:
                    t0 = t
                t = float(t - t0)
                if t <= last_t:  # duplicate/out-of-order PTS: keep time strictly increasing
                    t = last_t + 1e-3
                last_t = t
                small = reformatter.reformat(
                    frame, size[0], size[1], "bgr24", interpolation=Interpolation.AREA
                ).to_ndarray()
                if k_rot:
                    small = np.ascontiguousarray(np.rot90(small, k_rot))
                if on_grab is not None and t + 1e-6 >= next_grab:
                    next_grab += grab_every_s * max(1, int((t - next_grab) / grab_every_s) + 1)
                    big = grabber.reformat(
                        frame, grab_size[0], grab_size[1], "rgb24", interpolation=Interpolation.AREA
                    ).to_ndarray()
                    on_grab(t, np.ascontiguousarray(np.rot90(big, k_rot)) if k_rot else big)
                n += 1
                yield t, small
            if deadline is not None and time.monotonic() > deadline:
                raise _fail(path, f"decoding timed out after {timeout_s:g} s (limit per file)")
        if info is None or n < MIN_FRAMES:
            if info is None:
                # Nothing decoded: either the header lies (truncated) or the stream is empty.
                _describe(c, path)  # raises the more specific error if there is one
            raise _fail(path, f"zero duration: {n} decodable video frame(s), need at least {MIN_FRAMES}")
        fps = (n - 1) / last_t if last_t > 0 else (info.fps or 25.0)
        if not info.fps or abs(info.fps - fps) > 0.05 * fps:
            info.fps = fps  # VFR or a missing/lying header: trust what was decoded
        duration = last_t + 1.0 / info.fps
        # Truncated files whose index is intact decode fine up to where the data stops.
        # Only a video-stream duration is trusted: a container's may cover a longer audio track.
        if info.duration_exact and declared > 0 and duration < 0.8 * declared and declared - duration > 1.0:
            raise _fail(path, f"truncated: only {duration:.1f} s of the declared {declared:.1f} s decode")
        info.duration = duration
        info.start_time = float(t0 or 0.0)
    finally:
        c.close()


@dataclass
class _AudioSink:
    """One consumer of `stream_audio`: its resampler, callback, rate and samples handed over so far."""

    resampler: av.AudioResampler
    on_chunk: Callable[[np.ndarray], None]
    rate: int
    given: int = 0

    def give(self, samples: np.ndarray) -> None:
        self.on_chunk(np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0))
        self.given += len(samples)


def stream_audio(
    path: str | Path, on_chunk: Callable[[np.ndarray], None], rate: int = AUDIO_RATE, timeout_s: float = 120.0,
    also: Sequence[tuple[int, Callable[[np.ndarray], None]]] = (), until: float | None = None,
) -> float | None:
    """Decode the first audio stream to mono float32 at `rate` Hz, handing each chunk to
    `on_chunk` as it comes (nothing is kept here); returns the PTS in s of the first sample, or
    None if there is no audio stream or nothing decoded. Each (rate, on_chunk) in `also` gets
    the same audio at its own rate from the same pass (one decode, one open file).

    The samples stay on the stream's clock: a gap in the packets (more than GAP_S between where
    the audio has got to and the next frame's time) is filled with silence, so later audio is not
    pulled earlier. NaN/inf samples become 0. Decoding stops at PTS `until` (e.g. the video's end).

    Audio problems never fail the analysis: a packet that does not decode is skipped (logged
    once), a broken container is logged and what decoded is used, a track that gives nothing is
    treated as absent.
    """
    t_start = time.monotonic()
    try:
        c = _open(path, 10.0)
    except EmsyncError:
        return None
    try:
        if not c.streams.audio:
            return None
        stream = c.streams.audio[0]
        sinks = [_AudioSink(av.AudioResampler(format="flt", layout="mono", rate=r), fn, r)
                 for r, fn in [(rate, on_chunk), *also]]
        t0 = None
        skipped = 0

        def feed(frame) -> None:
            for sink in sinks:
                if frame is not None and frame.time is not None:
                    gap = frame.time - (t0 + sink.given / sink.rate)
                    if gap > GAP_S:
                        sink.give(np.zeros(int(round(gap * sink.rate)), np.float32))
                for out in sink.resampler.resample(frame):
                    sink.give(out.to_ndarray().reshape(-1))

        try:
            for packet in c.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:  # one bad packet: skip it, keep the rest of the track
                    skipped += 1
                    continue
                for frame in frames:
                    if t0 is None:
                        t0 = float(frame.time) if frame.time is not None else 0.0
                    if until is not None and frame.time is not None and frame.time > until:
                        break
                    feed(frame)
                else:
                    if time.monotonic() - t_start <= timeout_s:
                        continue
                    log.warning("%s: audio decoding timed out; ignoring the rest", Path(path).name)
                break
            if t0 is not None:
                feed(None)  # flush the resamplers
        except av.error.FFmpegError as exc:
            log.warning("%s: audio decode error (%s); using what decoded", Path(path).name, exc)
        if skipped:
            log.warning("%s: %d audio packets did not decode; skipped", Path(path).name, skipped)
        return t0 if t0 is not None and any(sink.given for sink in sinks) else None
    finally:
        c.close()


def load_audio(
    path: str | Path, rate: int = AUDIO_RATE, timeout_s: float = 120.0
) -> tuple[np.ndarray, float] | None:
    """(mono float32 samples at `rate` Hz, PTS in s of the first sample) of the first audio
    stream, or None if there is none (`stream_audio`, collected: 32 KB per second at 8 kHz)."""
    chunks: list[np.ndarray] = []
    t0 = stream_audio(path, chunks.append, rate, timeout_s)
    if t0 is None or not chunks:
        return None
    return np.concatenate(chunks).astype(np.float32, copy=False), t0


def grab_frames(path: str | Path, times: list[float], pixels: int = 160 * 90) -> list[tuple[float, np.ndarray]]:
    """RGB frames nearest to `times` (sorted ascending), decoded in one sequential pass.

    Used by the report when an analysis came from the cache without thumbnails.
    """
    want = sorted(times)
    out: list[tuple[float, np.ndarray]] = []
    i = 0
    prev = None
    for t, bgr in decode_frames(path, pixels=pixels):
        while i < len(want) and t >= want[i]:
            pick = bgr if prev is None or abs(t - want[i]) <= abs(prev[0] - want[i]) else prev[1]
            out.append((want[i], pick[:, :, ::-1].copy()))
            i += 1
        if i >= len(want):
            break
        prev = (t, bgr)
    while i < len(want) and prev is not None:
        out.append((want[i], prev[1][:, :, ::-1].copy()))
        i += 1
    return out
