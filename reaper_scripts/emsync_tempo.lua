-- @noindex
-- EmSync: the daemon's fitted tempo -> the project's tempo markers (the "Apply fitted tempo"
-- action). The daemon fits a tempo to the cuts (music/tempo_fit.py) and publishes it in
-- status.json as plan.fitted_tempo.tempo_map; this writes it into the project in one undo point,
-- asking first when the project already has tempo markers, then re-sends the project so the daemon
-- regenerates on the new grid. Kept apart from emsync_lib.lua; it takes the lib (M) as argument.

local T = {}

local MAX_BPM = 960.0 -- REAPER's own tempo limit
local MB_YESNO, IDYES = 4, 6

-- The fitted tempo map as a list of {time, bpm, num, denom, linear}, and the fit; or nil, message.
function T.fitted_tempo(M, spool)
  local path = M.join(spool, "status.json")
  local text = M.read_file(path)
  if not text then
    return nil, "no daemon status at " .. path .. ": start emsync-bridge bridge and send the project"
  end
  local st, err = M.json.decode(text)
  if type(st) ~= "table" then return nil, "unreadable daemon status: " .. tostring(err) end
  local plan = st.plan
  local fit = type(plan) == "table" and plan.fitted_tempo or nil
  if type(fit) ~= "table" or type(fit.tempo_map) ~= "table" or #fit.tempo_map == 0 then
    return nil, "the daemon has no fitted tempo yet: send the project first"
  end
  local points = {}
  for i, p in ipairs(fit.tempo_map) do
    local t, bpm = tonumber(p.time), tonumber(p.bpm)
    local num, den = tonumber(p.num) or 4, tonumber(p.denom) or 4
    if not (t and bpm and t >= 0 and bpm > 0 and bpm <= MAX_BPM and num >= 1 and den >= 1) then
      return nil, "the daemon's fitted tempo has a bad point " .. i
    end
    points[#points + 1] = { time = t, bpm = bpm, num = math.floor(num), denom = math.floor(den), linear = p.linear == true }
  end
  return points, fit
end

-- Replace the project's tempo markers with the fitted map. Returns true when applied.
function T.apply(M)
  local spool = M.spool()
  local points, fit = T.fitted_tempo(M, spool)
  if not points then
    M.msg(fit)
    return false
  end
  local n = reaper.CountTempoTimeSigMarkers(0)
  if n > 0 then
    local answer = reaper.ShowMessageBox(string.format(
      "Replace the project's %d tempo marker%s with the fitted tempo (%.2f BPM)?", n, n == 1 and "" or "s",
      points[1].bpm), "EmSync: Apply fitted tempo", MB_YESNO)
    if answer ~= IDYES then
      M.info("fitted tempo not applied: the project's tempo markers are unchanged")
      return false
    end
  end
  reaper.Undo_BeginBlock2(0)
  local ok, err = pcall(function()
    for i = n - 1, 0, -1 do reaper.DeleteTempoTimeSigMarker(0, i) end
    for _, p in ipairs(points) do
      reaper.SetTempoTimeSigMarker(0, -1, p.time, -1, -1, p.bpm, p.num, p.denom, p.linear)
    end
  end)
  reaper.UpdateTimeline()
  reaper.Undo_EndBlock2(0, "EmSync: apply fitted tempo", -1) -- closed once, error or not
  if not ok then error(err, 0) end
  M.send_project(true) -- the daemon regenerates on the new grid
  local median = tonumber(fit.median_cut_offset_ms)
  M.info(string.format("fitted tempo applied: %.2f BPM%s", points[1].bpm,
    median and string.format(" (cuts a median %.0f ms from their beats)", median) or ""))
  return true
end

return T
