"""The Lua ReaScripts under Lua 5.4 against the stub `reaper` (tests/test_reaper_stub.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lupa.lua54 import LuaRuntime

from emsync_bridge.timeline import protocol
from emsync_bridge.timeline.spool import load_request, poll_requests, spool_dir_string
from emsync_bridge.timeline.timeline import EMOTION_VA, parse_emotion

sys.path.insert(0, str(Path(__file__).parent))  # the shared stub, whatever pytest's import mode
from test_reaper_stub import SCRIPTS, VIDEO_A, VIDEO_B, ReaperSim, sim  # noqa: E402, F401

LUA_FILES = sorted(SCRIPTS.glob("*.lua"))
ACTION_FILES = [p for p in LUA_FILES if p.name.startswith("EmSync - ")]


def test_expected_files_exist():
    names = {p.name for p in LUA_FILES}
    assert "emsync_lib.lua" in names
    for f in ("Send project", "Import generated MIDI", "Live mode on-off", "Regenerate from marker",
              "Panic", "Set emotion at cursor"):
        assert f"EmSync - {f}.lua" in names


@pytest.mark.skipif(shutil.which("luac5.4") is None, reason="luac5.4 (Debian lua5.4) not installed")
@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.name)
def test_luac54_syntax(path):
    r = subprocess.run(["luac5.4", "-p", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.name)
def test_loads_in_lupa_lua54(path):
    lua = LuaRuntime(unpack_returned_tuples=True)
    assert lua.eval("_VERSION") == "Lua 5.4"
    loaded, err = lua.eval("function(src, name) local f, e = load(src, name); return f ~= nil, e end")(
        path.read_text(), "@" + path.name)
    assert loaded, err


def test_every_action_is_a_thin_wrapper_over_the_lib():
    lib = (SCRIPTS / "emsync_lib.lua").read_text()
    for p in ACTION_FILES:
        text = p.read_text()
        assert 'require, "emsync_lib"' in text and "M.run(" in text, p.name
        assert f'"{p.name}"' in lib, f"{p.name} missing from M.ACTION_FILES"


# -- Send project -------------------------------------------------------------------------------


def expected_project(sim) -> dict:
    film, broll = sim.media["film"], sim.media["broll"]
    return {
        "version": 1,
        "kind": "emsync.project",
        "video_items": [
            dict(file=film, track_index=0, track_name="Video", source_length=95.0, **VIDEO_A),
            dict(file=broll, track_index=0, track_name="Video", source_length=120.0, **VIDEO_B),
        ],
        "markers": [
            {"index": 1, "name": "Scene 2", "position": 12.0},
            {"index": 2, "name": "joy", "position": 20.0},
            {"index": 5, "name": "emo V=0.5 a=-0.2", "position": 45.0},
        ],
        "regions": [
            {"index": 1, "name": "sadness", "position": 30.0, "end": 38.0},
            {"index": 2, "name": "Credits", "position": 55.0, "end": 60.0},
        ],
        "tempo_map": [
            {"time": 0.0, "bpm": 120.0, "num": 4, "denom": 4, "linear": False},
            {"time": 16.0, "bpm": 120.0, "num": 4, "denom": 4, "linear": True},
            {"time": 25.6, "bpm": 80.0, "num": 3, "denom": 4, "linear": False},
        ],
        "time_selection": {"start": 10.0, "end": 50.0},
        "cursor": 47.0,
        "target_tracks": [
            {"instrument": "piano", "name": "EmSync Piano", "index": 2},
            {"instrument": "bass", "name": "EmSync Bass", "index": 3},
        ],
        "frame_rate": 24.0,
    }


def read_project(sim) -> dict:
    return json.loads((sim.spool / "project.json").read_text(encoding="utf-8"))


def strip_volatile(d: dict) -> dict:
    d = {k: v for k, v in d.items() if k not in ("written_at", "reaper", "project", "actions")}
    for key in ("video_items", "markers", "regions", "target_tracks"):
        d[key] = [{k: v for k, v in e.items() if k != "guid"} for e in d[key]]
    return d


def test_send_project_writes_expected_state(sim):
    sim.run_script("EmSync - Send project.lua")
    got = read_project(sim)
    assert strip_volatile(got) == expected_project(sim)
    assert got["written_at"].endswith("Z") and len(got["written_at"]) == 20
    assert got["project"]["file"].endswith("film.rpp") and len(got["project"]["id"]) == 16
    assert all(e["guid"].startswith("{") for e in got["video_items"] + got["markers"] + got["regions"])
    assert set(got["actions"]) >= {"send_project", "import", "live_mode", "regenerate", "panic", "set_emotion"}
    assert all(v.startswith("_RS") for v in got["actions"].values())
    assert "project sent (2 video items, 3 markers, 2 regions, 3 tempo points)" in sim.console()
    # Atomic write: no temp files left behind, and the project id is stable across sends.
    assert sorted(p.name for p in sim.spool.iterdir()) == ["out", "project.json", "requests"]
    sim.run_script("EmSync - Send project.lua")
    assert read_project(sim)["project"]["id"] == got["project"]["id"]


def test_actions_are_registered_once_not_on_every_send(sim):
    sim.run_script("EmSync - Send project.lua")
    first = read_project(sim)["actions"]
    regs = sim.calls("AddRemoveReaScript")
    n = len(list((Path(__file__).resolve().parents[1] / "reaper_scripts").glob("EmSync - *.lua")))  # the actions
    assert n == 8 and len(regs) == n and len(set(first.values())) == n == len(first)
    # One reaper-kb.ini write: commit only on the last registration of the batch.
    assert [c[4] for c in regs] == [False] * (n - 1) + [True]
    assert all(c[1] is True and c[2] == 0 for c in regs)
    sim.clear_calls()
    for _ in range(3):  # later sends (and each request) reuse the kept ids
        sim.run_script("EmSync - Send project.lua")
        sim.run_script("EmSync - Panic.lua")
    assert sim.calls("AddRemoveReaScript") == [] and read_project(sim)["actions"] == first
    assert sim.S.ext["EmSync/action_import"] == first["import"]


def test_reapack_installs_are_never_registered_by_us(tmp_path):
    s = ReaperSim(tmp_path)
    lib = s.lib()
    lib.script_dir = str(SCRIPTS) + "/"
    assert not lib.installed_by_reapack()
    assert lib.installed_by_reapack(str(tmp_path / "REAPER" / "Scripts" / "emsync-bridge" / "MIDI") + "/")
    assert lib.installed_by_reapack("C:\\Users\\u\\AppData\\Roaming\\REAPER\\Scripts\\emsync-bridge\\MIDI\\")
    lib.script_dir = str(tmp_path / "REAPER" / "Scripts" / "emsync-bridge" / "MIDI") + "/"
    for f in SCRIPTS.glob("*.lua"):  # the files as ReaPack lays them out
        (tmp_path / "REAPER" / "Scripts" / "emsync-bridge" / "MIDI").mkdir(parents=True, exist_ok=True)
        (tmp_path / "REAPER" / "Scripts" / "emsync-bridge" / "MIDI" / f.name).write_bytes(f.read_bytes())
    assert dict(lib.action_ids().items()) == {} and s.calls("AddRemoveReaScript") == []
    # ReaPack registered the action; running it records its own id (get_action_context).
    s.S.named[777] = "RS" + "ab" * 20
    s.S.action_path = lib.script_dir + "EmSync - Panic.lua"
    s.S.action_cmd = 777
    s.lua.globals().dofile(lib.script_dir + "EmSync - Panic.lua")
    assert dict(lib.action_ids().items()) == {"panic": "_RS" + "ab" * 20}
    assert s.calls("AddRemoveReaScript") == []


def test_send_project_on_an_empty_project(tmp_path):
    s = ReaperSim(tmp_path)
    s.S.default_ts = s.lua.table(3, 4, 90.0)
    s.run_script("EmSync - Send project.lua")
    got = json.loads((s.spool / "project.json").read_text())
    assert got["video_items"] == [] and got["markers"] == [] and got["regions"] == []
    assert got["tempo_map"] == [{"time": 0.0, "bpm": 90.0, "num": 3, "denom": 4, "linear": False}]
    assert got["time_selection"] is None and got["target_tracks"] == []


def test_spool_error_is_a_message_not_a_lua_error(tmp_path):
    s = ReaperSim(tmp_path)
    s.S.env = s.lua.table_from({"EMSYNC_SPOOL": "relative/spool"})
    s.run_script("EmSync - Send project.lua")
    assert "EMSYNC_SPOOL must be an absolute path" in s.console()


def test_unwritable_spool_is_a_message(tmp_path):
    s = ReaperSim(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s.S.env = s.lua.table_from({"EMSYNC_SPOOL": str(blocker / "spool")})
    for script in ("EmSync - Send project.lua", "EmSync - Panic.lua", "EmSync - Import generated MIDI.lua"):
        s.run_script(script)  # never raises
    assert s.console().count("cannot write") == 3 and "Import generated MIDI failed" in s.console()
    assert s.S.deferred[1] is None  # the importer did not start


def test_setup_installs_the_osc_pattern_file(tmp_path):
    s = ReaperSim(tmp_path)
    s.run_script("EmSync - Setup (install OSC pattern file).lua")
    installed = Path(s.S.resource) / "OSC" / "emsync.ReaperOSC"
    assert installed.read_bytes() == (SCRIPTS / "emsync.ReaperOSC").read_bytes()
    assert "device port 9137, local listen port 9138" in s.console()
    s.run_script("EmSync - Setup (install OSC pattern file).lua")
    assert "already installed" in s.console()


# -- Requests -------------------------------------------------------------------------------------


def requests(sim) -> list[Path]:
    return sorted((sim.spool / "requests").glob("*.json"))


def test_regenerate_from_marker_left_of_cursor(sim):
    sim.run_script("EmSync - Regenerate from marker.lua")
    (path,) = requests(sim)
    req = load_request(path)  # the daemon's reader accepts what Lua wrote
    assert (req.type, req.time, req.marker_index) == ("regenerate", 45.0, 5)
    assert path.name.endswith("-regenerate.json") and path.name.startswith(req.id)
    assert (sim.spool / "project.json").exists()  # the project is re-sent first
    sim.S.cursor = 5.0  # no marker left of the cursor: from the start
    sim.run_script("EmSync - Regenerate from marker.lua")
    reqs = poll_requests(sim.spool)
    assert [(r.time, r.marker_index) for r in reqs] == [(45.0, 5), (0.0, None)]
    assert requests(sim) == []


def test_quiet_setting_silences_success_messages_only(sim):
    sim.S.ext["EmSync/quiet"] = "1"
    sim.run_script("EmSync - Send project.lua")
    sim.run_script("EmSync - Panic.lua")
    sim.S.user_input = "nonsense"
    sim.run_script("EmSync - Set emotion at cursor.lua")
    assert sim.console() == "EmSync: 'nonsense' is not an emotion: use joy, sadness, anger, fear, disgust, surprise or v=0.5 a=-0.2 (each in -1..1)\n"


def test_panic(sim):
    sim.run_script("EmSync - Panic.lua")
    (path,) = requests(sim)
    assert load_request(path).type == "panic"
    assert ("Main_OnCommand", protocol.REAPER_ACTION_ALL_NOTES_OFF, 0) in sim.calls("Main_OnCommand")


@pytest.mark.parametrize("text, marker, va", [
    ("Fear", "emo fear", EMOTION_VA["fear"]),
    ("v=0.456 a=-0.2", "emo v=0.46 a=-0.20", (0.46, -0.2)),
])
def test_set_emotion_at_cursor(sim, text, marker, va):
    sim.S.user_input = text
    sim.run_script("EmSync - Set emotion at cursor.lua")
    adds = sim.calls("AddProjectMarker2")
    assert len(adds) == 1 and adds[0][3:6] == (47.0, 0, marker)
    req = load_request(requests(sim)[0])
    assert req.type == "set_emotion" and req.time == 47.0 and req.marker_index == 6
    assert (req.valence, req.arousal) == pytest.approx(va)
    assert parse_emotion(marker) is not None
    assert any(m["name"] == marker for m in read_project(sim)["markers"])  # project re-sent


def test_set_emotion_rejects_non_emotions(sim):
    for ok, text in ((True, "verse 2"), (True, "v=2 a=0"), (False, "joy")):
        sim.S.user_ok, sim.S.user_input = ok, text
        sim.run_script("EmSync - Set emotion at cursor.lua")
    assert sim.calls("AddProjectMarker2") == [] and requests(sim) == []
    assert "'verse 2' is not an emotion" in sim.console()


# -- Live mode ---------------------------------------------------------------------------------------


def test_live_mode_toggle(sim):
    sim.S.midi_inputs = sim.lua.table("loopMIDI Port", "EmSync Out", "Other")
    sim.run_script("EmSync - Live mode on-off.lua")
    live = [t for t in sim.tracks() if t["name"] == "EmSync Live"]
    assert len(live) == 1
    info = live[0]["info"]
    assert info["I_RECINPUT"] == 4096 + (1 << 5) + 0  # MIDI, device 1, all channels
    assert (info["I_RECARM"], info["I_RECMON"]) == (1, 1)
    assert sim.S.action_options == 4  # toggle shows "on"
    assert load_request(requests(sim)[0]).mode == "live"
    sim.run_script("EmSync - Live mode on-off.lua")
    info = [t for t in sim.tracks() if t["name"] == "EmSync Live"][0]["info"]
    assert (info["I_RECARM"], info["I_RECMON"]) == (0, 0)
    assert [r.mode for r in poll_requests(sim.spool)] == ["live", "commit"]
    sim.run_script("EmSync - Live mode on-off.lua")  # on again: reuses the track
    assert [t["name"] for t in sim.tracks()].count("EmSync Live") == 1


def test_live_mode_without_port_explains(sim):
    sim.S.midi_inputs = sim.lua.table("loopMIDI Port")
    n_tracks = len(sim.tracks())
    sim.run_script("EmSync - Live mode on-off.lua")
    assert len(sim.tracks()) == n_tracks and requests(sim) == []
    assert "no MIDI input named 'EmSync Out'" in sim.console() and "loopMIDI" in sim.console()


# -- Importer ------------------------------------------------------------------------------------------


def write_generation(sim, gen: str, instruments: dict[str, tuple[float, float]], replace_from=None,
                     project_id=None) -> Path:
    out = sim.spool / "out" / gen
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for inst, (pos, length) in instruments.items():
        (out / f"{inst}.mid").write_bytes(b"MThd" + inst.encode())
        items.append({"instrument": inst, "file": f"out/{gen}/{inst}.mid", "track": protocol.track_name(inst),
                      "position": pos, "length": length, "program": 0})
    manifest = {"version": 1, "kind": "emsync.manifest", "generation_id": gen, "written_at": "x",
                "replace_from": replace_from, "items": items}
    if project_id:
        manifest["project_id"] = project_id
    path = sim.spool / "out" / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def emsync_items(sim) -> dict[str, list[tuple]]:
    return {t["name"]: [(i["position"], i["length"], i["tag"]) for i in t["items"]] for t in sim.tracks()}


def start_importer(sim):
    sim.run_script("EmSync - Import generated MIDI.lua")
    assert sim.S.action_options == 4
    sim.S.step(1.0)


def test_importer_places_items_and_replaces_only_emsync_items(sim):
    start_importer(sim)  # no manifest yet: nothing happens, silently
    assert sim.calls("AddMediaItemToTrack") == []
    write_generation(sim, "gen-1", {"piano": (2.0, 58.0), "bass": (2.0, 58.0), "drums": (12.0, 48.0)})
    sim.clear_calls()
    sim.S.step(1.0)
    items = emsync_items(sim)
    assert items["EmSync Piano"] == [(10.0, 4.0, None), (2.0, 58.0, "gen-1")]  # user item kept
    assert items["EmSync Bass"] == [(2.0, 58.0, "gen-1")]
    assert items["EmSync Drums"] == [(12.0, 48.0, "gen-1")]  # created
    assert items["Strings mockup"] == [(5.0, 20.0, "gen-old")]  # not an EmSync track
    assert items["Video"][0][:2] == (2.0, 30.0) and len(items["Dialog"]) == 1
    drums = [t for t in sim.tracks() if t["name"] == "EmSync Drums"][0]
    assert drums["fx"] == ["ReaSynth"] and drums["items"][0]["take_name"] == "EmSync drums"
    # Items play copies kept next to the project, not the spool files.
    assert all(Path(i["file"]).parent == Path(sim.S.projpath) / "EmSync" and Path(i["file"]).exists()
               for t in sim.tracks() if t["name"].startswith("EmSync") for i in t["items"] if i["tag"])
    # One undo block around every edit.
    names = [c[0] for c in sim.calls()]
    first, last = names.index("Undo_BeginBlock2"), names.index("Undo_EndBlock2")
    assert names.count("Undo_BeginBlock2") == 1 and names.count("Undo_EndBlock2") == 1
    edits = [i for i, n in enumerate(names) if n in ("DeleteTrackMediaItem", "AddMediaItemToTrack", "InsertTrackAtIndex")]
    assert edits and first < min(edits) and max(edits) < last
    assert "imported 3 MIDI item(s) of generation gen-1" in sim.console()
    # The same manifest again: nothing happens.
    sim.clear_calls()
    sim.S.step(1.0)
    sim.S.step(1.0)
    assert sim.calls("AddMediaItemToTrack") == []

    # Regenerate from 30 s: items after it go, items across it are cut there, the rest stays.
    write_generation(sim, "gen-2", {"piano": (30.0, 30.0)}, replace_from=30.0)
    sim.S.step(1.0)
    items = emsync_items(sim)
    assert items["EmSync Piano"] == [(10.0, 4.0, None), (2.0, 28.0, "gen-1"), (30.0, 30.0, "gen-2")]
    assert items["EmSync Bass"] == [(2.0, 28.0, "gen-1")]
    assert items["EmSync Drums"] == [(12.0, 18.0, "gen-1")]


@pytest.mark.parametrize("bad, why", [
    ("", "not valid JSON"),
    ('{"version": 1, "kind": "emsync.manifest", "generation_id": "g", "items": [{"instr', "half-written"),
    ("\x00\xff garbage", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"version": 2, "generation_id": "g", "items": []}', "version 2"),
    ('{"version": 1, "generation_id": "../x", "items": []}', "bad generation_id"),
    ('{"version": 1, "generation_id": "g", "items": [{"instrument": "piano", "track": "EmSync Piano",'
     ' "file": "../../etc/passwd", "position": 0, "length": 1}]}', "must not contain '..'"),
    ('{"version": 1, "generation_id": "g", "items": [{"instrument": "piano", "track": "EmSync Piano",'
     ' "file": "out/g/piano.mid", "position": -1, "length": 1}]}', "position is bad"),
    ('{"version": 1, "generation_id": "g", "items": [{"instrument": "piano", "track": "EmSync Piano",'
     ' "file": "out/g/missing.mid", "position": 0, "length": 1}]}', "missing MIDI file"),
])
def test_importer_ignores_malformed_manifests_with_a_message(sim, bad, why):
    start_importer(sim)
    (sim.spool / "out" / "manifest.json").write_bytes(bad.encode("latin-1"))
    sim.clear_console()
    for _ in range(4):
        sim.S.step(1.0)  # never raises
    assert sim.calls("AddMediaItemToTrack") == [] and sim.calls("DeleteTrackMediaItem") == []
    assert why in sim.console() and sim.console().count("ignoring") == 1  # reported once
    assert sim.calls("Undo_BeginBlock2") == []  # nothing retried into the undo history
    write_generation(sim, "gen-ok", {"piano": (2.0, 10.0)})  # a good one later is imported
    sim.S.step(1.0)
    assert emsync_items(sim)["EmSync Piano"][-1] == (2.0, 10.0, "gen-ok")


def test_importer_reports_an_oversized_manifest_once(sim):
    start_importer(sim)
    (sim.spool / "out" / "manifest.json").write_bytes(b" " * (protocol.MAX_JSON_BYTES + 1))
    for _ in range(3):
        sim.S.step(1.0)
    assert sim.console().count("too large") == 1 and sim.calls("AddMediaItemToTrack") == []


def import_result(sim) -> dict:
    return json.loads((sim.spool / "out" / "import.json").read_text())


def test_importer_source_error_touches_nothing(sim):
    """REAPER failing to open a source is found before the project is touched: no undo point."""
    start_importer(sim)
    before = emsync_items(sim)
    sim.S.fail_source = True
    write_generation(sim, "gen-1", {"piano": (2.0, 58.0)})
    for _ in range(4):
        sim.S.step(1.0)
    assert emsync_items(sim) == before
    assert sim.calls("Undo_BeginBlock2") == [] and sim.calls("Undo_EndBlock2") == []
    assert sim.console().count("cannot create source") == 1
    assert import_result(sim)["state"] == "failed" and "cannot create source" in import_result(sim)["reason"]


def test_importer_unreadable_midi_is_refused_before_any_edit(sim):
    """PCM_Source_CreateFromFileEx returns nil: the old music stays, sources already made are freed."""
    start_importer(sim)
    before = emsync_items(sim)
    sim.S.unreadable = "-bass-"  # REAPER cannot read the bass copy; piano's source was opened first
    write_generation(sim, "gen-1", {"piano": (2.0, 58.0), "bass": (2.0, 58.0)})
    sim.S.step(1.0)
    assert emsync_items(sim) == before and sim.calls("Undo_BeginBlock2") == []
    assert sim.S.sources_live == 0
    res = import_result(sim)
    assert res["state"] == "failed" and res["generation_id"] == "gen-1" and "REAPER could not read" in res["reason"]
    assert sim.S.projext["EmSync/imported_generation"] is None


def test_importer_failure_mid_loop_leaves_the_old_items_and_nothing_half_made(sim):
    start_importer(sim)
    before = emsync_items(sim)
    tracks_before = [t["name"] for t in sim.tracks()]
    sim.S.fail_take_at = (sim.S.takes_added or 0) + 3  # the third new item fails
    write_generation(sim, "gen-1", {"piano": (2.0, 58.0), "drums": (12.0, 48.0), "bass": (2.0, 58.0)})
    sim.clear_calls()
    sim.S.step(1.0)
    # Old items intact, no new item, the track made for drums is gone again, sources freed.
    assert emsync_items(sim) == before and [t["name"] for t in sim.tracks()] == tracks_before
    assert sim.calls("DeleteTrackMediaItem") and sim.S.sources_live == 0
    assert len(sim.calls("Undo_BeginBlock2")) == len(sim.calls("Undo_EndBlock2")) == 1
    assert sim.S.last_undo == "EmSync: import failed (nothing changed)"
    assert sim.calls("PreventUIRefresh") == [("PreventUIRefresh", 1), ("PreventUIRefresh", -1)]
    # Not marked imported: the manifest says failed, with the reason; the daemon reads it.
    assert sim.S.projext["EmSync/imported_generation"] is None
    res = import_result(sim)
    assert res["state"] == "failed" and "cannot add a take" in res["reason"] and "unchanged" in res["reason"]
    from emsync_bridge.bridge.health import ReaperHealth, read_import_result

    got = read_import_result(sim.spool)
    assert got.state == "failed" and got.generation_id == "gen-1"
    assert "last import failed: gen-1" in ReaperHealth(1.0, None, got).summary()
    for _ in range(3):
        sim.S.step(1.0)
    assert sim.console().count("cannot add a take") == 1  # reported once, not retried every poll
    # Running the importer again retries the same manifest, which now imports.
    sim.S.fail_take_at = None
    start_importer(sim)
    sim.S.step(1.0)
    assert emsync_items(sim)["EmSync Drums"] == [(12.0, 48.0, "gen-1")]
    assert import_result(sim)["state"] == "imported"


def test_importer_refuses_another_projects_manifest(sim):
    sim.run_script("EmSync - Send project.lua")
    start_importer(sim)
    write_generation(sim, "gen-x", {"piano": (0.0, 5.0)}, project_id="someoneelse")
    sim.S.step(1.0)
    assert sim.calls("AddMediaItemToTrack") == [] and "another project" in sim.console()
    sim.S.step(1.0)
    assert sim.console().count("another project") == 1  # reported once
    # Switching to the project tab it belongs to imports the same manifest.
    sim.S.projext["EmSync/project_id"] = "someoneelse"
    sim.S.step(1.0)
    assert len(sim.calls("AddMediaItemToTrack")) == 1


# -- Shared code: spool resolution, emotions, JSON ----------------------------------------------


SPOOL_CASES = [
    ({"EMSYNC_SPOOL": "/data/spool/"}, "linux-x86_64", "linux"),
    ({"EMSYNC_SPOOL": "/"}, "linux-x86_64", "linux"),
    ({"HOME": "/home/u"}, "linux-x86_64", "linux"),
    ({"HOME": "/home/u"}, "Other", "linux"),
    ({"HOME": "/home/u", "XDG_DATA_HOME": "/xdg"}, "linux-x86_64", "linux"),
    ({"HOME": "/home/u", "XDG_DATA_HOME": "relative"}, "linux-x86_64", "linux"),
    ({"HOME": "/Users/u"}, "macOS-arm64", "darwin"),
    ({"HOME": "/Users/u"}, "OSX64", "darwin"),
    ({"LOCALAPPDATA": "C:\\Users\\u\\AppData\\Local"}, "Win64", "win32"),
    ({"USERPROFILE": "C:\\Users\\u"}, "Win32", "win32"),
    ({"EMSYNC_SPOOL": "D:\\spool\\\\", "LOCALAPPDATA": "C:\\x"}, "Win64", "win32"),
    ({"EMSYNC_SPOOL": "\\\\server\\share\\spool"}, "Win64", "win32"),
    ({"EMSYNC_SPOOL": "C:\\"}, "Win64", "win32"),
]


@pytest.mark.parametrize("env, lua_os, py_platform", SPOOL_CASES)
def test_spool_dir_matches_python(tmp_path, env, lua_os, py_platform):
    s = ReaperSim(tmp_path)
    m = s.lib()
    getenv = s.lua.eval("function(t) return function(k) return t[k] end end")(s.lua.table_from(env))
    lua_path, lua_err = m.spool_dir(getenv, lua_os)
    assert lua_err is None
    assert lua_path == spool_dir_string(env, py_platform)


@pytest.mark.parametrize("env, lua_os", [
    ({"EMSYNC_SPOOL": "spool"}, "linux-x86_64"),
    ({"EMSYNC_SPOOL": "\\spool"}, "Win64"),
    ({}, "linux-x86_64"),
    ({}, "Win64"),
])
def test_spool_dir_errors_match_python(tmp_path, env, lua_os):
    from emsync_bridge.errors import EmsyncError

    s = ReaperSim(tmp_path)
    getenv = s.lua.eval("function(t) return function(k) return t[k] end end")(s.lua.table_from(env))
    lua_path, lua_err = s.lib().spool_dir(getenv, lua_os)
    assert lua_path is None and lua_err
    with pytest.raises(EmsyncError) as exc:
        spool_dir_string(env, "win32" if lua_os.startswith("Win") else "linux")
    assert str(exc.value) == lua_err


EMOTION_NAMES = ["joy", "JOY", " Sadness ", "emo anger", "EMO: fear", "emotion disgust", "surprise",
                 "v=0.5 a=-0.2", "V = .5, A = -0.25", "a=0.1 v=-1", "emo v=1 a=1", "v=1.5 a=0",
                 "v=0.5", "joyful", "emo", "", "verse", "v=+0.5 a=-0.", "v=0.5 a=-0.2 x", "emojoy"]


def test_emotion_parsing_matches_python(tmp_path):
    m = ReaperSim(tmp_path).lib()
    for name in EMOTION_NAMES:
        py = parse_emotion(name)
        lua = m.parse_emotion(name)
        if py is None:
            assert lua is None, name
        else:
            assert lua is not None, name
            assert (lua.valence, lua.arousal, lua.label) == pytest.approx((py.valence, py.arousal, py.label)) or \
                (lua.label == py.label and lua.valence == pytest.approx(py.valence) and lua.arousal == pytest.approx(py.arousal)), name
    assert {k: tuple(v.values()) for k, v in m.EMOTION_VA.items()} == EMOTION_VA


def test_lua_constants_match_protocol(tmp_path):
    m = ReaperSim(tmp_path).lib()
    assert m.PROTOCOL_VERSION == protocol.PROTOCOL_VERSION
    assert m.LIVE_TRACK == protocol.LIVE_TRACK_NAME and m.LIVE_PORT == protocol.LIVE_PORT_NAME
    assert m.ITEM_TAG == protocol.ITEM_TAG_KEY and m.TRACK_PREFIX == protocol.TRACK_PREFIX
    assert m.ACTION_ALL_NOTES_OFF == protocol.REAPER_ACTION_ALL_NOTES_OFF
    assert m.MAX_JSON_BYTES == protocol.MAX_JSON_BYTES
    assert all(m.track_name_for(i) == protocol.track_name(i) for i in m.INSTRUMENTS.values())


JSON_VALUES = [
    {"a": [1, 2.5, -3e-9, 1e300, 0.1, 123456789012345], "b": {"c": None, "d": True, "e": False}},
    {"s": 'quote" back\\ slash / nl\n tab\t ctrl\x01 del\x7f é 🎬 \u2028'},
    {"empty_list": [], "empty_obj": {}, "nested": [[[]], [{}]]},
]


@pytest.mark.parametrize("value", JSON_VALUES)
def test_lua_json_round_trips_with_python(tmp_path, value):
    s = ReaperSim(tmp_path)
    j = s.lib().json
    decoded, err = j.decode(json.dumps(value))
    assert err is None
    assert json.loads(j.encode(decoded)) == value
    decoded2, _ = j.decode(json.dumps(value, ensure_ascii=False, indent=2))
    assert json.loads(j.encode(decoded2)) == value


def test_lua_json_encodes_floats_exactly(tmp_path):
    j = ReaperSim(tmp_path).lib().json
    for x in (0.1, 25.6, 1 / 3, 2.0, -0.0, 5e-324, 1.7976931348623157e308):
        assert json.loads(j.encode(x)) == x
    with pytest.raises(Exception):
        j.encode(float("nan"))


@pytest.mark.parametrize("bad", ['{"a": 1', '{"a": 1}}', "[1,]", "{'a': 1}", '"\\x"', '"\\ud800"', "01",
                                 "1.", "-", "tru", '{"a" 1}', '["a\nb"]', "NaN", "", "   ", "[" * 200 + "]" * 200])
def test_lua_json_decode_rejects_malformed_without_raising(tmp_path, bad):
    j = ReaperSim(tmp_path).lib().json
    value, err = j.decode(bad)
    assert value is None and isinstance(err, str) and err


def test_lua_json_sanitizes_invalid_utf8(tmp_path):
    s = ReaperSim(tmp_path)
    j = s.lib().json
    encoded = s.lua.eval("function(j) return j.encode({name = 'caf\\xe9 \\xff ok'}) end")(j)
    assert json.loads(encoded) == {"name": "caf\ufffd \ufffd ok"}



# -- Apply fitted tempo ---------------------------------------------------------------------------


def _daemon_status(sim, tempo_map, median=12.0):
    """status.json as the daemon writes it (plan.fitted_tempo from Plan.fitted_tempo)."""
    sim.spool.mkdir(parents=True, exist_ok=True)
    status = {"version": 1, "kind": "emsync.status", "state": "running",
              "plan": {"origin": 0.0, "end": 60.0, "boundaries": [5.0, 10.0],
                       "fitted_tempo": {"mode": "auto", "bpm": tempo_map[0]["bpm"], "median_cut_offset_ms": median,
                                        "tempo_map": tempo_map, "cuts": []}}}
    (sim.spool / "status.json").write_text(json.dumps(status), encoding="utf-8")


def _tempo(sim):
    return [tuple(p[i] for i in range(1, 6)) for p in sim.S.tempo.values()]


def test_apply_fitted_tempo_asks_then_replaces_the_markers_in_one_undo_point(sim):
    from emsync_bridge.music.tempo_fit import fit_tempo

    fit = fit_tempo([5.0, 10.0, 15.0], -0.4)  # the daemon's own fit and serialisation
    _daemon_status(sim, fit.to_dict()["tempo_map"])
    sim.S.msgbox_answer = 7  # "No": the project's three tempo markers stay
    sim.run_script("EmSync - Apply fitted tempo.lua")
    assert "Replace the project's 3 tempo markers with the fitted tempo (96.00 BPM)?" in sim.console()
    assert len(_tempo(sim)) == 3 and not sim.calls("Undo_BeginBlock2")
    sim.clear_console()
    sim.S.msgbox_answer = 6  # "Yes"
    sim.run_script("EmSync - Apply fitted tempo.lua")
    assert _tempo(sim) == [(0.0, 96.0, 4, 4, False)]
    assert len(sim.calls("Undo_BeginBlock2")) == 1 and len(sim.calls("Undo_EndBlock2")) == 1
    assert sim.calls("Undo_EndBlock2")[0][2] == "EmSync: apply fitted tempo"
    assert "fitted tempo applied: 96.00 BPM" in sim.console()
    sent = read_project(sim)  # the project is re-sent: the daemon regenerates on the new grid
    assert sent["tempo_map"] == [{"time": 0.0, "bpm": 96.0, "num": 4, "denom": 4, "linear": False}]


def test_apply_fitted_tempo_without_markers_does_not_ask_and_keeps_ramps(sim):
    sim.S.tempo = sim.lua.table()
    ramp = [{"time": 0.0, "bpm": 90.0, "num": 4, "denom": 4, "linear": True},
            {"time": 8.0, "bpm": 100.0, "num": 3, "denom": 4, "linear": False}]
    _daemon_status(sim, ramp)
    sim.run_script("EmSync - Apply fitted tempo.lua")
    assert "Replace" not in sim.console()
    assert _tempo(sim) == [(0.0, 90.0, 4, 4, True), (8.0, 100.0, 3, 4, False)]


@pytest.mark.parametrize("status,needle", [
    (None, "no daemon status"),
    ("{not json", "unreadable daemon status"),
    (json.dumps({"plan": None}), "no fitted tempo yet"),
    (json.dumps({"plan": {"fitted_tempo": {"tempo_map": [{"time": 0, "bpm": -5}]}}}), "bad point 1"),
])
def test_apply_fitted_tempo_explains_what_is_missing(sim, status, needle):
    sim.spool.mkdir(parents=True, exist_ok=True)
    if status is not None:
        (sim.spool / "status.json").write_text(status, encoding="utf-8")
    sim.run_script("EmSync - Apply fitted tempo.lua")
    assert needle in sim.console() and "failed" not in sim.console()
    assert len(_tempo(sim)) == 3 and not sim.calls("Undo_BeginBlock2")
