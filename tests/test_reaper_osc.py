"""emsync.ReaperOSC parses, and produces/accepts every address the daemon relies on."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

from emsync_bridge.timeline import protocol

sys.path.insert(0, str(Path(__file__).parent))  # the shared stub, whatever pytest's import mode
from test_reaper_stub import SCRIPTS  # noqa: E402

PATTERN_FILE = SCRIPTS / "emsync.ReaperOSC"
# The rules below are REAPER's, read from its OSC control surface source: reaper-sdk
# reaper-plugins/reaper_csurf/csurf_osc.cpp at commit b5da337e747a1af79e0d3514ad82137b457f8c51
# (LoadCfgContext, lines 148-257). Line numbers below refer to that file.
FLAGS = "nfbtrsi"  # csurf_osc.cpp:227
FOLLOWS_VALUES = {"REAPER", "DEVICE", "LAST_TOUCHED", "FOCUSED", "MIXER"}  # :211-218
# Keys REAPER accepts are those of its own Default.ReaperOSC (:155-176, checked at :185; an unknown key is an error
# when picked in the dialog, silently ignored at run time). That file ships with REAPER, not the
# SDK; these are the names from it that this file may use.
KNOWN_KEYS = {
    "PLAY", "STOP", "PAUSE", "RECORD", "REPEAT", "TIME", "BEAT", "SAMPLES", "FRAMES", "TEMPO", "PLAY_RATE",
    "LOOP_START_TIME", "LOOP_END_TIME", "MARKER_NAME", "MARKER_NUMBER", "MARKER_TIME", "REGION_NAME",
    "REGION_NUMBER", "REGION_TIME", "REGION_LENGTH", "LAST_MARKER_NAME", "LAST_MARKER_NUMBER",
    "LAST_MARKER_TIME", "LAST_REGION_NAME", "LAST_REGION_NUMBER", "LAST_REGION_TIME", "LAST_REGION_LENGTH",
    "MARKERID_NAME", "MARKERID_TIME", "MARKERID_NUMBER", "ACTION", "GOTO_MARKER", "GOTO_REGION",
    "DEVICE_MARKER_COUNT", "DEVICE_REGION_COUNT", "DEVICE_MARKER_BANK_SELECT", "DEVICE_PREV_MARKER_BANK",
    "DEVICE_NEXT_MARKER_BANK", "DEVICE_REGION_BANK_SELECT", "DEVICE_PREV_REGION_BANK", "DEVICE_NEXT_REGION_BANK",
    "DEVICE_TRACK_COUNT", "DEVICE_SEND_COUNT", "DEVICE_RECEIVE_COUNT", "DEVICE_FX_COUNT", "DEVICE_FX_PARAM_COUNT",
    "DEVICE_FX_INST_PARAM_COUNT", "REAPER_TRACK_FOLLOWS", "DEVICE_TRACK_FOLLOWS", "DEVICE_TRACK_BANK_FOLLOWS",
    "DEVICE_FX_FOLLOWS", "DEVICE_EQ", "DEVICE_ROTARY_CENTER",
}
# What REAPER sends for a key, by the value kinds its SetSurfaceVal call passes (:2957-3050: an
# 'i' pattern gets ival, 'f' fval, 'n'/'b'/'t' nval, 's' sval, 'r' nothing; a kind not passed means
# no message for that pattern). key -> (flags that produce feedback, where REAPER sends it).
REAPER_SENDS = {
    "TIME": ("fs", "csurf_osc.cpp:1072 (Run, at the control surface rate, only when the position changed)"),
    "BEAT": ("s", "csurf_osc.cpp:1077 (Run, as TIME)"),
    "PLAY": ("nbt", "csurf_osc.cpp:3824 (SetPlayState)"),
    "STOP": ("nbt", "csurf_osc.cpp:3822"),
    "PAUSE": ("nbt", "csurf_osc.cpp:3823"),
    "RECORD": ("nbt", "csurf_osc.cpp:3821"),
    "REPEAT": ("nbt", "csurf_osc.cpp:3815 (SetRepeatState)"),
    "TEMPO": ("fnbts", "csurf_osc.cpp:4349 (CSURF_EXT_SETBPMANDPLAYRATE)"),
    "PLAY_RATE": ("fnbts", "csurf_osc.cpp:4356"),
    "LOOP_START_TIME": ("f", "csurf_osc.cpp:1170 (Run, every tick, sent when changed)"),
    "LOOP_END_TIME": ("f", "csurf_osc.cpp:1171"),
    "MARKER_NAME": ("s", "csurf_osc.cpp:3611 (SetMarkerBankChange)"),
    "MARKER_NUMBER": ("s", "csurf_osc.cpp:3613"),
    "MARKER_TIME": ("f", "csurf_osc.cpp:3614"),
    "REGION_NAME": ("s", "csurf_osc.cpp:3622"),
    "REGION_NUMBER": ("s", "csurf_osc.cpp:3624"),
    "REGION_TIME": ("f", "csurf_osc.cpp:3625"),
    "REGION_LENGTH": ("f", "csurf_osc.cpp:3628"),
    "LAST_MARKER_NAME": ("s", "csurf_osc.cpp:1192 (Run)"),
    "LAST_MARKER_NUMBER": ("s", "csurf_osc.cpp:1193"),
    "LAST_MARKER_TIME": ("f", "csurf_osc.cpp:1194"),
    "LAST_REGION_NAME": ("s", "csurf_osc.cpp:1210"),
    "LAST_REGION_NUMBER": ("s", "csurf_osc.cpp:1211"),
    "LAST_REGION_TIME": ("f", "csurf_osc.cpp:1212"),
    "LAST_REGION_LENGTH": ("f", "csurf_osc.cpp:1213"),
}


def _isint(p: str) -> bool:  # csurf_osc.cpp:75-84
    return p != "" and all(c.isdigit() for c in p)


def _isfloat(p: str) -> bool:  # csurf_osc.cpp:86-106
    q = p[1:] if p.startswith("-") else p
    return p != "" and q.count(".") <= 1 and all(c.isdigit() or c == "." for c in q)


def reaper_load_cfg(text: str) -> tuple[list[str], str | None]:
    """LoadCfgContext in Python: (accepted lines, error). On any error REAPER keeps NO line
    (cfg->Empty, :257) and falls back to Default.ReaperOSC (:768-776)."""
    cfg: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        toks = line.split()
        if len(toks) < 2 or toks[0].startswith("#"):  # :180-183
            continue
        if any(q in line for q in "\"'`"):
            return [], f"line {n}: quotes are parsed by REAPER's LineParser; not supported here"
        key = toks[0]
        if key not in KNOWN_KEYS:  # :185-192
            return [], f'Unknown action "{key}" on line {n}'
        for i, pat in enumerate(toks[1:], 1):
            if i == 1 and key.startswith(("DEVICE_", "REAPER_")):  # :199-224
                if key.endswith("_COUNT") and _isint(pat):
                    continue
                if key.endswith("_ROTARY_CENTER") and _isfloat(pat):
                    continue
                if key.endswith("_FOLLOWS") and pat in FOLLOWS_VALUES:
                    continue
                if key.endswith("_EQ") and pat == "INSERT":
                    continue
            if pat[0] not in FLAGS:  # :227-234
                return [], f'Pattern "{pat}" starts with unknown flag \'{pat[0]}\' on line {n} (allowed: [nfbtrsi])'
            if len(pat) < 2 or pat[1] != "/":  # :235-240
                return [], f'Pattern "{pat}" does not start with \'/\' on line {n}'
            if len(pat) > 512:  # :241-246
                return [], f"Pattern is too long on line {n}"
        cfg.append(line)
    return cfg, None


def parse_pattern_file(path: Path) -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    """(settings, action -> [(flag, address)]) of a file REAPER accepts, read the way REAPER's
    CSurf_Osc constructor does (:779-866): a DEVICE_/REAPER_ key's first token may be a setting."""
    lines, err = reaper_load_cfg(path.read_text(encoding="ascii"))
    assert err is None, f"REAPER would reject {path.name} as a whole: {err}"
    settings: dict[str, str] = {}
    actions: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        name, *rest = line.split()
        if name.startswith(("DEVICE_", "REAPER_")) and "/" not in rest[0]:
            settings[name] = rest.pop(0)
        for pat in rest:
            assert re.fullmatch(r"/[a-z0-9_@/+-]+", pat[1:]), f"bad address {pat!r}"
            actions.setdefault(name, []).append((pat[0], pat[1:]))
    return settings, actions


def test_reaper_loader_rules_reject_what_reaper_rejects():
    """The validator is REAPER's loader, not our taste: each of these empties REAPER's config."""
    ok = "DEVICE_MARKER_COUNT 64\nDEVICE_EQ INSERT\nDEVICE_ROTARY_CENTER 0.5\nTIME f/time\n# a comment\n"
    assert reaper_load_cfg(ok)[1] is None and len(reaper_load_cfg(ok)[0]) == 4
    for bad, why in [
        ("DEVICE_EQ EXISTING", "unknown flag 'E'"),  # the line the shipped file had
        ("DEVICE_MARKER_COUNT -1", "unknown flag '-'"),  # isint takes digits only
        ("DEVICE_TRACK_FOLLOWS SELECTED", "unknown flag 'S'"),
        ("TIME f/time # position", "unknown flag '#'"),  # no end-of-line comments
        ("TIME x/time", "unknown flag 'x'"),
        ("TIME ftime", "does not start with '/'"),
        ("TIME f/" + "a" * 511, "too long"),
        ("NO_SUCH_KEY f/x", "Unknown action"),
    ]:
        lines, err = reaper_load_cfg(ok + bad + "\n")
        assert lines == [] and err is not None and why in err, (bad, err)


def test_shipped_pattern_file_passes_reapers_loader():
    lines, err = reaper_load_cfg(PATTERN_FILE.read_text(encoding="ascii"))
    assert err is None, err
    assert any(line.startswith("TIME ") for line in lines)


def test_pattern_file_parses_with_markers_enabled():
    settings, actions = parse_pattern_file(PATTERN_FILE)
    assert int(settings["DEVICE_MARKER_COUNT"]) == protocol.MARKER_BANK_SIZE > 0
    assert int(settings["DEVICE_REGION_COUNT"]) == protocol.MARKER_BANK_SIZE
    # REAPER ignores a count <= 0 in the file (csurf_osc.cpp:798), so none may pretend otherwise.
    assert all(int(v) > 0 for k, v in settings.items() if k.endswith("_COUNT"))
    # No track/FX/send/VU feedback: REAPER only sends feedback for patterns the file lists.
    assert not [k for k in actions if k.startswith(("TRACK_", "FX_", "MASTER_", "LAST_TOUCHED_"))]
    assert actions["TEMPO"] == [("f", "/tempo/raw")]


def test_every_pattern_the_daemon_reads_is_one_reaper_really_sends():
    """Per csurf_osc.cpp: the key is one REAPER sends feedback for, with a value kind that flag gets."""
    _, actions = parse_pattern_file(PATTERN_FILE)
    by_addr = {addr: (key, flag) for key, pats in actions.items() for flag, addr in pats}
    for addr in protocol.REAPER_FEEDBACK_ADDRESSES:
        key, flag = by_addr[addr]
        assert key in REAPER_SENDS, f"REAPER sends no feedback for {key} ({addr})"
        assert flag in REAPER_SENDS[key][0], f"REAPER sends nothing for flag {flag!r} of {key} ({addr})"
    # Written by the daemon, never sent back by REAPER (no SETSURF* call for them in csurf_osc.cpp).
    assert "MARKERID_NAME" not in REAPER_SENDS and "ACTION" not in REAPER_SENDS


def test_every_feedback_address_the_daemon_listens_to_is_produced():
    _, actions = parse_pattern_file(PATTERN_FILE)
    produced = {addr: flag for pats in actions.values() for flag, addr in pats if flag != "i" and flag != "r"}
    expected_flag = {"toggle": "t", "float": "f", "string": "s"}
    for addr, kind in protocol.REAPER_FEEDBACK_ADDRESSES.items():
        assert addr in produced, f"{addr} is not produced by emsync.ReaperOSC"
        assert produced[addr] == expected_flag[kind], addr
    # And nothing floods the daemon that it does not read (write-only MARKERID_* aside).
    extra = set(produced) - set(protocol.REAPER_FEEDBACK_ADDRESSES)
    assert all(a.startswith(("/marker_id/", "/action", "/device/")) for a in extra), extra


def test_every_control_address_the_daemon_sends_is_accepted():
    _, actions = parse_pattern_file(PATTERN_FILE)
    accepted = {addr for pats in actions.values() for _, addr in pats}
    for addr in protocol.REAPER_CONTROL_ADDRESSES:
        assert addr in accepted, f"REAPER would ignore {addr}"
    assert ("i", "/action") in actions["ACTION"] and ("s", "/action/str") in actions["ACTION"]


def test_pattern_file_header_names_our_ports():
    text = PATTERN_FILE.read_text()
    assert f"Device port: {protocol.DAEMON_OSC_PORT}" in text
    assert f"Local listen port: {protocol.REAPER_OSC_PORT}" in text


def test_dispatch_patterns():
    assert protocol.osc_dispatch_pattern("/marker/@/name") == "/marker/*/name"
    assert protocol.track_name("strings") == "EmSync Strings"


def test_reapack_index_lists_every_script():
    root = ET.parse(SCRIPTS / "index.xml").getroot()
    assert root.tag == "index" and root.get("version") == "1"
    sources = root.findall(".//version/source")
    files = {s.get("file"): s for s in sources}
    shipped = {p.name for p in SCRIPTS.iterdir() if p.suffix in (".lua", ".ReaperOSC") and p.name != "emsync_package.lua"}
    assert set(files) == shipped
    for name, src in files.items():
        assert unquote(src.text.strip().rsplit("/", 1)[1]) == name
        assert (src.get("main") == "main") == name.startswith("EmSync - "), name


def test_reapack_metapackage_header_matches_index():
    header = (SCRIPTS / "emsync_package.lua").read_text()
    assert "@metapackage" in header
    provided = set(re.findall(r"^--\s+(?:\[\w+\]\s+)?(.+?)\s*$", header.split("@provides", 1)[1], re.M))
    root = ET.parse(SCRIPTS / "index.xml").getroot()
    assert {s.get("file") for s in root.findall(".//version/source")} <= provided | {""}
    version = root.find(".//version").get("name")
    assert f"@version {version}" in header
