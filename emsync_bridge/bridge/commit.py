"""Commit mode output: MIDI files in the spool on the project's beat grid, then the manifest.

Files are written on the project's tempo map (tempo and meter events from the file's start), so a
note's tick position is its beat in the project and REAPER places it right whether or not it
honours the file's tempo. A tempo change therefore moves the beat-grid output; with `quantize`
note starts also snap to the new grid. Every file is written to a temp name and renamed, and the
manifest is written last (timeline.spool.write_manifest), so the importer never sees half a result.
"""

from __future__ import annotations

import os
from pathlib import Path

import mido

from emsync_bridge.atomic import write_atomic

from emsync_bridge.bridge.events import NoteEvent
from emsync_bridge.music.midi import CHANNELS, PROGRAMS
from emsync_bridge.music.vocab import INSTRUMENTS
from emsync_bridge.timeline import protocol
from emsync_bridge.timeline.spool import (
    Manifest,
    ManifestItem,
    prune_generations,
    spool_path,
    utc_now_iso,
    write_manifest,
)
from emsync_bridge.tempo import TempoMap

TICKS_PER_QN = 960
RAMP_STEP_QN = 0.25  # gradual tempo changes are written as steps this far apart


def quantize_events(events: list[NoteEvent], tempo: TempoMap, grid_qn: float) -> list[NoteEvent]:
    """Snap note starts to the nearest `grid_qn` of the tempo map; ends move with their start
    (keeping each note at least one grid step long is not needed: the length is kept)."""
    out = []
    opened: dict[tuple[str, int], float] = {}
    for ev in events:
        if not isinstance(ev, NoteEvent):
            out.append(ev)  # a Cut stays where it is
            continue
        if ev.on:
            q = round(tempo.time_to_qn(ev.time) / grid_qn) * grid_qn
            t = tempo.qn_to_time(q)
            opened[(ev.instrument, ev.pitch)] = t - ev.time
            out.append(NoteEvent(t, True, ev.instrument, ev.pitch, ev.velocity))
        else:
            shift = opened.pop((ev.instrument, ev.pitch), 0.0)
            out.append(NoteEvent(ev.time + shift, False, ev.instrument, ev.pitch))
    out.sort(key=lambda e: (e.time, (2 if e.on else 0) if isinstance(e, NoteEvent) else 1))
    return out


def notes_from_events(events) -> list[tuple[str, int, float, float, int]]:
    """(instrument, pitch, start, end, velocity) for each closed note."""
    opened: dict[tuple[str, int], tuple[float, int]] = {}
    notes = []
    for ev in events:
        if not isinstance(ev, NoteEvent):  # a Cut: regeneration ends every held note there
            for (inst, pitch), (s, v) in opened.items():
                if ev.time > s:
                    notes.append((inst, pitch, s, ev.time, v))
            opened.clear()
            continue
        key = (ev.instrument, ev.pitch)
        if ev.on:
            if key in opened:
                s, v = opened.pop(key)
                notes.append((key[0], key[1], s, ev.time, v))
            opened[key] = (ev.time, ev.velocity)
        elif key in opened:
            s, v = opened.pop(key)
            notes.append((key[0], key[1], s, ev.time, v))
    return notes


def _set_tempo(bpm: float) -> mido.MetaMessage:
    """A set_tempo event; below ~3.58 BPM (REAPER allows 1) the microseconds per quarter note do
    not fit the event's 24 bits, so it is clamped: notes are placed by tick (the project's beats)
    either way, the file's tempo is only a hint."""
    return mido.MetaMessage("set_tempo", tempo=min(0xFFFFFF, max(1, mido.bpm2tempo(bpm))))


def _conductor(tempo: TempoMap, start: float, end: float) -> mido.MidiTrack:
    """Tempo and time-signature events of the map between `start` and `end`, ticks from `start`."""
    q0 = tempo.time_to_qn(start)
    changes: list[tuple[int, int, mido.MetaMessage]] = []
    sig = None
    pts = list(tempo.points)
    for i, p in enumerate(pts):
        nxt = pts[i + 1].time if i + 1 < len(pts) else float("inf")
        t0, t1 = max(p.time, start), min(nxt, end)
        if t1 <= t0 and not (i == 0 and t0 == start):
            continue  # this tempo segment is outside the file
        tick = round((tempo.time_to_qn(t0) - q0) * TICKS_PER_QN)
        if (p.num, p.denom) != sig:
            sig = (p.num, p.denom)
            changes.append((tick, 0, mido.MetaMessage("time_signature", numerator=p.num, denominator=p.denom)))
        if p.linear and t1 > t0:
            q, q_end = tempo.time_to_qn(t0), tempo.time_to_qn(t1)
            while q < q_end - 1e-9:
                bpm = tempo.bpm_at(tempo.qn_to_time(min(q + RAMP_STEP_QN / 2, q_end)))
                changes.append((round((q - q0) * TICKS_PER_QN), 1, _set_tempo(bpm)))
                q += RAMP_STEP_QN
        else:
            changes.append((tick, 1, _set_tempo(tempo.bpm_at(t0))))
    changes.sort(key=lambda c: (c[0], c[1]))
    track = mido.MidiTrack()
    now = 0
    for tick, _, msg in changes:
        track.append(msg.copy(time=max(0, tick - now)))
        now = max(now, tick)
    end_tick = round((tempo.time_to_qn(end) - q0) * TICKS_PER_QN)
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track


def midi_file(notes, tempo: TempoMap, start: float, end: float, instruments) -> mido.MidiFile:
    """SMF type 1: conductor (tempo map), then one named track per instrument (drums on ch. 10)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QN)
    mid.tracks.append(_conductor(tempo, start, end))
    q0 = tempo.time_to_qn(start)

    def tick(t: float) -> int:
        return round((tempo.time_to_qn(t) - q0) * TICKS_PER_QN)

    for inst in instruments:
        ch = CHANNELS[inst]
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=protocol.track_name(inst), time=0))
        track.append(mido.Message("program_change", channel=ch, program=PROGRAMS[inst], time=0))
        msgs = []
        for n_inst, pitch, s, e, vel in notes:
            if n_inst != inst or e <= start or s >= end:
                continue
            on = tick(max(s, start))
            off = max(on + 1, tick(min(e, end)))
            msgs.append((off, 0, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
            msgs.append((on, 1, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
        msgs.sort(key=lambda m: (m[0], m[1]))
        now = 0
        for t, _, msg in msgs:
            track.append(msg.copy(time=t - now))
            now = t
        track.append(mido.MetaMessage("end_of_track", time=max(0, tick(end) - now)))
        mid.tracks.append(track)
    return mid


def save_atomic(mid: mido.MidiFile, path: Path) -> Path:
    return write_atomic(path, writer=lambda fh: mid.save(file=fh))



def remove_stale_temp_files(spool: Path) -> list[str]:
    """Delete the temp files a killed daemon left behind: `.<name>.<random>.tmp` in out/, in the
    generation folders under it (`save_atomic`, `write_manifest`) and `.status.json.*.tmp`.

    Only the daemon writes there, so at its start-up any such file is garbage (the importer never
    reads them: it acts on out/manifest.json alone). Symlinks are never followed. Returns the
    removed paths, relative to the spool."""
    spool = Path(spool)
    out = spool / protocol.OUT_DIR
    folders = [out]
    try:
        folders += [Path(e.path) for e in os.scandir(out) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    removed = []
    for folder, pattern in [(f, ".*.tmp") for f in folders] + [(spool, f".{protocol.STATUS_FILE}.*.tmp")]:
        for p in folder.glob(pattern):
            if p.is_symlink() or p.is_file():
                try:
                    p.unlink()
                    removed.append(str(p.relative_to(spool)))
                except OSError:
                    pass
    return removed


def commit(spool: Path, generation_id: str, events, tempo: TempoMap, start: float, end: float, *,
           replace_from: float | None, project_id: str = "", project_written_at: str = "",
           layout: str = "per-instrument", instruments=INSTRUMENTS, keep: int = 3) -> Manifest:
    """Write out/<generation_id>/*.mid for [start, end) and then out/manifest.json.

    `replace_from`: None replaces every earlier EmSync item; a time replaces from there (the
    importer trims items crossing it), so music before a regenerated boundary stays as it was.
    Older generation folders beyond the newest `keep` are removed afterwards (never the manifest's).
    """
    notes = notes_from_events(events)
    used = [i for i in instruments if any(n[0] == i and n[3] > start and n[2] < end for n in notes)]
    items = []
    rel_dir = f"{protocol.OUT_DIR}/{generation_id}"
    if layout == "type1":
        rel = f"{rel_dir}/ensemble.mid"
        save_atomic(midi_file(notes, tempo, start, end, used or instruments), spool_path(spool, rel))
        items.append(ManifestItem("ensemble", rel, protocol.track_name("ensemble"), start, end - start))
    else:
        for inst in used:
            rel = f"{rel_dir}/{inst}.mid"
            save_atomic(midi_file(notes, tempo, start, end, [inst]), spool_path(spool, rel))
            items.append(ManifestItem(inst, rel, protocol.track_name(inst), start, end - start,
                                      program=PROGRAMS[inst], channel=CHANNELS[inst]))
    manifest = Manifest(generation_id, tuple(items), replace_from=replace_from, written_at=utc_now_iso(),
                        project_written_at=project_written_at, project_id=project_id)
    write_manifest(spool, manifest)
    prune_generations(spool, keep=keep)
    return manifest
