-- @noindex
-- EmSync: Set emotion at cursor
-- Adds a marker named with an emotion (joy, sadness, anger, fear, disgust, surprise or
-- v=0.5 a=-0.2) at the edit cursor; the music follows it from there on.
-- Part of emsync-bridge (REAPER >= 6, Lua 5.4); shared code lives in emsync_lib.lua next to this file.

local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = script_dir .. "?.lua;" .. package.path
local loaded, M = pcall(require, "emsync_lib")
if not loaded then
  reaper.ShowConsoleMsg("EmSync: cannot load emsync_lib.lua from " .. script_dir .. ": " .. tostring(M) .. "\n")
  return
end
M.script_dir = script_dir

M.run("Set emotion at cursor", M.set_emotion_at_cursor)
