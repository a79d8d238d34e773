"""Timeline report of a `VideoAnalysis` (matplotlib, Agg; no display needed).

`draw_timeline(analysis, fig, subplot_spec)` draws three rows sharing one time axis into any
figure area — frame thumbnails, dominant emotion per scene, valence/arousal curves — with cut
lines (dashed) and scene boundaries (solid) through all rows. The scoring report calls it on the
top of its own figure and adds a piano roll below, sharing the returned time axis:

    fig = plt.figure(figsize=(14, 9))
    gs = fig.add_gridspec(2, 1, height_ratios=[3, 2])
    axes = draw_timeline(analysis, fig, gs[0])
    roll = fig.add_subplot(gs[1], sharex=axes["curves"])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emsync_bridge.video.emotion import EMOTIONS
from emsync_bridge.video.schema import VideoAnalysis

# One colour per Ekman class (colour-blind-friendly-ish, and the obvious associations).
EMOTION_COLOURS = {
    "anger": "#d62728",
    "disgust": "#6b8e23",
    "fear": "#7b4ea3",
    "joy": "#f2b701",
    "sadness": "#1f77b4",
    "surprise": "#ff7f0e",
}
VALENCE_COLOUR = "#2a9d8f"
AROUSAL_COLOUR = "#e76f51"


def _thumbnails(analysis: VideoAnalysis, times: list[float]) -> list[np.ndarray | None]:
    """Frames nearest to `times`: from the analysis if it carries them, else decoded from the file."""
    thumbs = analysis.thumbnails
    if not thumbs and Path(analysis.video).is_file():
        try:
            from emsync_bridge.video.decode import grab_frames

            thumbs = grab_frames(analysis.video, times)
        except Exception:  # a report must not fail because a thumbnail could not be read
            thumbs = []
    if not thumbs:
        return [None] * len(times)
    ts = np.asarray([t for t, _ in thumbs])
    return [thumbs[int(np.argmin(np.abs(ts - t)))][1] for t in times]


def draw_timeline(analysis: VideoAnalysis, fig, subplot_spec=None) -> dict:
    """Draw the analysis timeline into `subplot_spec` of `fig` (whole figure if None).

    Returns {"thumbs": Axes, "emotion": Axes, "curves": Axes}; all share the x axis (seconds).
    """
    if subplot_spec is None:
        gs = fig.add_gridspec(3, 1, height_ratios=[1.2, 0.5, 1.8], hspace=0.08)
    else:
        gs = subplot_spec.subgridspec(3, 1, height_ratios=[1.2, 0.5, 1.8], hspace=0.08)
    ax_t = fig.add_subplot(gs[0])
    ax_e = fig.add_subplot(gs[1], sharex=ax_t)
    ax_c = fig.add_subplot(gs[2], sharex=ax_t)
    dur = max(analysis.duration, 1e-3)

    # Thumbnail strip: as many frames as fit at the video's aspect ratio.
    pos = ax_t.get_position()
    w_in, h_in = pos.width * fig.get_figwidth(), pos.height * fig.get_figheight()
    aspect = analysis.width / max(analysis.height, 1)
    n = int(max(3, min(40, round(w_in / max(h_in * aspect, 1e-3)))))
    slot = dur / n
    times = [(i + 0.5) * slot for i in range(n)]
    for i, img in enumerate(_thumbnails(analysis, times)):
        if img is not None:
            ax_t.imshow(img, extent=(i * slot, (i + 1) * slot, 0, 1), aspect="auto", interpolation="bilinear")
    ax_t.set_ylim(0, 1)
    ax_t.set_yticks([])
    ax_t.set_facecolor("#202020")
    name = Path(analysis.video).name
    ax_t.set_title(
        f"{name} — {analysis.duration:.1f} s, {analysis.width}×{analysis.height}, {analysis.fps:.2f} fps"
        f"{'' if analysis.has_audio else ', no audio'} — {len(analysis.cuts)} cuts, {len(analysis.scenes)} scenes"
        f" — overall valence {analysis.valence:+.2f}, arousal {analysis.arousal:+.2f}",
        fontsize=10, loc="left",
    )

    # Dominant emotion per scene; opacity follows confidence so weak guesses look weak.
    for s in analysis.scenes:
        dom = s.dominant
        alpha = 0.35 + 0.65 * min(1.0, s.confidence / 0.5)
        ax_e.axvspan(s.start, s.end, color=EMOTION_COLOURS[dom], alpha=alpha, lw=0)
        if (s.end - s.start) / dur > 0.045:
            ax_e.text((s.start + s.end) / 2, 0.5, f"{dom} {s.emotions[dom]:.0%}", ha="center", va="center",
                      fontsize=8, color="black", clip_on=True)
    ax_e.set_ylim(0, 1)
    ax_e.set_yticks([])
    ax_e.set_ylabel("emotion", rotation=0, ha="right", va="center", fontsize=8)

    # Valence and arousal as per-scene steps, with the confidence as a shaded band.
    edges = [s.start for s in analysis.scenes] + [analysis.scenes[-1].end] if analysis.scenes else [0, dur]
    for key, colour in (("valence", VALENCE_COLOUR), ("arousal", AROUSAL_COLOUR)):
        vals = [getattr(s, key) for s in analysis.scenes] or [0.0]
        ax_c.stairs(vals, edges, color=colour, lw=2, label=key, baseline=None)
        for s, v in zip(analysis.scenes, vals):
            half = 0.5 * (1.0 - s.confidence)
            ax_c.fill_between([s.start, s.end], v - half, v + half, color=colour, alpha=0.08, lw=0)
    ax_c.axhline(0, color="0.6", lw=0.8)
    ax_c.set_ylim(-1.05, 1.05)
    ax_c.set_ylabel("V / A")
    ax_c.set_xlabel("time (s)")
    ax_c.legend(loc="upper right", fontsize=8, ncols=2, frameon=False)
    ax_c.set_xlim(0, dur)

    for ax in (ax_t, ax_e, ax_c):
        for c in analysis.cuts:
            ax.axvline(c, color="white" if ax is ax_t else "0.35", lw=0.8, ls="--", alpha=0.9)
        for b in analysis.boundaries:
            ax.axvline(b, color="black" if ax is not ax_t else "#ffd166", lw=1.6)
    for ax in (ax_t, ax_e):
        ax.tick_params(labelbottom=False)
    return {"thumbs": ax_t, "emotion": ax_e, "curves": ax_c}


def emotion_legend(ax) -> None:
    """Colour key of the emotion row (for reports that want it)."""
    from matplotlib.patches import Patch

    previous = ax.get_legend()
    if previous is not None:  # keep the valence/arousal key too
        ax.add_artist(previous)
    ax.legend(handles=[Patch(color=EMOTION_COLOURS[e], label=e) for e in EMOTIONS], loc="lower right",
              ncols=6, fontsize=7, frameon=False)


def save_report_png(analysis: VideoAnalysis, path: str | Path, dpi: int = 110) -> Path:
    """Write the timeline report to `path` (PNG)."""
    # A bare Figure renders with Agg and never touches pyplot's global backend (safe inside a UI).
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 5.5), layout=None)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.92, bottom=0.1)
    axes = draw_timeline(analysis, fig)
    emotion_legend(axes["curves"])
    from emsync_bridge.atomic import write_atomic

    return write_atomic(path, writer=lambda fh: fig.savefig(fh, format="png", dpi=dpi))
