"""The real daemon against a REAPER simulator over UDP on 127.0.0.1 (ports chosen free), with the
default model from `load_engine()` (untrained is fine: these test the protocol, not the music).
Generated durations are kept short; every wait is a bounded poll; nothing asserts on speed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mido
import pytest

from emsync_bridge.atomic import write_json_atomic
from emsync_bridge.bridge.commit import notes_from_events
from emsync_bridge.bench.live import splice_check
from emsync_bridge.bridge.daemon import Bridge, BridgeConfig
from emsync_bridge.bridge.latency import STAGES
from emsync_bridge.bridge.osc import BridgeClient
from emsync_bridge.bridge.scheduler import Cut
from emsync_bridge.bench.simulator import ReaperSim, SimMarker
from emsync_bridge.bridge.sinks import RecordingSink, sounding_after
from emsync_bridge.timeline import protocol
from emsync_bridge.timeline.spool import load_manifest

WAIT_S = 90.0


@pytest.fixture(scope="module")
def engine():
    from emsync_bridge.runtime import load_engine

    return load_engine()


def wait_for(pred, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def manifest_id(spool: Path):
    try:
        return load_manifest(spool).generation_id
    except Exception:
        return None


@pytest.fixture
def rig(engine, tmp_path):
    """(make, sims): make(mode=..., **cfg) -> (bridge, sim) with project.json already written."""
    made = []

    def make(mode="commit", markers=((1, "", 2.0), (2, "joy", 5.0)), duration=8.0, sink=None, tempo_map=None, **cfg):
        spool = tmp_path / f"spool{len(made)}"
        spool.mkdir()
        sim = ReaperSim(0, markers=[SimMarker(*m) for m in markers])
        sim.write_project(spool, duration_hint=duration, tempo_map=tempo_map)
        config = BridgeConfig(osc_port=0, reaper_port=sim.port, spool=spool, mode=mode, analyze_video=False,
                              policy="markers", **cfg)
        bridge = Bridge(config, engine=engine[0], model_files=engine[1], sink=sink)
        bridge.start()
        sim.daemon_port = bridge.osc.port
        made.append((bridge, sim))
        return bridge, sim

    yield make
    for bridge, sim in made:
        bridge.close()
        sim.close()


def test_commit_mode_writes_midi_and_manifest_and_marker_moves_regenerate(rig):
    bridge, sim = rig()
    spool = bridge.spool
    first = wait_for(lambda: manifest_id(spool), "the first manifest")
    m = load_manifest(spool)
    assert m.replace_from is None and m.project_id == "simproject01"
    assert len({i.instrument for i in m.items}) == len(m.items) >= 1
    for it in m.items:
        assert (spool / it.file).is_file() and it.track == protocol.track_name(it.instrument)
        assert it.position == 0.0 and it.length == pytest.approx(8.0)
        mido.MidiFile(spool / it.file)  # a complete, parseable file
    assert not list(spool.glob("out/**/.*.tmp"))
    assert bridge.plan.boundaries == (2.0, 5.0)
    # On start REAPER's surface is asked for its marker/region banks by bank size (0, then the
    # real size: csurf_osc.cpp resends every slot to this surface alone), never by an action.
    wait_for(lambda: [p for _, a, p in sim.received if a == "/device/region/count"] == [[0], [protocol.MARKER_BANK_SIZE]],
             "the bank refresh")
    assert [p for _, a, p in sim.received if a == "/device/marker/count"] == [[0], [protocol.MARKER_BANK_SIZE]]
    assert "/action" not in sim.addresses_received()

    wait_for(lambda: bridge.generation.get("complete"), "generation complete")
    before = [e for e in bridge.score.events if e.time < 2.0 - 1e-9]
    sim.move_marker(2, 6.5)  # REAPER's marker feedback: the whole bank again
    second = wait_for(lambda: (g := manifest_id(spool)) != first and g, "the regenerated manifest")
    assert bridge.plan.boundaries == (2.0, 6.5), "boundaries follow the moved marker"
    m2 = load_manifest(spool)
    assert m2.generation_id == second
    assert m2.replace_from == pytest.approx(2.0), "regenerated from the boundary before the change"
    assert all(it.position == pytest.approx(2.0) for it in m2.items)
    assert len({i.instrument for i in m2.items}) == len(m2.items), "one file per instrument, no duplicates"
    wait_for(lambda: bridge.generation.get("complete"), "regeneration complete")
    after = [e for e in bridge.score.events if e.time < 2.0 - 1e-9]
    assert after == before, "music before the boundary is unchanged"
    assert any(isinstance(e, Cut) and e.time == pytest.approx(2.0) for e in bridge.score.events)
    # The emotion marker moved too: the plan's emotion now changes at 6.5.
    assert [round(e[0], 3) for e in bridge.plan.emotions] == [0.0, 6.5]


def test_tempo_change_moves_beat_grid_output(rig):
    bridge, sim = rig(quantize_qn=0.25)
    spool = bridge.spool
    first = wait_for(lambda: manifest_id(spool), "the first manifest")

    def onsets(gen):
        out = []
        for it in load_manifest(spool).items:
            mid = mido.MidiFile(spool / it.file)
            tempi = [mido.tempo2bpm(m.tempo) for m in mid.tracks[0] if m.type == "set_tempo"]
            tick = 0
            for msg in mid.tracks[1]:
                tick += msg.time
                if msg.type == "note_on":
                    out.append(tick)
        return tempi, out

    tempi, ticks = onsets(first)
    assert [round(t) for t in tempi] == [120]
    assert ticks and all(t % 240 == 0 for t in ticks), "on the 16th grid"
    sim.set_tempo(90.0)
    second = wait_for(lambda: (g := manifest_id(spool)) != first and g, "the manifest after the tempo change")
    assert load_manifest(spool).replace_from is None  # the only tempo point changed: everything
    tempi, ticks = onsets(second)
    assert [round(t) for t in tempi] == [90]
    assert ticks and all(t % 240 == 0 for t in ticks)
    # In seconds, the onsets now sit on the 90 BPM grid (1/6 s), as REAPER will place them.
    starts = sorted({round(n[2], 6) for n in notes_from_events(bridge.score.events)})
    from emsync_bridge.bridge.commit import quantize_events

    q = quantize_events(list(bridge.score.events), bridge.tempo_map(), 0.25)
    assert all(abs((e.time * 6) - round(e.time * 6)) < 1e-6 for e in q if getattr(e, "on", False))
    assert starts  # the score is not empty


def test_music_is_generated_on_a_ramped_tempo_map(rig):
    """No quantizing: the daemon generates on the project's grid, a ramp 80 -> 140 BPM then 3/4,
    so every pitched onset sits on a 16th of that map (within half an 8 ms tick; the drums carry
    the human feel, test_bridge_feel.py) and the cuts' chords on the grid points nearest to them;
    a regeneration from a marker keeps to the same grid."""
    from emsync_bridge.tempo import TempoPoint
    from emsync_bridge.tempo import TempoMap

    ramp = [{"time": 0.0, "bpm": 80.0, "num": 4, "denom": 4, "linear": True},
            {"time": 4.0, "bpm": 140.0, "num": 3, "denom": 4, "linear": False}]
    tmap = TempoMap([TempoPoint(p["time"], p["bpm"], p["num"], p["denom"], p["linear"]) for p in ramp])

    def off_grid(t):
        q = tmap.time_to_qn(t) * 4
        return abs(tmap.qn_to_time(round(q) / 4) - t)

    bridge, sim = rig(tempo_map=ramp, markers=((1, "", 2.3), (2, "", 5.1)))
    spool = bridge.spool
    first = wait_for(lambda: manifest_id(spool), "the first manifest")
    wait_for(lambda: bridge.generation.get("complete"), "generation complete")
    starts = [n[2] for n in notes_from_events(bridge.score.events) if n[0] != "drums"]
    assert len(starts) > 10 and max(off_grid(t) for t in starts) <= 0.004 + 1e-6
    assert bridge.generation["hits"] == 2
    fit = bridge.status()["plan"]["fitted_tempo"]  # what "EmSync: Apply fitted tempo" writes
    assert fit["mode"] == "auto" and [c["cut"] for c in fit["cuts"]] == [2.3, 5.1]
    assert fit["tempo_map"][0]["time"] == 0.0 and fit["range_bpm"][0] <= fit["bpm"] <= fit["range_bpm"][1]
    sim.move_marker(2, 6.05)
    wait_for(lambda: (g := manifest_id(spool)) != first and g, "the regenerated manifest")
    wait_for(lambda: bridge.generation.get("complete"), "regeneration complete")
    starts = [n[2] for n in notes_from_events(bridge.score.events) if n[2] >= 2.3 and n[0] != "drums"]
    assert starts and max(off_grid(t) for t in starts) <= 0.004 + 1e-6


def test_spool_request_and_malformed_osc_and_status(rig):
    bridge, sim = rig(markers=((1, "", 3.0),), duration=5.0)
    spool = bridge.spool
    first = wait_for(lambda: manifest_id(spool), "the first manifest")
    garbage = [b"", b"\xff" * 40, b"/time\x00\x00\x00,f\x00\x00\x00", b"/play\x00\x00\x00,s\x00\x00x",
               b"/marker/1/time\x00\x00,f\x00\x00\x7f\xc0\x00\x00", b"#bundle\x00" + b"\x00" * 12]
    for g in garbage:
        sim.send_raw(g)
    sim.send("/emsync/emotion", 5.0, 0.0)  # out of range: rejected by the handler, counted as an error
    sim.send("/no/such/address", 1)
    with BridgeClient(port=bridge.osc.port, timeout=5.0) as client:
        st = client.status()
        assert st["state"] in ("running", "generating") and st["mode"] == "commit"
        assert st["osc"]["unknown"] >= 1 and st["osc"]["rejected"] >= 1
        # A request the Lua "Regenerate from marker" action writes.
        write_json_atomic(spool / "requests" / "00000001-regenerate.json",
                          {"version": 1, "kind": "emsync.request", "type": "regenerate", "id": "00000001",
                           "written_at": "2026-11-27T07:00:00Z", "time": 3.0, "marker_index": 1})
        second = wait_for(lambda: (g := manifest_id(spool)) != first and g, "the requested regeneration")
        assert load_manifest(spool).replace_from == pytest.approx(3.0)
        assert second
        assert client.status()["osc"]["received"] >= 2
    status = json.loads((spool / protocol.STATUS_FILE).read_text())
    assert status["kind"] == "emsync.status" and status["project"]["loaded"]


def test_live_mode_plays_notes_at_project_times_follows_markers_and_panics(rig):
    sink = RecordingSink()
    bridge, sim = rig(mode="live", sink=sink, duration=8.0, markers=((1, "", 2.0), (2, "", 4.0)))
    wait_for(lambda: bridge.score.generated_until > 3.0, "music ahead of the play head")
    sim.play(0.0)
    wait_for(lambda: sim.position() > 1.2, "playing to 1.2 s")
    # Move marker 2 while playing: regenerate no earlier than the lead ahead of the play head.
    events_before = list(bridge.score.events)
    sim.move_marker(2, 3.5)
    wait_for(lambda: bridge.plan.boundaries == (2.0, 3.5), "boundaries to follow the marker")
    cut = wait_for(lambda: next((e for e in bridge.score.events if isinstance(e, Cut) and e.time > 0), None),
                   "the regeneration cut")
    assert cut.time >= 1.2
    kept = [e for e in events_before if e.time < cut.time - 1e-9 and not isinstance(e, Cut)]
    assert [e for e in bridge.score.events if e.time < cut.time - 1e-9 and not isinstance(e, Cut)] == kept
    # The splice starts with a note, not a rest, and that note is what the play head hears first.
    first = wait_for(lambda: next((e for e in bridge.score.events if getattr(e, "on", False)
                                   and e.time >= cut.time - 1e-9), None), "the first regenerated note")
    assert first.time == pytest.approx(cut.time, abs=1e-6)
    heard = wait_for(lambda: [r for r in bridge.regen_latencies if r["splice"] > 0], "the regenerated note sent")[-1]
    assert heard["note_time"] == pytest.approx(cut.time, abs=1e-6)
    # Its latency breakdown: every stage in order, none negative, adding up to the whole; the splice
    # was placed ahead of the play head when the job started.
    st = heard["stages_s"]
    assert list(st) == list(STAGES) and all(v >= 0 for v in st.values())
    assert sum(st.values()) == pytest.approx(heard["latency_s"], abs=1e-9)
    assert heard["trigger"] <= heard["replan"] <= heard["submit"] <= heard["job_start"] <= heard["sent"]
    assert heard["head_at_start"] < heard["splice"] and heard["lead"] > 0
    wait_for(lambda: sim.position() > 2.6, "playing to 2.6 s")
    sim.stop()
    wait_for(lambda: not bridge.live.playing, "the daemon to see the stop")
    wait_for(lambda: bridge.scheduler.silences["stop"] >= 1, "stop handled")
    sent = list(sink.sent)
    assert sink.sounding() == set(), "stop leaves nothing sounding"
    first_new = next(i for i, x in enumerate(sent) if x.msg.type == "note_on" and x.wall >= heard["sent"]
                     and x.project_time == heard["note_time"])
    assert splice_check(sent, first_new, heard["splice"]) == {"overlap": 0, "doubled": 0}
    ons = [s for s in sent if s.msg.type == "note_on"]
    assert ons, "notes were played"
    # Every note-on is a note of the score, sent in project-time order near its time.
    score_ons = {(round(e.time, 6), e.channel, e.pitch) for e in bridge.score.events if getattr(e, "on", False)}
    score_ons |= {(round(e.time, 6), e.channel, e.pitch) for e in events_before if getattr(e, "on", False)}
    assert all((round(s.project_time, 6), s.msg.channel, s.msg.note) in score_ons for s in ons)
    times = [s.project_time for s in ons]
    assert times == sorted(times)
    assert all(abs(sim.position_at(s.wall) - s.project_time) < 0.5 for s in ons), "sent near its project time"
    drums = [s for s in ons if s.msg.channel == 9]
    assert all(s.msg.channel in (0, 1, 2, 3, 9) for s in ons) and (not drums or drums[0].msg.channel == 9)

    # Panic while playing: everything sounding stops.
    sim.play(0.0)
    wait_for(lambda: sim.position() > 0.5, "playing again")
    with BridgeClient(port=bridge.osc.port) as client:
        client.panic()
    wait_for(lambda: bridge.scheduler.silences["panic"] >= 1, "panic handled")
    msgs = sink.messages()
    last_cc = max(i for i, m in enumerate(msgs) if m.type == "control_change")
    assert sounding_after(msgs[: last_cc + 1]) == set()
    wait_for(lambda: "/action" in [a for _, a, p in sim.received if p == [protocol.REAPER_ACTION_ALL_NOTES_OFF]],
             "REAPER all-notes-off")
    sim.stop()
    wait_for(lambda: bridge.scheduler.silences["stop"] >= 2, "second stop")
    assert sink.sounding() == set()


def test_boundaries_are_video_cuts_in_project_time_plus_markers_and_emotion_markers_override(engine, tmp_path):
    """policy "both": cuts mapped through the video item (position, take offset, playrate) plus
    markers; the video's per-scene emotion holds until an emotion marker overrides it."""
    from types import SimpleNamespace

    video = tmp_path / "film.mp4"
    video.write_bytes(b"not really a video; the analyzer below stands in for the analysis")
    scenes = [SimpleNamespace(start=0.0, end=6.0, valence=-0.5, arousal=0.2),
              SimpleNamespace(start=6.0, end=30.0, valence=0.3, arousal=-0.4)]
    analysis = SimpleNamespace(cuts=[6.0, 14.0], scenes=scenes)
    spool = tmp_path / "spool"
    spool.mkdir()
    sim = ReaperSim(0, markers=[SimMarker(1, "", 3.0), SimMarker(2, "sadness", 9.0)])
    item = {"file": str(video), "position": 1.0, "length": 12.0, "take_offset": 2.0, "playrate": 2.0,
            "track_index": 0, "track_name": "Video", "guid": "{V1}", "source_length": 30.0}
    sim.write_project(spool, video_items=[item])
    cfg = BridgeConfig(osc_port=0, reaper_port=sim.port, spool=spool, policy="both", min_spacing=1.0)
    bridge = Bridge(cfg, engine=engine[0], model_files=engine[1], analyzer=lambda f: analysis)
    try:
        bridge.start()
        sim.daemon_port = bridge.osc.port
        wait_for(lambda: bridge.plan is not None, "the first plan")
        plan = bridge.plan
        # Video 6 s and 14 s -> project 1 + (6 - 2) / 2 = 3.0 (a marker is there too) and 7.0.
        assert (plan.origin, plan.end) == (1.0, 13.0)
        assert plan.boundaries == (3.0, 7.0, 9.0)
        # Scene 1 from the item start, scene 2 from project 3.0, the "sadness" marker from 9.0.
        assert [tuple(round(x, 3) for x in e) for e in plan.emotions] == [
            (1.0, -0.5, 0.2), (3.0, 0.3, -0.4), (9.0, -0.789, -0.8)]
        wait_for(lambda: manifest_id(spool), "the manifest")
        assert all(it.position == 1.0 for it in load_manifest(spool).items)
    finally:
        bridge.close()
        sim.close()


def test_live_play_far_ahead_generates_from_the_play_head(rig):
    sink = RecordingSink()
    bridge, sim = rig(mode="live", sink=sink, duration=300.0, markers=(), max_ahead_s=2.0)
    wait_for(lambda: bridge.score.generated_until > 1.0, "some music")
    sim.play(200.0)  # far past what has been generated (the worker stays <= 2 s ahead of the cursor)
    wait_for(lambda: any(isinstance(e, Cut) and e.time >= 200.0 for e in bridge.score.events), "a catch-up job")
    wait_for(lambda: sink.note_ons(), "notes near the play head")
    sim.stop()
    wait_for(lambda: not bridge.live.playing, "stop")
    wait_for(lambda: bridge.scheduler.silences["stop"] >= 1, "stop handled")
    assert all(s.project_time >= 200.0 for s in sink.note_ons())
    assert sink.sounding() == set()


def test_feedback_after_a_long_silence_sends_no_action_and_mode_switch_over_osc(rig):
    from emsync_bridge.bridge.osc import OscEvent

    sink = RecordingSink()
    bridge, sim = rig(duration=4.0, markers=(), sink=sink)
    wait_for(lambda: len([a for _, a, _p in sim.received if a == "/device/region/count"]) == 2, "the bank refresh on start")
    sent_before = len(sim.received)
    # REAPER silent for 30 s (normal while stopped, csurf_osc.cpp Run), then feedback again: this
    # is no reconnect, and nothing may go to REAPER (an action would hit the user's own surfaces).
    t = time.perf_counter()
    bridge.handle(OscEvent("/time", "/time", (1.0,), None, t - 30.0, ("127.0.0.1", sim.port)))
    assert bridge.status()["reaper"]["feedback_seen_s_ago"] >= 29.0
    bridge.handle(OscEvent("/time", "/time", (1.0,), None, t, ("127.0.0.1", sim.port)))
    time.sleep(0.5)  # what the daemon would send goes out at once; give it time to arrive anyway
    assert sim.received[sent_before:] == [] and "/action" not in sim.addresses_received()
    health = bridge.status()["reaper"]
    assert health["feedback_seen_s_ago"] < 5.0 and "OSC feedback" in health["summary"]
    # doctor asks the running daemon and prints the same line.
    from emsync_bridge.bridge.doctor import check_reaper

    c = check_reaper(bridge.osc.port, str(bridge.spool))
    assert c.level == "ok" and c.detail.startswith("OSC feedback ") and "silence is normal while stopped" in c.detail
    with BridgeClient(port=bridge.osc.port, timeout=5.0) as client:
        client.set_mode("live")
        wait_for(lambda: client.status()["mode"] == "live", "live mode")
        st = client.status()
        assert st["live"]["port"] == "recording" and st["live"]["sounding"] == 0
        client.set_mode("commit")
        wait_for(lambda: client.status()["mode"] == "commit", "commit mode again")
        client.send("/emsync/mode", "bogus")  # a user error: reported, not fatal
        wait_for(lambda: "bogus" in client.status()["last_error"], "the error in the status")


def test_superseded_regeneration_is_still_covered_by_the_next_manifest(rig):
    bridge, sim = rig(duration=60.0, markers=((1, "", 2.0), (2, "", 10.0), (3, "", 20.0), (4, "", 40.0)))
    spool = bridge.spool
    first = wait_for(lambda: manifest_id(spool), "the first manifest")
    sim.move_marker(2, 11.0)  # regenerates from 2.0 ...
    wait_for(lambda: bridge.generation.get("from") == pytest.approx(2.0) and not bridge.generation.get("complete")
             and bridge.generation.get("tokens", 0) > 0, "the regeneration from 2.0 under way")
    sim.move_marker(4, 45.0)  # ... superseded by one from a later boundary before it finished
    wait_for(lambda: (g := manifest_id(spool)) != first and g and bridge.generation.get("complete"), "a new manifest")
    m = load_manifest(spool)
    assert m.replace_from == pytest.approx(2.0), "the manifest covers everything changed since the last one"
    assert all(it.position == pytest.approx(2.0) for it in m.items)


def test_a_failing_model_is_reported_and_the_daemon_keeps_serving(tmp_path):
    class Broken:
        name, provider, context_len, cached_len = "broken", "none", 512, 0

        def prefill(self, *a):
            raise RuntimeError("model exploded")

        step = prefill

    spool = tmp_path / "spool"
    spool.mkdir()
    sim = ReaperSim(0, markers=[SimMarker(1, "", 1.0)])
    sim.write_project(spool, duration_hint=3.0)
    bridge = Bridge(BridgeConfig(osc_port=0, reaper_port=sim.port, spool=spool, analyze_video=False), engine=Broken())
    try:
        bridge.start()
        with BridgeClient(port=bridge.osc.port, timeout=5.0) as client:
            # the error is reported and the daemon goes back to running (two updates: wait for both)
            wait_for(lambda: (s := client.status()) and "model exploded" in s["last_error"]
                     and s["state"] == "running", "the error, then state running")
            client.regenerate()
            assert client.status()["osc"]["port"] == bridge.osc.port
    finally:
        bridge.close()
        sim.close()
