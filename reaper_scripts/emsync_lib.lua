-- @noindex
-- emsync_lib.lua: shared code for the EmSync actions (REAPER >= 6, Lua 5.4).
--
-- The actions talk to the emsync-bridge daemon through a spool folder (docs/protocol.md):
-- Lua has no sockets, so every file is written to a dot-prefixed temp name and renamed into
-- place, and readers on both sides skip dot files. Nothing here raises into REAPER: actions
-- run through M.run, which turns any error into one console line.

local M = {}

M.VERSION = "0.1.0"
M.PROTOCOL_VERSION = 1
M.INSTRUMENTS = { "bass", "drums", "guitar", "piano", "strings" }
M.TRACK_PREFIX = "EmSync "
M.LIVE_TRACK = "EmSync Live"
M.LIVE_PORT = "EmSync Out"
M.ITEM_TAG = "P_EXT:emsync" -- item extension value = generation id; marks items we may replace
M.EXT = "EmSync" -- ExtState / ProjExtState section
M.MAX_JSON_BYTES = 8 * 1024 * 1024
M.POLL_S = 0.5 -- importer: seconds between manifest checks
M.ACTION_ALL_NOTES_OFF = 40345 -- "Send all-notes-off and all-sounds-off to all MIDI outputs/plug-ins"

-- Ekman-6 -> valence/arousal; the same table as emsync_bridge/timeline/timeline.py EMOTION_VA.
M.EMOTION_VA = {
  anger = { -0.651, 0.664 },
  disgust = { -0.754, 0.255 },
  fear = { -0.800, 0.681 },
  joy = { 0.800, 0.477 },
  sadness = { -0.789, -0.800 },
  surprise = { 0.389, 0.800 },
}

-- The action scripts, by the key the daemon sees in project.json "actions".
M.ACTION_FILES = {
  send_project = "EmSync - Send project.lua",
  import = "EmSync - Import generated MIDI.lua",
  live_mode = "EmSync - Live mode on-off.lua",
  regenerate = "EmSync - Regenerate from marker.lua",
  panic = "EmSync - Panic.lua",
  set_emotion = "EmSync - Set emotion at cursor.lua",
  setup = "EmSync - Setup (install OSC pattern file).lua",
  apply_tempo = "EmSync - Apply fitted tempo.lua", -- logic in emsync_tempo.lua
}

---------------------------------------------------------------------------------------------
-- JSON (REAPER ships none). Arrays are tables marked with json.array (so an empty list stays
-- "[]"); null is the json.null sentinel. decode returns value or nil, message; it never raises.

local json = {}
M.json = json

json.null = setmetatable({}, { __tostring = function() return "null" end })
local ARRAY_MT = { __jsontype = "array" }
local OBJECT_MT = { __jsontype = "object" }

function json.array(t) return setmetatable(t or {}, ARRAY_MT) end
function json.object(t) return setmetatable(t or {}, OBJECT_MT) end
function json.is_array(t) return type(t) == "table" and getmetatable(t) == ARRAY_MT end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- Replace invalid UTF-8 bytes with U+FFFD so the daemon's strict decoder accepts the file.
local function valid_utf8(s)
  if utf8.len(s) then return s end
  local out, i = {}, 1
  while i <= #s do
    local ok, bad = utf8.len(s, i)
    if ok then out[#out + 1] = s:sub(i); break end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = "\u{FFFD}"
    i = bad + 1
  end
  return table.concat(out)
end

local function encode_string(s)
  s = valid_utf8(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode_number(n)
  if math.type(n) == "integer" then return string.format("%d", n) end
  if n ~= n or n == math.huge or n == -math.huge then
    error("json: cannot encode " .. tostring(n))
  end
  -- Shortest text that reads back as the same double.
  for _, fmt in ipairs({ "%.15g", "%.16g", "%.17g" }) do
    local s = string.format(fmt, n)
    if tonumber(s) == n then return s end
  end
  return string.format("%.17g", n)
end

local function is_sequence(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  for i = 1, n do if t[i] == nil then return false end end
  return n > 0
end

local encode_value

local function encode_table(t, depth)
  if depth > 100 then error("json: nesting too deep") end
  local mt = getmetatable(t)
  local parts = {}
  if mt == ARRAY_MT or (mt ~= OBJECT_MT and is_sequence(t)) then
    for i = 1, #t do parts[i] = encode_value(t[i], depth + 1) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then error("json: object key must be a string, got " .. type(k)) end
    keys[#keys + 1] = k
  end
  table.sort(keys) -- deterministic output
  for i, k in ipairs(keys) do
    parts[i] = encode_string(k) .. ":" .. encode_value(t[k], depth + 1)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

encode_value = function(v, depth)
  local tv = type(v)
  if v == nil or v == json.null then return "null"
  elseif tv == "boolean" then return v and "true" or "false"
  elseif tv == "number" then return encode_number(v)
  elseif tv == "string" then return encode_string(v)
  elseif tv == "table" then return encode_table(v, depth)
  end
  error("json: cannot encode a " .. tv)
end

function json.encode(v) return encode_value(v, 0) end

-- Decoder: a recursive-descent parser over the string; errors are raised internally with the
-- byte offset and caught in json.decode.
local decode_value

local function decode_error(pos, msg)
  error({ json_error = string.format("%s at byte %d", msg, pos) }, 0)
end

local function skip_ws(s, pos)
  return s:find("[^ \t\r\n]", pos) or (#s + 1)
end

local function decode_string(s, pos)
  -- s:sub(pos, pos) == '"'
  local out, i = {}, pos + 1
  while true do
    local j = s:find('["\\\0-\31]', i)
    if not j then decode_error(pos, "unterminated string (half-written?)") end
    out[#out + 1] = s:sub(i, j - 1)
    local c = s:sub(j, j)
    if c == '"' then return table.concat(out), j + 1 end
    if c ~= "\\" then decode_error(j, "control character in string") end
    local e = s:sub(j + 1, j + 1)
    local simple = ({ ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" })[e]
    if simple then
      out[#out + 1] = simple
      i = j + 2
    elseif e == "u" then
      local hex = s:match("^%x%x%x%x", j + 2)
      if not hex then decode_error(j, "bad \\u escape") end
      local cp = tonumber(hex, 16)
      i = j + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = s:match("^\\u(%x%x%x%x)", i)
        local lo_cp = lo and tonumber(lo, 16)
        if not lo_cp or lo_cp < 0xDC00 or lo_cp > 0xDFFF then decode_error(j, "lone surrogate") end
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo_cp - 0xDC00)
        i = i + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        decode_error(j, "lone surrogate")
      end
      out[#out + 1] = utf8.char(cp)
    else
      decode_error(j, "bad escape")
    end
  end
end

local function decode_number(s, pos)
  local j = pos
  if s:sub(j, j) == "-" then j = j + 1 end
  local c = s:sub(j, j)
  if c == "0" then
    j = j + 1
  else
    local _, e = s:find("^[1-9]%d*", j)
    if not e then decode_error(pos, "bad number") end
    j = e + 1
  end
  if s:sub(j, j) == "." then
    local _, e = s:find("^%d+", j + 1)
    if not e then decode_error(pos, "bad number") end
    j = e + 1
  end
  c = s:sub(j, j)
  if c == "e" or c == "E" then
    j = j + 1
    c = s:sub(j, j)
    if c == "+" or c == "-" then j = j + 1 end
    local _, e = s:find("^%d+", j)
    if not e then decode_error(pos, "bad number") end
    j = e + 1
  end
  local v = tonumber(s:sub(pos, j - 1))
  if v == nil then decode_error(pos, "bad number") end
  return v, j
end

local function decode_array(s, pos, depth)
  local arr = json.array({})
  pos = skip_ws(s, pos + 1)
  if s:sub(pos, pos) == "]" then return arr, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, depth + 1)
    arr[#arr + 1] = v
    pos = skip_ws(s, pos)
    local c = s:sub(pos, pos)
    if c == "]" then return arr, pos + 1 end
    if c ~= "," then decode_error(pos, c == "" and "unexpected end (half-written?)" or "expected ',' or ']'") end
    pos = skip_ws(s, pos + 1)
  end
end

local function decode_object(s, pos, depth)
  local obj = json.object({})
  pos = skip_ws(s, pos + 1)
  if s:sub(pos, pos) == "}" then return obj, pos + 1 end
  while true do
    if s:sub(pos, pos) ~= '"' then
      decode_error(pos, pos > #s and "unexpected end (half-written?)" or "expected a string key")
    end
    local k
    k, pos = decode_string(s, pos)
    pos = skip_ws(s, pos)
    if s:sub(pos, pos) ~= ":" then decode_error(pos, pos > #s and "unexpected end (half-written?)" or "expected ':'") end
    local v
    v, pos = decode_value(s, skip_ws(s, pos + 1), depth + 1)
    obj[k] = v
    pos = skip_ws(s, pos)
    local c = s:sub(pos, pos)
    if c == "}" then return obj, pos + 1 end
    if c ~= "," then decode_error(pos, c == "" and "unexpected end (half-written?)" or "expected ',' or '}'") end
    pos = skip_ws(s, pos + 1)
  end
end

decode_value = function(s, pos, depth)
  if depth > 100 then decode_error(pos, "nesting too deep") end
  pos = skip_ws(s, pos)
  local c = s:sub(pos, pos)
  if c == "{" then return decode_object(s, pos, depth)
  elseif c == "[" then return decode_array(s, pos, depth)
  elseif c == '"' then return decode_string(s, pos)
  elseif c == "-" or c:match("%d") then return decode_number(s, pos)
  elseif s:sub(pos, pos + 3) == "true" then return true, pos + 4
  elseif s:sub(pos, pos + 4) == "false" then return false, pos + 5
  elseif s:sub(pos, pos + 3) == "null" then return json.null, pos + 4
  elseif c == "" then decode_error(pos, "unexpected end (half-written?)")
  end
  decode_error(pos, "unexpected character")
end

function json.decode(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local ok, v, pos = pcall(function()
    local v, pos = decode_value(s, 1, 0)
    pos = skip_ws(s, pos)
    if pos <= #s then decode_error(pos, "trailing characters") end
    return v, pos
  end)
  if ok then return v, nil end
  if type(v) == "table" and v.json_error then return nil, v.json_error end
  return nil, tostring(v)
end

---------------------------------------------------------------------------------------------
-- Messages and running actions

function M.msg(text)
  reaper.ShowConsoleMsg("EmSync: " .. tostring(text) .. "\n")
end

-- Success news; silenced with ExtState EmSync/quiet = "1" (problems always print), since every
-- console line brings REAPER's console window to the front.
function M.info(text)
  if reaper.GetExtState(M.EXT, "quiet") == "1" then return end
  M.msg(text)
end

-- Run an action body; any Lua error becomes one console line instead of REAPER's error box.
function M.run(name, fn, ...)
  M.remember_own_action_id()
  local args = table.pack(...)
  local ok, err = xpcall(function() return fn(table.unpack(args, 1, args.n)) end, debug.traceback)
  if not ok then
    M.msg(name .. " failed: " .. tostring(err):match("^[^\n]*"))
    return nil
  end
  return true
end

function M.now_iso()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

-- Lua 5.4 seeds math.random itself; REAPER before 6.83 runs Lua 5.3, which does not, and
-- project ids and request ids must differ between runs.
if _VERSION ~= "Lua 5.4" and reaper and reaper.time_precise then
  math.randomseed(math.floor(reaper.time_precise() * 1e6) ~ os.time())
end

local id_counter = 0
-- Ids sort by creation time (ms), then a per-run counter and a random tail for uniqueness.
function M.new_id()
  id_counter = id_counter + 1
  local ms = os.time() * 1000 + math.floor((reaper.time_precise() * 1000) % 1000)
  return string.format("%013d-%03d%04x", ms, id_counter % 1000, math.random(0, 0xffff))
end

---------------------------------------------------------------------------------------------
-- Paths and files

function M.os_family(osname)
  osname = osname or (reaper and reaper.GetOS and reaper.GetOS()) or ""
  if osname:sub(1, 3) == "Win" then return "windows" end
  if osname:sub(1, 3) == "OSX" or osname:sub(1, 5) == "macOS" then return "macos" end
  return "posix"
end

function M.sep(osname)
  return M.os_family(osname) == "windows" and "\\" or "/"
end

function M.join(...)
  local sep = M.sep()
  local parts = { ... }
  local out = parts[1]
  for i = 2, #parts do
    if out:sub(-1) == sep or out:sub(-1) == "/" then out = out .. parts[i] else out = out .. sep .. parts[i] end
  end
  return out
end

local function is_abs(path, family)
  if family == "windows" then
    -- "C:\..." or a UNC path "\\server\share"; "\foo" is relative to the current drive.
    return path:match("^%a:[\\/]") ~= nil or path:match("^[\\/][\\/]") ~= nil
  end
  return path:sub(1, 1) == "/"
end

-- The spool folder, resolved exactly like emsync_bridge.timeline.spool.spool_dir_string:
-- $EMSYNC_SPOOL (absolute), else Windows %LOCALAPPDATA%\emsync-bridge\spool
-- (%USERPROFILE%\AppData\Local\... without it), macOS ~/Library/Application Support/emsync-bridge/spool,
-- others $XDG_DATA_HOME/emsync-bridge/spool if absolute, else ~/.local/share/emsync-bridge/spool.
-- Returns path or nil, message.
function M.spool_dir(getenv, osname)
  getenv = getenv or os.getenv
  local family = M.os_family(osname)
  local function env(k)
    local v = getenv(k)
    if v == nil then return "" end
    return v
  end
  local explicit = env("EMSYNC_SPOOL")
  if explicit ~= "" then
    if not is_abs(explicit, family) then
      return nil, "EMSYNC_SPOOL must be an absolute path, got '" .. explicit .. "'"
    end
    local stripped = family == "windows" and explicit:gsub("[/\\]+$", "") or explicit:gsub("/+$", "")
    if stripped == "" or stripped:sub(-1) == ":" then return explicit, nil end
    return stripped, nil
  end
  if family == "windows" then
    local base = env("LOCALAPPDATA")
    if base == "" then
      local profile = env("USERPROFILE")
      if profile == "" then return nil, "cannot find the spool folder: set EMSYNC_SPOOL (no LOCALAPPDATA or USERPROFILE)" end
      base = profile .. "\\AppData\\Local"
    end
    return base .. "\\emsync-bridge\\spool", nil
  end
  local home = env("HOME")
  if family == "macos" then
    if home == "" then return nil, "cannot find the spool folder: set EMSYNC_SPOOL (no HOME)" end
    return home .. "/Library/Application Support/emsync-bridge/spool", nil
  end
  local xdg = env("XDG_DATA_HOME")
  local base
  if xdg:sub(1, 1) == "/" then
    base = xdg
  elseif home ~= "" then
    base = home .. "/.local/share"
  else
    return nil, "cannot find the spool folder: set EMSYNC_SPOOL (no HOME)"
  end
  return base .. "/emsync-bridge/spool", nil
end

-- The spool folder, created with its subfolders; raises with a clear message if impossible.
function M.spool()
  local dir, err = M.spool_dir()
  if not dir then error(err, 0) end
  for _, sub in ipairs({ "", "requests", "out" }) do
    local p = sub == "" and dir or M.join(dir, sub)
    reaper.RecursiveCreateDirectory(p, 0)
  end
  return dir
end

-- A spool-relative path from the daemon ('/' separators) -> absolute path, or nil, message.
-- Same rules as spool.check_relative_path: no absolute paths, drive letters, backslashes,
-- '.', '..' or empty parts, so a manifest can never point outside the spool.
function M.spool_file(spool, rel)
  if type(rel) ~= "string" or rel == "" or #rel > 4096 then return nil, "bad spool path" end
  if rel:find("[\\:%z]") or rel:sub(1, 1) == "/" then
    return nil, "spool path must be relative with '/' separators: " .. rel
  end
  local parts = {}
  for part in (rel .. "/"):gmatch("([^/]*)/") do
    if part == "" or part == "." or part == ".." then
      return nil, "spool path must not contain '..', '.' or empty parts: " .. rel
    end
    parts[#parts + 1] = part
  end
  return M.join(spool, table.unpack(parts))
end

function M.read_file(path, max_bytes)
  max_bytes = max_bytes or M.MAX_JSON_BYTES
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local size = f:seek("end")
  if size and size > max_bytes then
    f:close()
    return nil, string.format("too large (%d bytes)", size)
  end
  f:seek("set", 0)
  local data = f:read("a")
  f:close()
  if data == nil then return nil, "unreadable" end
  return data
end

function M.file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- Write `text` so readers see the old file or the whole new one: a dot-prefixed temp file in
-- the same folder, then rename. Windows cannot rename onto an existing file, so there the old
-- file is removed first (readers then briefly see no file, which they treat as "nothing new").
function M.write_file_atomic(path, text)
  local dir, name = path:match("^(.*[/\\])([^/\\]+)$")
  if not dir then dir, name = "", path end
  local tmp = string.format("%s.%s.%s.tmp", dir, name, M.new_id())
  local f, err = io.open(tmp, "wb")
  if not f then return nil, "cannot write " .. tmp .. ": " .. tostring(err) end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok or not cok then
    os.remove(tmp)
    return nil, "cannot write " .. tmp .. ": " .. tostring(werr or cerr)
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(path)
    rok, rerr = os.rename(tmp, path)
  end
  if not rok then
    os.remove(tmp)
    return nil, "cannot rename onto " .. path .. ": " .. tostring(rerr)
  end
  return true
end

function M.write_json_atomic(path, value)
  return M.write_file_atomic(path, json.encode(value) .. "\n")
end

function M.copy_file(src, dst)
  local data, err = M.read_file(src, 256 * 1024 * 1024)
  if not data then return nil, "cannot read " .. src .. ": " .. tostring(err) end
  return M.write_file_atomic(dst, data)
end

---------------------------------------------------------------------------------------------
-- Emotions: the grammar of emsync_bridge.timeline.timeline.parse_emotion

local function valid_num(s)
  return s:match("^[+-]?%d+%.?%d*$") ~= nil or s:match("^[+-]?%.%d+$") ~= nil
end

-- Returns {valence=, arousal=, label=} or nil. `joy`... or `v=0.5 a=-0.2` (either order),
-- case-insensitive, optional `emo `/`emo:`/`emotion ` prefix; v and a must be in [-1, 1].
function M.parse_emotion(name)
  if type(name) ~= "string" then return nil end
  local s = name:lower():match("^%s*(.-)%s*$")
  local rest = s:match("^emotion[%s:]+(.*)$") or s:match("^emo[%s:]+(.*)$")
  if rest then s = rest:match("^%s*(.-)%s*$") end
  local va = M.EMOTION_VA[s]
  if va then return { valence = va[1], arousal = va[2], label = s } end
  local v, a = s:match("^v%s*=%s*([^%s,;]+)[%s,;]+a%s*=%s*([^%s,;]+)$")
  if not v then
    a, v = s:match("^a%s*=%s*([^%s,;]+)[%s,;]+v%s*=%s*([^%s,;]+)$")
  end
  if not v or not valid_num(v) or not valid_num(a) then return nil end
  v, a = tonumber(v), tonumber(a)
  if not v or not a or v < -1 or v > 1 or a < -1 or a > 1 then return nil end
  return { valence = v + 0.0, arousal = a + 0.0, label = "" }
end

-- The marker name "Set emotion at cursor" writes; parse_emotion reads it back.
function M.emotion_marker_name(e)
  if e.label ~= "" then return "emo " .. e.label end
  return string.format("emo v=%.2f a=%.2f", e.valence, e.arousal)
end

---------------------------------------------------------------------------------------------
-- Reading the project

local function track_name(tr)
  local _, name = reaper.GetSetMediaTrackInfo_String(tr, "P_NAME", "", false)
  return name or ""
end

function M.track_name_for(instrument)
  return M.TRACK_PREFIX .. instrument:sub(1, 1):upper() .. instrument:sub(2)
end

function M.find_track(name)
  local want = name:lower()
  for i = 0, reaper.CountTracks(0) - 1 do
    local tr = reaper.GetTrack(0, i)
    if track_name(tr):lower() == want then return tr, i end
  end
  return nil
end

-- A random id kept in the project, so a manifest generated for another project is refused.
function M.project_id()
  local _, id = reaper.GetProjExtState(0, M.EXT, "project_id")
  if not id or id == "" then
    id = string.format("%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
    reaper.SetProjExtState(0, M.EXT, "project_id", id)
  end
  return id
end

local function item_guid(item)
  local _, guid = reaper.GetSetMediaItemInfo_String(item, "GUID", "", false)
  return guid or ""
end

function M.collect_video_items()
  local items = json.array({})
  for t = 0, reaper.CountTracks(0) - 1 do
    local tr = reaper.GetTrack(0, t)
    for i = 0, reaper.CountTrackMediaItems(tr) - 1 do
      local item = reaper.GetTrackMediaItem(tr, i)
      local take = reaper.GetActiveTake(item)
      local muted = reaper.GetMediaItemInfo_Value(item, "B_MUTE") == 1
      if take and not muted then
        local src = reaper.GetMediaItemTake_Source(take)
        local kind = src and reaper.GetMediaSourceType(src, "") or ""
        -- A section (or reversed) source wraps the file's own source.
        local guard = 0
        while kind == "SECTION" and guard < 8 do
          src = reaper.GetMediaSourceParent(src)
          kind = src and reaper.GetMediaSourceType(src, "") or ""
          guard = guard + 1
        end
        if kind == "VIDEO" then
          local file = reaper.GetMediaSourceFileName(src, "")
          local src_len = reaper.GetMediaSourceLength(src)
          items[#items + 1] = {
            file = file,
            position = reaper.GetMediaItemInfo_Value(item, "D_POSITION"),
            length = reaper.GetMediaItemInfo_Value(item, "D_LENGTH"),
            take_offset = reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"),
            playrate = reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"),
            track_index = t,
            track_name = track_name(tr),
            guid = item_guid(item),
            source_length = src_len,
          }
        end
      end
    end
  end
  table.sort(items, function(a, b) return a.position < b.position end)
  return items
end

function M.collect_markers()
  local markers, regions = json.array({}), json.array({})
  local _, nm, nr = reaper.CountProjectMarkers(0)
  local limit = (nm or 0) + (nr or 0)
  local i = 0
  while i < limit + 1 do
    local ret, isrgn, pos, rgnend, name, number = reaper.EnumProjectMarkers3(0, i)
    if not ret or ret == 0 then break end
    local guid = ""
    if reaper.GetSetProjectInfo_String then
      local ok, g = reaper.GetSetProjectInfo_String(0, "MARKER_GUID:" .. i, "", false)
      if ok then guid = g end
    end
    if isrgn then
      regions[#regions + 1] = { index = number, name = name or "", position = pos, ["end"] = rgnend, guid = guid }
    else
      markers[#markers + 1] = { index = number, name = name or "", position = pos, guid = guid }
    end
    i = i + 1
  end
  return markers, regions
end

-- Every tempo/time-signature marker, with the time signature carried forward (REAPER reports
-- 0 for "unchanged") and a point at 0 when the first marker is later (the project tempo).
function M.collect_tempo_map()
  local points = json.array({})
  local num, den, bpm0 = reaper.TimeMap_GetTimeSigAtTime(0, 0)
  local n = reaper.CountTempoTimeSigMarkers(0)
  for i = 0, n - 1 do
    local ok, timepos, _, _, bpm, tsn, tsd, linear = reaper.GetTempoTimeSigMarker(0, i)
    if ok then
      if #points == 0 and timepos > 0 then
        points[1] = { time = 0.0, bpm = bpm0, num = num, denom = den, linear = false }
      end
      if tsn and tsn > 0 and tsd and tsd > 0 then num, den = tsn, tsd end
      points[#points + 1] = { time = timepos, bpm = bpm, num = num, denom = den, linear = linear and true or false }
    end
  end
  if #points == 0 then
    points[1] = { time = 0.0, bpm = bpm0, num = num, denom = den, linear = false }
  end
  return points
end

function M.collect_target_tracks()
  local out = json.array({})
  local known = {}
  for _, inst in ipairs(M.INSTRUMENTS) do known[inst] = true end
  for i = 0, reaper.CountTracks(0) - 1 do
    local tr = reaper.GetTrack(0, i)
    local name = track_name(tr)
    local inst = name:lower():match("^emsync%s+(%a+)$")
    if inst and known[inst] then
      out[#out + 1] = { instrument = inst, name = name, index = i, guid = reaper.GetTrackGUID(tr) }
    end
  end
  return out
end

-- "_RS..." named command ids of our actions, listed in project.json for the user's own OSC
-- devices. Each id is found once and kept (ExtState EmSync/action_<key>, persisted):
-- - an action records its own id whenever it runs (get_action_context);
-- - ids still unknown are registered in one go, AddRemoveReaScript with commit only on the last
--   call (REAPER writes reaper-kb.ini then), and never again while the id still resolves;
-- - scripts ReaPack installed are registered by ReaPack: we never register those.
local function action_key_of(path)
  local file = tostring(path or ""):match("([^/\\]+)$")
  for key, f in pairs(M.ACTION_FILES) do
    if f == file then return key end
  end
end

local function keep_action_id(key, cmd)
  local named = cmd and cmd ~= 0 and reaper.ReverseNamedCommandLookup(cmd)
  if not named or named == "" then return nil end
  if named:sub(1, 1) ~= "_" then named = "_" .. named end
  if reaper.GetExtState(M.EXT, "action_" .. key) ~= named then
    reaper.SetExtState(M.EXT, "action_" .. key, named, true)
  end
  return named
end

function M.remember_own_action_id()
  local ok, _, path, _, cmd = pcall(reaper.get_action_context)
  local key = ok and action_key_of(path)
  if key then keep_action_id(key, cmd) end
end

-- ReaPack installs into <resource>/Scripts/<repository>/<category>/ (index.xml: emsync-bridge, MIDI).
function M.installed_by_reapack(dir)
  local d = tostring(dir or M.script_dir or ""):gsub("\\", "/"):lower()
  return d:find("/scripts/emsync%-bridge/midi/$") ~= nil
end

function M.action_ids()
  local ids, missing = json.object({}), {}
  local keys = {}
  for key in pairs(M.ACTION_FILES) do keys[#keys + 1] = key end
  table.sort(keys)
  for _, key in ipairs(keys) do
    local named = reaper.GetExtState(M.EXT, "action_" .. key)
    if named ~= "" and reaper.NamedCommandLookup(named) ~= 0 then
      ids[key] = named
    elseif M.file_exists((M.script_dir or "") .. M.ACTION_FILES[key]) then
      missing[#missing + 1] = key
    end
  end
  if #missing == 0 or M.installed_by_reapack() then return ids end
  for i, key in ipairs(missing) do
    local cmd = reaper.AddRemoveReaScript(true, 0, (M.script_dir or "") .. M.ACTION_FILES[key], i == #missing)
    ids[key] = keep_action_id(key, cmd)
  end
  return ids
end

function M.collect_project_state()
  local markers, regions = M.collect_markers()
  local sel_start, sel_end = reaper.GetSet_LoopTimeRange2(0, false, false, 0, 0, false)
  local _, project_file = reaper.EnumProjects(-1, "")
  local fps = reaper.TimeMap_curFrameRate(0)
  return {
    version = M.PROTOCOL_VERSION,
    kind = "emsync.project",
    written_at = M.now_iso(),
    reaper = { version = reaper.GetAppVersion(), os = reaper.GetOS(), scripts = M.VERSION },
    project = { name = reaper.GetProjectName(0, ""), file = project_file or "", id = M.project_id() },
    video_items = M.collect_video_items(),
    markers = markers,
    regions = regions,
    tempo_map = M.collect_tempo_map(),
    time_selection = (sel_end > sel_start) and { start = sel_start, ["end"] = sel_end } or json.null,
    cursor = reaper.GetCursorPosition(),
    target_tracks = M.collect_target_tracks(),
    frame_rate = (fps and fps > 0) and fps or json.null,
    actions = M.action_ids(),
  }
end

-- "EmSync: Send project": write project.json. Returns the path.
function M.send_project(quiet)
  local spool = M.spool()
  local state = M.collect_project_state()
  local path = M.join(spool, "project.json")
  local ok, err = M.write_json_atomic(path, state)
  if not ok then error(err, 0) end
  if not quiet then
    M.info(string.format("project sent (%d video items, %d markers, %d regions, %d tempo points) to %s",
      #state.video_items, #state.markers, #state.regions, #state.tempo_map, path))
  end
  return path, state
end

-- Drop a request for the daemon into requests/. Returns the path.
function M.write_request(rtype, fields)
  local spool = M.spool()
  local req = { version = M.PROTOCOL_VERSION, kind = "emsync.request", type = rtype,
                id = M.new_id(), written_at = M.now_iso() }
  for k, v in pairs(fields or {}) do req[k] = v end
  local path = M.join(spool, "requests", req.id .. "-" .. rtype .. ".json")
  local ok, err = M.write_json_atomic(path, req)
  if not ok then error(err, 0) end
  return path, req
end

---------------------------------------------------------------------------------------------
-- Actions that ask the daemon for something

-- The nearest marker at or left of `t` (regions are not markers here), or nil.
function M.marker_left_of(t)
  local markers = M.collect_markers()
  local found
  for _, m in ipairs(markers) do
    if m.position <= t + 1e-9 and (not found or m.position >= found.position) then found = m end
  end
  return found
end

function M.regenerate_from_marker()
  local cursor = reaper.GetCursorPosition()
  local m = M.marker_left_of(cursor)
  M.send_project(true) -- the daemon should regenerate against what the user sees now
  local fields = { time = m and m.position or 0.0, marker_index = m and m.index or json.null }
  local path = M.write_request("regenerate", fields)
  if m then
    M.info(string.format("regenerate from marker %d '%s' at %.3f s requested", m.index, m.name, m.position))
  else
    M.info("no marker left of the edit cursor: regenerate from the start requested")
  end
  return path
end

function M.panic()
  reaper.Main_OnCommand(M.ACTION_ALL_NOTES_OFF, 0)
  local path = M.write_request("panic", {})
  M.info("panic: all notes off")
  return path
end

function M.set_emotion_at_cursor(input)
  if input == nil then
    local ok, text = reaper.GetUserInputs("EmSync: Set emotion at cursor", 1,
      "Emotion (joy sadness anger fear disgust surprise or v=0.5 a=-0.2):,extrawidth=160", "joy")
    if not ok then return nil end
    input = text
  end
  local e = M.parse_emotion(input)
  if not e then
    M.msg("'" .. tostring(input) .. "' is not an emotion: use joy, sadness, anger, fear, disgust, surprise or v=0.5 a=-0.2 (each in -1..1)")
    return nil
  end
  local name = M.emotion_marker_name(e)
  e = M.parse_emotion(name) -- the request carries exactly what the marker says
  local cursor = reaper.GetCursorPosition()
  reaper.Undo_BeginBlock2(0)
  local index = reaper.AddProjectMarker2(0, false, cursor, 0, name, -1, 0)
  reaper.Undo_EndBlock2(0, "EmSync: set emotion at cursor", -1)
  reaper.UpdateTimeline()
  M.send_project(true)
  local path = M.write_request("set_emotion", { time = cursor, valence = e.valence, arousal = e.arousal,
                                                label = e.label, marker_index = index })
  M.info(string.format("emotion '%s' set at %.3f s", name, cursor))
  return path
end

---------------------------------------------------------------------------------------------
-- Live mode

function M.find_midi_input(name)
  local want = name:lower()
  for dev = 0, reaper.GetNumMIDIInputs() - 1 do
    local ok, dev_name = reaper.GetMIDIInputName(dev, "")
    if ok and dev_name and dev_name:lower():find(want, 1, true) then return dev, dev_name end
  end
  return nil
end

local function set_toggle(on)
  if reaper.set_action_options then
    reaper.set_action_options(on and 4 or 8)
  else
    local _, _, section, cmd = reaper.get_action_context()
    reaper.SetToggleCommandState(section, cmd, on and 1 or 0)
    reaper.RefreshToolbar2(section, cmd)
  end
end
M.set_toggle = set_toggle

-- Toggle: on = a track "EmSync Live" whose MIDI input is the "EmSync Out" port (all channels),
-- armed with monitoring; off = disarmed. Returns true (on), false (off) or nil (not possible).
function M.toggle_live()
  local tr = M.find_track(M.LIVE_TRACK)
  if tr and reaper.GetMediaTrackInfo_Value(tr, "I_RECARM") == 1 then
    reaper.Undo_BeginBlock2(0)
    reaper.SetMediaTrackInfo_Value(tr, "I_RECARM", 0)
    reaper.SetMediaTrackInfo_Value(tr, "I_RECMON", 0)
    reaper.Undo_EndBlock2(0, "EmSync: live mode off", -1)
    reaper.Main_OnCommand(M.ACTION_ALL_NOTES_OFF, 0)
    M.write_request("set_mode", { mode = "commit" })
    set_toggle(false)
    M.info("live mode off")
    return false
  end
  local dev, dev_name = M.find_midi_input(M.LIVE_PORT)
  if not dev then
    M.msg("no MIDI input named '" .. M.LIVE_PORT .. "'. Start the daemon in live mode (macOS/Linux create the port), "
      .. "or on Windows create a loopMIDI port named '" .. M.LIVE_PORT .. "'; then enable it for input in "
      .. "Preferences > Audio > MIDI Devices and run this again.")
    return nil
  end
  if dev > 61 then -- 6 bits of device index; 62 and 63 mean VKB and "all inputs"
    M.msg("MIDI input '" .. dev_name .. "' has index " .. dev .. ", too high for a track input")
    return nil
  end
  reaper.Undo_BeginBlock2(0)
  if not tr then
    local idx = reaper.CountTracks(0)
    reaper.InsertTrackAtIndex(idx, true)
    tr = reaper.GetTrack(0, idx)
    reaper.GetSetMediaTrackInfo_String(tr, "P_NAME", M.LIVE_TRACK, true)
  end
  reaper.SetMediaTrackInfo_Value(tr, "I_RECINPUT", 4096 + dev * 32 + 0) -- MIDI, device, all channels
  reaper.SetMediaTrackInfo_Value(tr, "I_RECMODE", 0) -- record the input if the user records
  reaper.SetMediaTrackInfo_Value(tr, "I_RECARM", 1)
  reaper.SetMediaTrackInfo_Value(tr, "I_RECMON", 1)
  reaper.Undo_EndBlock2(0, "EmSync: live mode on", -1)
  reaper.TrackList_AdjustWindows(false)
  M.send_project(true)
  M.write_request("set_mode", { mode = "live" })
  set_toggle(true)
  M.info("live mode on: track '" .. M.LIVE_TRACK .. "' listens to '" .. dev_name .. "' (all channels)")
  return true
end

---------------------------------------------------------------------------------------------
-- Importing generated MIDI (commit mode)

local ID_PATTERN = "^[%w_%.%-]+$"

-- Parse and check out/manifest.json text; returns manifest or nil, message.
function M.parse_manifest(text)
  local d, err = json.decode(text)
  if not d then return nil, "not valid JSON (" .. err .. ")" end
  if type(d) ~= "table" or json.is_array(d) then return nil, "not a JSON object" end
  if d.version ~= M.PROTOCOL_VERSION then
    return nil, "version " .. tostring(d.version) .. " is not " .. M.PROTOCOL_VERSION .. "; update the scripts and emsync-bridge together"
  end
  if d.kind ~= nil and d.kind ~= "emsync.manifest" then return nil, "kind is not emsync.manifest" end
  local gen = d.generation_id
  if type(gen) ~= "string" or #gen > 64 or not gen:match(ID_PATTERN) or gen:sub(1, 1) == "." then
    return nil, "bad generation_id"
  end
  local replace_from = d.replace_from
  if replace_from == json.null then replace_from = nil end
  if replace_from ~= nil and (type(replace_from) ~= "number" or replace_from ~= replace_from or replace_from < 0) then
    return nil, "bad replace_from"
  end
  local project_id = d.project_id
  if project_id == json.null or project_id == "" then project_id = nil end
  if project_id ~= nil and type(project_id) ~= "string" then return nil, "bad project_id" end
  if not json.is_array(d.items) then return nil, "items must be an array" end
  if #d.items > 256 then return nil, "too many items" end
  local items = {}
  for i, it in ipairs(d.items) do
    local where = "items[" .. (i - 1) .. "]"
    if type(it) ~= "table" then return nil, where .. " is not an object" end
    if type(it.instrument) ~= "string" or not it.instrument:match("^[%w_%-]+$") or #it.instrument > 64 then
      return nil, where .. ".instrument is bad"
    end
    if type(it.track) ~= "string" or it.track == "" or #it.track > 256 then return nil, where .. ".track is bad" end
    local ok, perr = M.spool_file("", it.file)
    if not ok then return nil, where .. ".file: " .. perr end
    for _, key in ipairs({ "position", "length" }) do
      local v = it[key]
      if type(v) ~= "number" or v ~= v or v == math.huge or v < 0 or (key == "length" and v <= 0) then
        return nil, where .. "." .. key .. " is bad"
      end
    end
    items[i] = { instrument = it.instrument, file = it.file, track = it.track, position = it.position,
                 length = it.length, program = type(it.program) == "number" and it.program or nil }
  end
  return { generation_id = gen, replace_from = replace_from, project_id = project_id, items = items }
end

function M.is_emsync_item(item)
  local _, tag = reaper.GetSetMediaItemInfo_String(item, M.ITEM_TAG, "", false)
  return tag ~= nil and tag ~= ""
end

-- Remove earlier EmSync items: only items tagged by us, only on "EmSync ..." tracks, never the
-- items in `keep` (item -> true: the ones an import just placed). With `from`, items starting at
-- or after it go and items crossing it are cut there (music before a regenerated boundary
-- stays). The whole plan is made before the first edit. Returns removed, trimmed counts.
function M.remove_emsync_items(from, keep)
  local cut, gone = {}, {}
  local prefix = M.TRACK_PREFIX:lower()
  for t = 0, reaper.CountTracks(0) - 1 do
    local tr = reaper.GetTrack(0, t)
    if track_name(tr):lower():sub(1, #prefix) == prefix then
      for i = reaper.CountTrackMediaItems(tr) - 1, 0, -1 do
        local item = reaper.GetTrackMediaItem(tr, i)
        if not (keep and keep[item]) and M.is_emsync_item(item) then
          local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
          local len = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
          if from == nil or pos >= from - 1e-9 then
            gone[#gone + 1] = { tr, item }
          elseif pos + len > from + 1e-9 then
            cut[#cut + 1] = { item, from - pos }
          end
        end
      end
    end
  end
  for _, c in ipairs(cut) do reaper.SetMediaItemInfo_Value(c[1], "D_LENGTH", c[2]) end
  for _, g in ipairs(gone) do reaper.DeleteTrackMediaItem(g[1], g[2]) end
  return #gone, #cut
end

-- The track for an instrument, created at the end of the track list if missing. A new track
-- gets the instrument FX the user chose (ExtState EmSync/instrument_fx, default ReaSynth) so
-- the result is audible at once; the MIDI files carry GM program changes for a GM synth.
function M.ensure_track(name, program)
  local tr = M.find_track(name)
  if tr then return tr, false end
  local idx = reaper.CountTracks(0)
  reaper.InsertTrackAtIndex(idx, true)
  tr = reaper.GetTrack(0, idx)
  reaper.GetSetMediaTrackInfo_String(tr, "P_NAME", name, true)
  local fx = reaper.GetExtState(M.EXT, "instrument_fx")
  if fx == nil or fx == "" then fx = "ReaSynth" end
  if fx ~= "none" then reaper.TrackFX_AddByName(tr, fx, false, -1) end
  if program then
    reaper.GetSetMediaTrackInfo_String(tr, "P_EXT:emsync_gm_program", tostring(program), true)
  end
  return tr, true
end

-- REAPER's own reading of a MIDI file: a source, or nil and why (the file may be unreadable to it).
local function open_midi_source(path)
  local src = reaper.PCM_Source_CreateFromFileEx(path, false)
  if not src then return nil, "REAPER could not read the MIDI file " .. path end
  local kind = reaper.GetMediaSourceType(src, "")
  if kind ~= "MIDI" then
    reaper.PCM_Source_Destroy(src)
    return nil, "REAPER reads " .. path .. " as " .. tostring(kind) .. ", not MIDI"
  end
  return src
end

-- Place every file of a parsed manifest, as one transaction:
-- 1. outside the project: check and copy every file, and have REAPER open each as a MIDI source;
-- 2. in one undo block: add the new items (and any missing track), check each took its source,
--    and only then remove/trim the old items (planned before the first edit);
-- any failure: the new items and tracks are deleted again, unused sources freed, the old items
-- were not touched. Returns the number of items, or nil, message, retry (true when the same
-- manifest may import later: it belongs to another project tab).
function M.import_manifest(man, spool)
  if man.project_id and man.project_id ~= M.project_id() then
    return nil, "it was generated for another project (run 'EmSync: Send project' in this one)", true
  end
  local media_dir = M.join(reaper.GetProjectPath(""), "EmSync")
  reaper.RecursiveCreateDirectory(media_dir, 0)
  local placed = {}
  for i, it in ipairs(man.items) do
    local src_path, perr = M.spool_file(spool, it.file)
    if not src_path then return nil, perr end
    if not M.file_exists(src_path) then return nil, "missing MIDI file " .. src_path end
    -- A copy next to the project keeps the items playable after the spool is cleaned.
    local copy = M.join(media_dir, man.generation_id .. "-" .. it.instrument .. "-" .. i .. ".mid")
    local ok, cerr = M.copy_file(src_path, copy)
    if not ok then return nil, cerr end
    placed[i] = copy
  end
  local sources = {}
  local function free_unused()
    for i, src in pairs(sources) do reaper.PCM_Source_Destroy(src); sources[i] = nil end
  end
  for i in ipairs(man.items) do
    local ok, src, serr = pcall(open_midi_source, placed[i])
    if not ok or not src then
      free_unused()
      return nil, ok and serr or tostring(src)
    end
    sources[i] = src
  end

  reaper.Undo_BeginBlock2(0)
  reaper.PreventUIRefresh(1)
  local new_items, new_tracks, keep = {}, {}, {}
  local ok, err = pcall(function()
    for i, it in ipairs(man.items) do
      local tr, created = M.ensure_track(it.track, it.program)
      if not tr then error("could not create track " .. it.track, 0) end
      if created then new_tracks[#new_tracks + 1] = tr end
      local item = reaper.AddMediaItemToTrack(tr)
      if not item then error("could not add an item to " .. it.track, 0) end
      new_items[#new_items + 1] = { tr, item }
      keep[item] = true
      local take = reaper.AddTakeToMediaItem(item)
      if not take then error("could not add a take on " .. it.track, 0) end
      reaper.SetMediaItemTake_Source(take, sources[i])
      sources[i] = nil -- the take owns it now
      reaper.SetMediaItemInfo_Value(item, "D_POSITION", it.position)
      reaper.SetMediaItemInfo_Value(item, "D_LENGTH", it.length)
      reaper.SetMediaItemInfo_Value(item, "B_LOOPSRC", 0) -- never repeat the file past its end
      reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", "EmSync " .. it.instrument, true)
      reaper.GetSetMediaItemInfo_String(item, M.ITEM_TAG, man.generation_id, true)
      local active = reaper.GetActiveTake(item)
      if not active or not reaper.GetMediaItemTake_Source(active) then
        error("the new item on " .. it.track .. " has no source", 0)
      end
    end
    M.remove_emsync_items(man.replace_from, keep) -- last: the new music is in place
  end)
  if not ok then
    for i = #new_items, 1, -1 do reaper.DeleteTrackMediaItem(new_items[i][1], new_items[i][2]) end
    for i = #new_tracks, 1, -1 do reaper.DeleteTrack(new_tracks[i]) end
    free_unused()
  end
  reaper.PreventUIRefresh(-1)
  reaper.Undo_EndBlock2(0, ok and "EmSync: import generated MIDI" or "EmSync: import failed (nothing changed)", -1)
  reaper.UpdateArrange()
  if not ok then return nil, tostring(err) .. "; the earlier items are unchanged" end
  reaper.SetProjExtState(0, M.EXT, "imported_generation", man.generation_id)
  return #man.items
end

-- out/import.json: the importer's last result, for the daemon's status, the panel and doctor.
function M.write_import_result(spool, generation_id, state, reason)
  local ok, err = M.write_json_atomic(M.join(spool, "out", "import.json"), {
    version = M.PROTOCOL_VERSION, kind = "emsync.import", state = state, generation_id = generation_id or "",
    reason = reason or "", written_at = M.now_iso() })
  if not ok then M.msg("cannot record the import result: " .. tostring(err)) end
end

-- One importer poll. `st` remembers the manifest text it settled (imported, or failed for good)
-- so nothing is retried or reported twice a second; a changed file is looked at afresh.
-- Returns "absent", "unchanged", "bad", "done" (already imported) or "imported".
function M.importer_tick(st)
  local path = M.join(st.spool, "out", "manifest.json")
  local text, read_err = M.read_file(path)
  if not text then
    if not M.file_exists(path) then return "absent" end
    if st.last_bad ~= read_err then M.msg("ignoring " .. path .. ": " .. tostring(read_err)) end
    st.last_bad = read_err
    return "bad"
  end
  if text == st.settled then return "unchanged" end
  local man, err = M.parse_manifest(text)
  local retry = false
  if man then
    local _, done = reaper.GetProjExtState(0, M.EXT, "imported_generation")
    if done == man.generation_id then
      st.settled = text
      return "done"
    end
    local n
    n, err, retry = M.import_manifest(man, st.spool)
    if n then
      st.settled, st.last_bad = text, nil
      M.write_import_result(st.spool, man.generation_id, "imported", "")
      M.info(string.format("imported %d MIDI item(s) of generation %s", n, man.generation_id))
      return "imported"
    end
  end
  if not retry then st.settled = text end
  if st.last_bad ~= text then
    st.last_bad = text
    M.write_import_result(st.spool, man and man.generation_id, "failed", tostring(err))
    M.msg("ignoring " .. path .. ": " .. tostring(err) .. " (waiting for a new one; to retry this one, "
      .. "run 'EmSync: Import generated MIDI' off and on)")
  end
  return "bad"
end

-- "EmSync: Import generated MIDI": a deferred watcher that imports each new manifest.
function M.start_importer()
  local st = { spool = M.spool(), next_check = 0 }
  -- Fail now, visibly, rather than watch a folder that can never receive anything.
  local probe = M.join(st.spool, "out", ".emsync-probe")
  local ok, err = M.write_file_atomic(probe, "")
  if not ok then error(err, 0) end
  os.remove(probe)
  set_toggle(true)
  reaper.atexit(function() set_toggle(false) end)
  M.info("watching " .. M.join(st.spool, "out", "manifest.json") .. " for generated MIDI")
  local function loop()
    local now = reaper.time_precise()
    if now >= st.next_check then
      st.next_check = now + M.POLL_S
      local ok, err = pcall(M.importer_tick, st)
      if not ok then
        local line = tostring(err):match("^[^\n]*")
        if st.last_error ~= line then M.msg("importer: " .. line) end
        st.last_error = line
      end
    end
    reaper.defer(loop)
  end
  loop()
  return st
end

---------------------------------------------------------------------------------------------
-- Setup: copy our OSC pattern file where REAPER's OSC dialog looks for it

function M.install_osc_pattern()
  local src = (M.script_dir or "") .. "emsync.ReaperOSC"
  local data, err = M.read_file(src, 1024 * 1024)
  if not data then
    M.msg("cannot read " .. src .. ": " .. tostring(err))
    return nil
  end
  local dir = M.join(reaper.GetResourcePath(), "OSC")
  reaper.RecursiveCreateDirectory(dir, 0)
  local dst = M.join(dir, "emsync.ReaperOSC")
  if M.read_file(dst, 1024 * 1024) == data then
    M.info("OSC pattern file already installed: " .. dst)
    return dst
  end
  local ok, werr = M.write_file_atomic(dst, data)
  if not ok then
    M.msg(werr)
    return nil
  end
  M.info("installed " .. dst .. ". Now: Preferences > Control/OSC/web > Add > OSC; pattern config 'emsync'; "
    .. "device IP 127.0.0.1, device port 9137, local listen port 9138 (docs/reaper-setup.md).")
  return dst
end

return M
