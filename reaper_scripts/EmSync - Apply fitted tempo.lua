-- @noindex
-- EmSync: Apply fitted tempo
-- Writes the tempo the daemon fitted to the film's cuts (so they fall on beats) into the project
-- as tempo markers, in one undo point; asks before replacing existing tempo markers.
-- Part of emsync-bridge (REAPER >= 6, Lua 5.4); shared code lives in emsync_lib.lua next to this file.

local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = script_dir .. "?.lua;" .. package.path
local loaded, M = pcall(require, "emsync_lib")
if not loaded then
  reaper.ShowConsoleMsg("EmSync: cannot load emsync_lib.lua from " .. script_dir .. ": " .. tostring(M) .. "\n")
  return
end
M.script_dir = script_dir

M.run("Apply fitted tempo", function() return require("emsync_tempo").apply(M) end)
