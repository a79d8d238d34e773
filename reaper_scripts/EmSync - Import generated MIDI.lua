-- @noindex
-- EmSync: Import generated MIDI
-- A background watcher (toggle): imports each new generation from the spool's out/manifest.json
-- onto tracks named 'EmSync <Instrument>', replacing earlier EmSync items in one undo block.
-- Items not created by EmSync are never touched. Run again to stop it.
-- Part of emsync-bridge (REAPER >= 6, Lua 5.4); shared code lives in emsync_lib.lua next to this file.

local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = script_dir .. "?.lua;" .. package.path
local loaded, M = pcall(require, "emsync_lib")
if not loaded then
  reaper.ShowConsoleMsg("EmSync: cannot load emsync_lib.lua from " .. script_dir .. ": " .. tostring(M) .. "\n")
  return
end
M.script_dir = script_dir

if reaper.set_action_options then reaper.set_action_options(1) end -- re-running stops the watcher
M.run("Import generated MIDI", M.start_importer)
