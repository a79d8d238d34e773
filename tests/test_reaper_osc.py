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
FLAGS = set("nfbtrsi")
# Action names of REAPER's Default.ReaperOSC that this file may use (a typo is silently ignored
# by REAPER, so check them here).
KNOWN_ACTIONS = {
    "PLAY", "STOP", "PAUSE", "RECORD", "REPEAT", "TIME", "BEAT", "SAMPLES", "FRAMES", "TEMPO", "PLAY_RATE",
    "LOOP_START_TIME", "LOOP_END_TIME", "MARKER_NAME", "MARKER_NUMBER", "MARKER_TIME", "REGION_NAME",
    "REGION_NUMBER", "REGION_TIME", "REGION_LENGTH", "LAST_MARKER_NAME", "LAST_MARKER_NUMBER",
    "LAST_MARKER_TIME", "LAST_REGION_NAME", "LAST_REGION_NUMBER", "LAST_REGION_TIME", "LAST_REGION_LENGTH",
    "MARKERID_NAME", "MARKERID_TIME", "MARKERID_NUMBER", "ACTION", "GOTO_MARKER", "GOTO_REGION",
    "DEVICE_MARKER_COUNT", "DEVICE_REGION_COUNT", "DEVICE_MARKER_BANK_SELECT", "DEVICE_PREV_MARKER_BANK",
    "DEVICE_NEXT_MARKER_BANK", "DEVICE_REGION_BANK_SELECT", "DEVICE_PREV_REGION_BANK", "DEVICE_NEXT_REGION_BANK",
}
SETTINGS = {
    "DEVICE_TRACK_COUNT", "DEVICE_SEND_COUNT", "DEVICE_RECEIVE_COUNT", "DEVICE_FX_COUNT", "DEVICE_FX_PARAM_COUNT",
    "DEVICE_FX_INST_PARAM_COUNT", "DEVICE_MARKER_COUNT", "DEVICE_REGION_COUNT", "REAPER_TRACK_FOLLOWS",
    "DEVICE_TRACK_FOLLOWS", "DEVICE_TRACK_BANK_FOLLOWS", "DEVICE_FX_FOLLOWS", "DEVICE_EQ", "DEVICE_ROTARY_CENTER",
}


def parse_pattern_file(path: Path) -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    """(settings, action -> [(flag, address)]), the way REAPER reads the file."""
    settings: dict[str, str] = {}
    actions: dict[str, list[tuple[str, str]]] = {}
    for n, raw in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, *rest = line.split()
        assert re.fullmatch(r"[A-Z_+-]+", name), f"line {n}: bad name {name!r}"
        if len(rest) == 1 and "/" not in rest[0]:  # "DEVICE_MARKER_COUNT 64"
            assert name in SETTINGS, f"line {n}: unknown setting {name}"
            settings[name] = rest[0]
            continue
        assert name in KNOWN_ACTIONS, f"line {n}: unknown action {name}"
        for pat in rest:
            assert pat[0] in FLAGS and pat[1] == "/", f"line {n}: pattern {pat!r} needs a flag and '/'"
            assert re.fullmatch(r"/[a-z0-9_@/+-]+", pat[1:]), f"line {n}: bad address {pat!r}"
            actions.setdefault(name, []).append((pat[0], pat[1:]))
    return settings, actions


def test_pattern_file_parses_with_markers_enabled():
    settings, actions = parse_pattern_file(PATTERN_FILE)
    assert int(settings["DEVICE_MARKER_COUNT"]) == protocol.MARKER_BANK_SIZE > 0
    assert int(settings["DEVICE_REGION_COUNT"]) == protocol.MARKER_BANK_SIZE
    assert int(settings["DEVICE_TRACK_COUNT"]) == 0  # no track feedback flood
    assert actions["TEMPO"] == [("f", "/tempo/raw")]


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
    assert str(protocol.REAPER_ACTION_REFRESH_SURFACES) in text


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
