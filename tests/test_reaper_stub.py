"""A stub `reaper` table for running our ReaScripts under Lua 5.4 (lupa), plus a small project.

REAPER cannot run here, so the stub models just enough of its API: tracks, items, takes and
sources, markers/regions, tempo markers, ext state, MIDI inputs, defer. Any API function the
scripts call that is not modelled raises, so a typo in a REAPER function name fails a test.
The shared `ReaperSim` and `small_project` are imported by the other test_reaper_* modules.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from lupa import lua53, lua54

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "reaper_scripts"

STUB = r"""
S = { calls = {}, tracks = {}, marks = {}, tempo = {}, console = {}, deferred = {}, clock = 1000.0,
      ext = {}, projext = {}, midi_inputs = {}, cursor = 0.0, sel_start = 0.0, sel_end = 0.0,
      env = {}, os = "linux-x86_64", resource = "", projpath = "", project_file = "",
      default_ts = { 4, 4, 120.0 }, user_ok = true, user_input = "", script_ids = {}, next_cmd = 50000,
      named = {}, toggle = {}, next_guid = 0 }

os.getenv = function(k) return S.env[k] end

local function guid()
  S.next_guid = S.next_guid + 1
  return string.format("{00000000-0000-0000-0000-%012d}", S.next_guid)
end

-- World building (called from Python)
function S.add_track(name)
  local tr = { name = name, items = {}, info = { I_RECARM = 0, I_RECMON = 0, I_RECINPUT = -1 }, str = {}, fx = {}, guid = guid() }
  S.tracks[#S.tracks + 1] = tr
  return tr
end
function S.source(kind, file, length, parent)
  return { type = kind, file = file, length = length, parent = parent }
end
function S.add_item(tr, src, pos, len, offs, rate, tag, muted)
  local take = { info = { D_STARTOFFS = offs or 0.0, D_PLAYRATE = rate or 1.0 }, source = src, str = {} }
  local item = { track = tr, info = { D_POSITION = pos, D_LENGTH = len, B_MUTE = muted and 1 or 0 }, str = {}, take = take, guid = guid() }
  if tag then item.str["P_EXT:emsync"] = tag end
  tr.items[#tr.items + 1] = item
  return item
end
function S.add_mark(isrgn, number, name, pos, rend)
  S.marks[#S.marks + 1] = { isrgn = isrgn, number = number, name = name, pos = pos, rend = rend or 0.0, guid = guid() }
end
function S.add_tempo(t, bpm, num, den, linear)
  S.tempo[#S.tempo + 1] = { t, bpm, num, den, linear }
end
local function sorted_marks()
  local list = {}
  for i, m in ipairs(S.marks) do list[i] = m end
  table.sort(list, function(a, b)
    if a.pos ~= b.pos then return a.pos < b.pos end
    return (a.isrgn and 1 or 0) < (b.isrgn and 1 or 0)
  end)
  return list
end
function S.step(dt)
  local pending = S.deferred
  S.deferred = {}
  for _, fn in ipairs(pending) do fn() end
  S.clock = S.clock + (dt or 0.25)
end
function S.count(name)
  local n = 0
  for _, c in ipairs(S.calls) do if c[1] == name then n = n + 1 end end
  return n
end

local impl = {}
local PROJ = { "project" }
function impl.GetOS() return S.os end
function impl.GetAppVersion() return "7.27/" .. S.os end
function impl.GetResourcePath() return S.resource end
function impl.GetProjectPath(buf) return S.projpath end
function impl.GetProjectName(proj, buf) return "film.rpp" end
function impl.EnumProjects(idx, buf) return PROJ, S.project_file end
function impl.TimeMap_curFrameRate(proj) return 24.0, false end
function impl.ShowConsoleMsg(msg) S.console[#S.console + 1] = msg end
function impl.ShowMessageBox(msg, title, kind) S.console[#S.console + 1] = msg; return S.msgbox_answer or 1 end
function impl.time_precise() return S.clock end
function impl.defer(fn) S.deferred[#S.deferred + 1] = fn end
function impl.atexit(fn) S.atexit = fn end
function impl.get_action_context() return false, S.action_path or "", 0, S.action_cmd or 12345, -1, -1, -1 end
function impl.set_action_options(flags) S.action_options = flags end
function impl.SetToggleCommandState(section, cmd, state) S.toggle[cmd] = state; return true end
function impl.RefreshToolbar2(section, cmd) end
function impl.AddRemoveReaScript(add, section, path, commit)
  if not S.script_ids[path] then
    S.next_cmd = S.next_cmd + 1
    S.script_ids[path] = S.next_cmd
    S.named[S.next_cmd] = string.format("RS%040x", S.next_cmd)
  end
  return S.script_ids[path]
end
function impl.ReverseNamedCommandLookup(cmd) return S.named[cmd] end
function impl.NamedCommandLookup(name)
  for cmd, named in pairs(S.named) do
    if "_" .. named == name then return cmd end
  end
  return 0
end
function impl.RecursiveCreateDirectory(path, ignored) py_makedirs(path); return 1 end
function impl.GetExtState(section, key) return S.ext[section .. "/" .. key] or "" end
function impl.SetExtState(section, key, value, persist) S.ext[section .. "/" .. key] = value end
function impl.GetProjExtState(proj, ext, key)
  local v = S.projext[ext .. "/" .. key]
  if v == nil then return 0, "" end
  return #v, v
end
function impl.SetProjExtState(proj, ext, key, value) S.projext[ext .. "/" .. key] = value; return 1 end
function impl.GetSet_LoopTimeRange2(proj, isSet, isLoop, s, e, seek) return S.sel_start, S.sel_end end
function impl.GetCursorPosition() return S.cursor end
function impl.GetUserInputs(title, n, captions, defaults) return S.user_ok, S.user_input end
function impl.Undo_BeginBlock2(proj) end
function impl.Undo_EndBlock2(proj, desc, flags) S.undo_points = (S.undo_points or 0) + 1; S.last_undo = desc end
function impl.PreventUIRefresh(n) end
function impl.UpdateArrange() end
function impl.UpdateTimeline() end
function impl.TrackList_AdjustWindows(minor) end
function impl.Main_OnCommand(cmd, flag) end
-- Tracks
function impl.CountTracks(proj) return #S.tracks end
function impl.GetTrack(proj, i) return S.tracks[i + 1] end
function impl.InsertTrackAtIndex(idx, defaults)
  local tr = { name = "", items = {}, info = { I_RECARM = 0, I_RECMON = 0, I_RECINPUT = -1 }, str = {}, fx = {}, guid = guid() }
  table.insert(S.tracks, idx + 1, tr)
end
function impl.GetSetMediaTrackInfo_String(tr, key, value, set)
  if key == "P_NAME" then
    if set then tr.name = value end
    return true, tr.name
  end
  if set then tr.str[key] = value end
  return tr.str[key] ~= nil, tr.str[key] or ""
end
function impl.GetMediaTrackInfo_Value(tr, key) return tr.info[key] or 0.0 end
function impl.SetMediaTrackInfo_Value(tr, key, value) tr.info[key] = value; return true end
function impl.GetTrackGUID(tr) return tr.guid end
function impl.TrackFX_AddByName(tr, name, rec, inst) tr.fx[#tr.fx + 1] = name; return #tr.fx - 1 end
-- Items, takes, sources
function impl.CountTrackMediaItems(tr) return #tr.items end
function impl.GetTrackMediaItem(tr, i) return tr.items[i + 1] end
function impl.GetActiveTake(item) return item.take end
function impl.GetMediaItemTake_Source(take) return take.source end
function impl.GetMediaSourceType(src, buf) return src.type end
function impl.GetMediaSourceFileName(src, buf) return src.file end
function impl.GetMediaSourceParent(src) return src.parent end
function impl.GetMediaSourceLength(src) return src.length, false end
function impl.GetMediaItemInfo_Value(item, key) return item.info[key] or 0.0 end
function impl.SetMediaItemInfo_Value(item, key, value) item.info[key] = value; return true end
function impl.GetMediaItemTakeInfo_Value(take, key) return take.info[key] or 0.0 end
function impl.GetSetMediaItemInfo_String(item, key, value, set)
  if key == "GUID" then return true, item.guid end
  if set then item.str[key] = value end
  return item.str[key] ~= nil, item.str[key] or ""
end
function impl.GetSetMediaItemTakeInfo_String(take, key, value, set)
  if set then take.str[key] = value end
  return take.str[key] ~= nil, take.str[key] or ""
end
function impl.AddMediaItemToTrack(tr)
  local item = { track = tr, info = { D_POSITION = 0.0, D_LENGTH = 0.0, B_MUTE = 0 }, str = {}, guid = guid() }
  tr.items[#tr.items + 1] = item
  return item
end
function impl.AddTakeToMediaItem(item)
  S.takes_added = (S.takes_added or 0) + 1
  if S.fail_take_at == S.takes_added then error("stub: cannot add a take") end
  local take = { info = { D_STARTOFFS = 0.0, D_PLAYRATE = 1.0 }, str = {} }
  item.take = take
  return take
end
function impl.SetMediaItemTake_Source(take, src) take.source = src; S.sources_live = S.sources_live - 1; return true end
function impl.PCM_Source_CreateFromFileEx(file, forcenoimport)
  if S.fail_source then error("stub: cannot create source") end
  if S.unreadable and file:find(S.unreadable, 1, true) then return nil end  -- REAPER's nil
  S.sources_live = (S.sources_live or 0) + 1
  return { type = "MIDI", file = file, length = 0.0 }
end
function impl.PCM_Source_Destroy(src) S.sources_live = S.sources_live - 1 end
function impl.DeleteTrack(tr)
  for i, t in ipairs(S.tracks) do
    if t == tr then table.remove(S.tracks, i); return end
  end
end
function impl.DeleteTrackMediaItem(tr, item)
  for i, it in ipairs(tr.items) do
    if it == item then table.remove(tr.items, i); return true end
  end
  return false
end
-- Markers and tempo
function impl.CountProjectMarkers(proj)
  local nm, nr = 0, 0
  for _, m in ipairs(S.marks) do if m.isrgn then nr = nr + 1 else nm = nm + 1 end end
  return nm + nr, nm, nr
end
function impl.EnumProjectMarkers3(proj, idx)
  local m = sorted_marks()[idx + 1]
  if not m then return 0, false, 0.0, 0.0, "", 0, 0 end
  return idx + 1, m.isrgn, m.pos, m.rend, m.name, m.number, 0
end
function impl.GetSetProjectInfo_String(proj, key, value, set)
  local idx = tonumber(key:match("^MARKER_GUID:(%d+)$"))
  local m = idx and sorted_marks()[idx + 1]
  if m then return true, m.guid end
  return false, ""
end
function impl.AddProjectMarker2(proj, isrgn, pos, rend, name, wantidx, color)
  local number = 0
  for _, m in ipairs(S.marks) do if m.isrgn == isrgn and m.number > number then number = m.number end end
  number = number + 1
  S.add_mark(isrgn, number, name, pos, rend)
  return number
end
function impl.CountTempoTimeSigMarkers(proj) return #S.tempo end
function impl.GetTempoTimeSigMarker(proj, i)
  local p = S.tempo[i + 1]
  if not p then return false, 0, 0, 0, 0, 0, 0, false end
  return true, p[1], 0, 0.0, p[2], p[3], p[4], p[5]
end
function impl.SetTempoTimeSigMarker(proj, idx, t, measure, beat, bpm, num, den, linear)
  local p = { t, bpm, num, den, linear }
  if idx < 0 then S.tempo[#S.tempo + 1] = p else S.tempo[idx + 1] = p end
  table.sort(S.tempo, function(a, b) return a[1] < b[1] end)
  return true
end
function impl.DeleteTempoTimeSigMarker(proj, i)
  if not S.tempo[i + 1] then return false end
  table.remove(S.tempo, i + 1)
  return true
end
function impl.TimeMap_GetTimeSigAtTime(proj, t) return S.default_ts[1], S.default_ts[2], S.default_ts[3] end
-- MIDI inputs
function impl.GetNumMIDIInputs() return #S.midi_inputs end
function impl.GetMIDIInputName(dev, buf)
  local name = S.midi_inputs[dev + 1]
  if not name or name == "" then return false, "" end
  return true, name
end

-- REAPER_API (name -> {min, max} Lua arguments) is generated from REAPER's own
-- reaper_plugin_functions.h (tests/data/reaper_api.json): a misspelt function or a wrong
-- argument count fails here, not in REAPER.
S.impl = impl
reaper = setmetatable({}, { __index = function(_, name)
  local range = REAPER_API[name]
  if range == nil then error("reaper stub: reaper." .. name .. " is not a REAPER API function", 2) end
  local f = impl[name]
  if f == nil then error("reaper stub: reaper." .. name .. " is not modelled", 2) end
  return function(...)
    local n = select("#", ...)
    if n < range[1] or n > range[2] then
      error(string.format("reaper stub: reaper.%s takes %d..%d arguments, got %d", name, range[1], range[2], n), 2)
    end
    S.calls[#S.calls + 1] = { name, ... }
    return f(...)
  end
end })
"""

API_FILE = Path(__file__).resolve().parent / "data" / "reaper_api.json"


def reaper_api() -> dict[str, tuple[int, int]]:
    """name -> (min, max) Lua arguments, from tests/data/reaper_api.json (scripts/gen_reaper_api.py)."""
    data = json.loads(API_FILE.read_text(encoding="utf-8"))
    return {k: tuple(v) for part in ("functions", "lua_only") for k, v in data[part].items()}


def _makedirs(path: str) -> None:
    # Like REAPER's RecursiveCreateDirectory: failure is a return value, not an error.
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        pass


class ReaperSim:
    """One Lua 5.4 state with the stub `reaper` and our scripts folder on package.path."""

    def __init__(self, tmp_path: Path, os_name: str = "linux-x86_64", lua_version: str = "5.4"):
        # REAPER >= 6.83 embeds Lua 5.4; 6.0-6.82 embed Lua 5.3, so the scripts must run on both.
        runtime = {"5.4": lua54, "5.3": lua53}[lua_version]
        self.lua = runtime.LuaRuntime(unpack_returned_tuples=True)
        assert self.lua.eval("_VERSION") == "Lua " + lua_version
        self.tmp = Path(tmp_path)
        g = self.lua.globals()
        g.py_makedirs = _makedirs
        g.REAPER_API = self.lua.table_from({k: self.lua.table_from(v) for k, v in reaper_api().items()})
        self.lua.execute(STUB)
        self.S = g.S
        self.S.os = os_name
        self.spool = self.tmp / "spool"
        self.S.env = self.lua.table_from({"EMSYNC_SPOOL": str(self.spool), "HOME": str(self.tmp / "home")})
        self.S.resource = str(self.tmp / "reaper-resource")
        self.S.projpath = str(self.tmp / "project-media")
        self.S.project_file = str(self.tmp / "film.rpp")
        g.package.path = str(SCRIPTS / "?.lua") + ";" + g.package.path

    def lib(self):
        m = self.lua.eval('(require("emsync_lib"))')
        m.script_dir = str(SCRIPTS) + "/"
        return m

    def run_script(self, filename: str) -> None:
        """Run an action file as REAPER does (chunk name = its path); Lua errors propagate."""
        self.lua.globals().dofile(str(SCRIPTS / filename))

    def console(self) -> str:
        return "".join(self.S.console.values())

    def clear_console(self) -> None:
        self.S.console = self.lua.table()

    def calls(self, name: str | None = None) -> list[tuple]:
        out = []
        for c in self.S.calls.values():
            args = tuple(c[i] for i in range(1, len(c) + 1))
            if name is None or args[0] == name:
                out.append(args)
        return out

    def clear_calls(self) -> None:
        self.S.calls = self.lua.table()

    def tracks(self) -> list[dict]:
        """Python view of the project's tracks and items."""
        out = []
        for tr in self.S.tracks.values():
            items = []
            for it in tr["items"].values():
                take = it["take"]
                src = take["source"] if take else None
                items.append({
                    "position": it["info"]["D_POSITION"],
                    "length": it["info"]["D_LENGTH"],
                    "tag": it["str"]["P_EXT:emsync"],
                    "file": src["file"] if src else None,
                    "take_name": take["str"]["P_NAME"] if take else None,
                })
            out.append({
                "name": tr["name"],
                "items": items,
                "fx": list(tr["fx"].values()),
                "info": dict(tr["info"].items()),
            })
        return out


# The small project every REAPER test uses -----------------------------------------------------

VIDEO_A = dict(position=2.0, length=30.0, take_offset=5.0, playrate=1.0)
VIDEO_B = dict(position=40.0, length=20.0, take_offset=1.5, playrate=2.0)
TEMPO = [  # (time, bpm, num, denom, linear): 120 bpm, ramp 120 -> 80 over 16..25.6 s, then 3/4
    (0.0, 120.0, 4, 4, False),
    (16.0, 120.0, 0, 0, True),  # 0/0: REAPER's "time signature unchanged"
    (25.6, 80.0, 3, 4, False),
]


def small_project(sim: ReaperSim) -> dict:
    """Build the stub project; returns the media paths."""
    media = sim.tmp / "media"
    media.mkdir(exist_ok=True)
    film = media / "film.mp4"
    broll = media / "b-roll.mov"
    dialog = media / "dialog.wav"
    for p in (film, broll, dialog):
        p.write_bytes(b"\0" * 16)
    S = sim.S
    video = S.add_track("Video")
    S.add_item(video, S.source("VIDEO", str(film), 95.0), VIDEO_A["position"], VIDEO_A["length"],
               VIDEO_A["take_offset"], VIDEO_A["playrate"])
    section = S.source("SECTION", "", 40.0, S.source("VIDEO", str(broll), 120.0))
    S.add_item(video, section, VIDEO_B["position"], VIDEO_B["length"], VIDEO_B["take_offset"], VIDEO_B["playrate"])
    S.add_item(video, S.source("VIDEO", str(film), 95.0), 70.0, 5.0, 0.0, 1.0, None, True)  # muted: ignored
    audio = S.add_track("Dialog")
    S.add_item(audio, S.source("WAVE", str(dialog), 60.0), 0.0, 60.0, 0.0, 1.0)
    piano = S.add_track("EmSync Piano")
    S.add_item(piano, S.source("MIDI", "", 58.0), 2.0, 58.0, 0.0, 1.0, "gen-old")
    S.add_item(piano, S.source("MIDI", "", 4.0), 10.0, 4.0, 0.0, 1.0)  # the user's own item: never touched
    bass = S.add_track("EmSync Bass")
    S.add_item(bass, S.source("MIDI", "", 58.0), 2.0, 58.0, 0.0, 1.0, "gen-old")
    keep = S.add_track("Strings mockup")  # tagged, but not on an EmSync track: left alone
    S.add_item(keep, S.source("MIDI", "", 20.0), 5.0, 20.0, 0.0, 1.0, "gen-old")
    S.add_mark(False, 1, "Scene 2", 12.0)
    S.add_mark(False, 2, "joy", 20.0)
    S.add_mark(False, 5, "emo V=0.5 a=-0.2", 45.0)
    S.add_mark(True, 1, "sadness", 30.0, 38.0)
    S.add_mark(True, 2, "Credits", 55.0, 60.0)
    for t, bpm, num, den, lin in TEMPO:
        S.add_tempo(t, bpm, num, den, lin)
    S.cursor = 47.0
    S.sel_start, S.sel_end = 10.0, 50.0
    return {"film": str(film), "broll": str(broll)}


@pytest.fixture(params=["5.4", "5.3"])  # REAPER >= 6.83 / REAPER 6.0-6.82
def sim(request, tmp_path):
    s = ReaperSim(tmp_path, lua_version=request.param)
    s.media = small_project(s)
    return s


def test_stub_rejects_unmodelled_api(tmp_path):
    s = ReaperSim(tmp_path)
    with pytest.raises(Exception, match="not a REAPER API function"):
        s.lua.execute("reaper.NoSuchFunction()")
    with pytest.raises(Exception, match="not modelled"):
        s.lua.execute("reaper.Audio_Init()")  # real, but the stub does not model it


def test_stub_checks_argument_counts_against_the_header(tmp_path):
    s = ReaperSim(tmp_path)
    s.lua.execute('reaper.AddRemoveReaScript(true, 0, "/x.lua", true)')
    with pytest.raises(Exception, match=r"AddRemoveReaScript takes 4\.\.4 arguments, got 3"):
        s.lua.execute('reaper.AddRemoveReaScript(true, 0, "/x.lua")')
    with pytest.raises(Exception, match="GetSet_LoopTimeRange2 takes 6..6 arguments, got 4"):
        s.lua.execute("reaper.GetSet_LoopTimeRange2(0, false, false, false)")


def test_every_modelled_function_is_in_reapers_header(tmp_path):
    s = ReaperSim(tmp_path)
    modelled = set(s.S.impl.keys())
    assert modelled and not modelled - set(reaper_api())
