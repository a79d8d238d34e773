"""Constants of the REAPER <-> daemon protocol (spec: docs/protocol.md).

The daemon imports these instead of spelling addresses and file names itself, and the tests check
them against `reaper_scripts/emsync.ReaperOSC` and the Lua scripts, so the two sides cannot drift.
"""

from __future__ import annotations

PROTOCOL_VERSION = 1

# UDP ports on 127.0.0.1. Away from the community defaults 8000/8080/9000 (ReaSpeech uses 9000).
DAEMON_OSC_PORT = 9137  # the daemon listens here: REAPER feedback and our /emsync/... namespace
REAPER_OSC_PORT = 9138  # REAPER's control surface listens here for what the daemon sends

# Spool layout, relative to the spool folder (see spool.resolve_spool_dir).
PROJECT_FILE = "project.json"  # written by "EmSync: Send project"
REQUESTS_DIR = "requests"  # <id>-<type>.json written by the Lua actions, polled by the daemon
REJECTED_DIR = "requests/rejected"  # where the daemon moves requests it could not read
OUT_DIR = "out"  # commit mode: out/<generation_id>/<instrument>.mid
MANIFEST_FILE = "out/manifest.json"  # written last, after every MIDI file it names
STATUS_FILE = "status.json"  # the daemon's status, rewritten atomically
IMPORT_FILE = "out/import.json"  # the importer's last result (imported/failed + reason), by the Lua side

# Upper bounds the readers enforce (on both sides) so a corrupt file cannot exhaust memory.
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_REQUEST_BYTES = 64 * 1024

# REAPER feedback the daemon listens to. `@` is REAPER's index wildcard (marker/region bank slot,
# 1-based); `osc_dispatch_pattern` turns it into an OSC `*` for python-osc's dispatcher.
# Value: the OSC argument REAPER sends. Toggles (`t`) arrive as 0/1 and may be int or float.
REAPER_FEEDBACK_ADDRESSES: dict[str, str] = {
    "/play": "toggle",
    "/stop": "toggle",
    "/pause": "toggle",
    "/record": "toggle",
    "/repeat": "toggle",
    "/time": "float",  # play (or edit) position, project seconds, ~30 Hz while playing
    "/beat/str": "string",  # "measure.beat.percent" display string
    "/tempo/raw": "float",  # current tempo in BPM (not the tempo map)
    "/playrate/raw": "float",
    "/loop/start/time": "float",
    "/loop/end/time": "float",
    "/marker/@/name": "string",
    "/marker/@/number/str": "string",
    "/marker/@/time": "float",
    "/region/@/name": "string",
    "/region/@/number/str": "string",
    "/region/@/time": "float",
    "/region/@/length": "float",
    "/lastmarker/name": "string",
    "/lastmarker/number/str": "string",
    "/lastmarker/time": "float",
    "/lastregion/name": "string",
    "/lastregion/number/str": "string",
    "/lastregion/time": "float",
    "/lastregion/length": "float",
}

# What the daemon sends to REAPER (REAPER_OSC_PORT); each must be accepted by the pattern file.
REAPER_CONTROL_ADDRESSES: dict[str, str] = {
    "/action": "int",  # run an action by numeric command id
    "/action/str": "string",  # run an action by named id, e.g. "_RS1a2b..." (our Lua scripts)
    "/play": "toggle",
    "/stop": "toggle",
    "/pause": "toggle",
    "/time": "float",  # seek (project seconds)
    "/device/marker/count": "int",
    "/device/region/count": "int",
    "/device/marker/bank/select": "int",
    "/device/region/bank/select": "int",
}

# Never sent: action 41743 "Control surface: Refresh all surfaces" resets EVERY surface, the user's
# own controllers too. To get the marker/region banks again the daemon sets its bank sizes instead
# (csurf_osc.cpp ProcessStateAction -> SetMarkerBankChange touches this surface only).
# "Send all-notes-off and all-sounds-off to all MIDI outputs/plug-ins".
REAPER_ACTION_ALL_NOTES_OFF = 40345
MARKER_BANK_SIZE = 64  # DEVICE_MARKER_COUNT / DEVICE_REGION_COUNT in the pattern file

# Our own namespace, received by the daemon on DAEMON_OSC_PORT. Value: OSC type tags accepted
# ("" = no arguments; "[f]" = optional trailing float).
EMSYNC_ADDRESSES: dict[str, str] = {
    "/emsync/regenerate": "",  # regenerate everything
    "/emsync/regenerate/marker": "i",  # from the marker with this displayed number
    "/emsync/regenerate/time": "f",  # from this project time (seconds)
    "/emsync/emotion": "ff[f]",  # valence, arousal in [-1, 1], [project time; default: play position]
    "/emsync/emotion/label": "s[f]",  # "joy" or "v=0.5 a=-0.2", [project time]
    "/emsync/panic": "",  # all notes off now
    "/emsync/mode": "s",  # "commit" or "live"
    "/emsync/project/reload": "",  # re-read project.json now
    "/emsync/status": "",  # reply to the sender with /emsync/status/reply <json string>
    "/emsync/shutdown": "",  # clean shutdown (loopback senders only)
}
EMSYNC_STATUS_REPLY = "/emsync/status/reply"

# Request types the Lua actions write into requests/ (see spool.load_request).
REQUEST_TYPES = ("regenerate", "panic", "set_emotion", "set_mode")

# Track naming shared with the Lua importer: instrument "piano" -> track "EmSync Piano".
TRACK_PREFIX = "EmSync "
LIVE_TRACK_NAME = "EmSync Live"
LIVE_PORT_NAME = "EmSync Out"
ITEM_TAG_KEY = "P_EXT:emsync"  # item extension value = generation id; marks items we may replace


def track_name(instrument: str) -> str:
    """The REAPER track an instrument's MIDI goes to (`EmSync Piano`)."""
    return TRACK_PREFIX + instrument[:1].upper() + instrument[1:]


def osc_dispatch_pattern(address: str) -> str:
    """REAPER's `@` slot wildcard as an OSC pattern python-osc's Dispatcher understands."""
    return address.replace("@", "*")
