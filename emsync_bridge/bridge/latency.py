"""Where live regeneration's latency goes, trial by trial, and the lead sized from it.

A marker moved while the project plays is answered by the first regenerated note. Its way through
the daemon, each step a `perf_counter()` wall time on the `RegenTrace`:

    trigger      the first OSC message of the change reached the OSC thread
    replan       the control loop re-planned (after the debounce that gathers a marker bank)
    submit       the job was queued
    job_start    the generation worker started it (a running job is cancelled at its next token)
    first_token  the model sampled the first new token
    first_note   the first regenerated note-on was in the `LiveScore` (the scheduler woken)
    sent         the scheduler sent it (when the play head reached its time, or at once if due)

`stages()` splits `sent - trigger` into those steps; they add up to it exactly. The `Lead` is how
far ahead of the play head the splice is placed when the job starts: it only has to cover
job_start -> first_note (the model's time to the first note), so it is sized from that, measured on
recent jobs, not from a fixed bound.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

STAGES = ("debounce", "plan", "queue", "first_token", "first_note", "play_head")


@dataclass
class RegenTrace:
    """One regeneration's timestamps (wall seconds, `perf_counter`) and where it spliced."""

    reason: str
    trigger: float  # first OSC message / request of the change arrived
    replan: float  # the change was planned (== trigger when no debounce applied)
    submit: float  # job queued
    head_at_submit: float | None = None  # play head (project s) at submit
    job_start: float | None = None
    head_at_start: float | None = None  # play head (project s) when the job started
    lead: float | None = None  # the lead applied at job start (s)
    splice: float | None = None  # project s where the old score was replaced
    first_token: float | None = None
    first_note: float | None = None  # the first regenerated note-on appended to the score
    sent: float | None = None  # the scheduler sent that note
    note_time: float | None = None  # its project time
    head_at_send: float | None = None  # the scheduler's play head estimate when it sent it

    @property
    def complete(self) -> bool:
        return None not in (self.job_start, self.first_token, self.first_note, self.sent)

    @property
    def latency(self) -> float | None:
        return None if self.sent is None else self.sent - self.trigger

    @property
    def late_by(self) -> float | None:
        """How far the play head was past the note's time when it was sent (<= 0: on time)."""
        if self.head_at_send is None or self.note_time is None:
            return None
        return self.head_at_send - self.note_time

    def stages(self) -> dict[str, float]:
        """Seconds spent in each step (`STAGES` order); they sum to `latency` exactly.
        `play_head` is the wait for the play head to reach the note (the lead's share) plus the
        scheduler's wake-up."""
        if not self.complete:
            raise ValueError("the trace is not complete (no note sent yet)")
        points = (self.trigger, self.replan, self.submit, self.job_start, self.first_token, self.first_note,
                  self.sent)
        return {name: b - a for name, a, b in zip(STAGES, points, points[1:])}

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["latency_s"] = self.latency
        if self.complete:
            d["stages_s"] = self.stages()
        return d


class Lead:
    """How far ahead of the play head a live splice starts: `factor` x the p90 of recent jobs'
    job_start -> first note time + `margin`, within [`low`, `high`]. Until `min_samples` jobs
    were measured: `initial`. A note sampled after its time is sent at once (a few ms late),
    never skipped, so the bound need not be conservative."""

    def __init__(self, fixed: float | None = None, *, factor: float = 1.5, margin: float = 0.01,
                 low: float = 0.03, high: float = 0.25, initial: float = 0.06, window: int = 20,
                 min_samples: int = 3):
        self.fixed = fixed
        self.factor, self.margin, self.low, self.high, self.initial = factor, margin, low, high, initial
        self.min_samples = min_samples
        self.samples: collections.deque[float] = collections.deque(maxlen=window)

    def record(self, seconds: float) -> None:
        self.samples.append(max(0.0, seconds))

    def __call__(self) -> float:
        if self.fixed is not None:
            return self.fixed
        if len(self.samples) < self.min_samples:
            return self.initial
        ready = sorted(self.samples)
        p90 = ready[min(len(ready) - 1, int(0.9 * len(ready)))]
        return min(self.high, max(self.low, self.factor * p90 + self.margin))
