-- @noindex
-- EmSync: Live mode on/off
-- Toggle: arms a track 'EmSync Live' whose MIDI input is the 'EmSync Out' port (all channels),
-- with monitoring on, and tells the daemon to stream; off disarms it and returns to commit mode.
-- Part of emsync-bridge (REAPER >= 6, Lua 5.4); shared code lives in emsync_lib.lua next to this file.

local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = script_dir .. "?.lua;" .. package.path
local loaded, M = pcall(require, "emsync_lib")
if not loaded then
  reaper.ShowConsoleMsg("EmSync: cannot load emsync_lib.lua from " .. script_dir .. ": " .. tostring(M) .. "\n")
  return
end
M.script_dir = script_dir

M.run("Live mode on/off", M.toggle_live)
