"""`emsync-bridge doctor`: what the daemon needs, checked one line each."""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol

PATTERN_FILE = "emsync.ReaperOSC"
REPO_PATTERN = Path(__file__).resolve().parents[2] / "reaper_scripts" / PATTERN_FILE


@dataclass
class Check:
    name: str
    level: str  # "ok" | "warn" | "fail"
    detail: str


def reaper_resource_dir(env=None, platform: str | None = None) -> Path:
    """REAPER's resource path (where OSC/ pattern files live), per OS (reaper-integration.md §1.1)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    home = Path(env.get("HOME", "~")).expanduser()
    if platform.startswith("win"):
        return Path(env.get("APPDATA", str(home / "AppData" / "Roaming"))) / "REAPER"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "REAPER"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "REAPER"


def check_onnxruntime() -> Check:
    try:
        import onnxruntime as ort
    except ImportError:
        return Check("onnxruntime", "warn", "not installed: the model runs in torch (slower); pip install emsync-bridge[cpu]")
    providers = ort.get_available_providers()
    # onnxruntime-gpu lists CUDA even without a GPU (dependencies.md Q1): say so rather than promise it.
    note = " (CUDA listed; used only if a CUDA device really initialises)" if "CUDAExecutionProvider" in providers else ""
    return Check("onnxruntime", "ok", f"{ort.__version__}, providers {', '.join(providers)}{note}")


def check_midi() -> Check:
    try:
        from emsync_bridge.bridge.sinks import active_backend, probe_backends

        probed = probe_backends()
    except EmsyncError as exc:
        return Check("MIDI backend", "fail", str(exc))
    active = active_backend(probed)
    summary = "; ".join(f"{b.label} {'ok' if b.available else 'unavailable'}" for b in probed)
    if active is None:
        return Check("MIDI backend", "warn", f"none works here ({summary}); live mode cannot open a port, commit mode is fine")
    if active.api == "WINDOWS_MM":
        found = any(n.startswith(protocol.LIVE_PORT_NAME) for n in active.outputs)
        if not found:
            return Check("MIDI backend", "warn", f"WinMM: no '{protocol.LIVE_PORT_NAME}' port; create it in loopMIDI for live mode")
    return Check("MIDI backend", "ok", f"live mode uses {active.label} ({summary})")


def check_osc_port(port: int, host: str = "127.0.0.1") -> Check:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
    except OSError as exc:
        from emsync_bridge.bridge.osc import BridgeClient

        try:
            with BridgeClient(host, port, timeout=0.5) as c:
                st = c.status()
            return Check("OSC port", "ok", f"{host}:{port} is used by a running emsync-bridge ({st.get('mode')} mode, pid {st.get('pid')})")
        except EmsyncError:
            return Check("OSC port", "fail", f"{host}:{port} is taken by another program ({exc.strerror}); use --osc-port")
    finally:
        s.close()
    return Check("OSC port", "ok", f"{host}:{port} is free")


def check_spool(spool: str | None) -> Check:
    from emsync_bridge.timeline.spool import ensure_spool, resolve_spool_dir

    try:
        path = ensure_spool(Path(spool) if spool else resolve_spool_dir())
        probe = path / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except (EmsyncError, OSError) as exc:
        return Check("spool", "fail", f"not writable: {exc}")
    project = path / protocol.PROJECT_FILE
    note = "project.json present" if project.exists() else "no project.json yet (run 'EmSync: Send project' in REAPER)"
    return Check("spool", "ok", f"{path} writable; {note}")


def check_pattern_file(resource: str | None) -> Check:
    base = Path(resource) if resource else reaper_resource_dir()
    installed = base / "OSC" / PATTERN_FILE
    if not installed.is_file():
        return Check("REAPER pattern file", "warn", f"{installed} missing: run 'EmSync: Setup (install OSC pattern file)' in REAPER")
    if REPO_PATTERN.is_file() and installed.read_bytes() != REPO_PATTERN.read_bytes():
        return Check("REAPER pattern file", "warn", f"{installed} differs from this version's {PATTERN_FILE}: run the Setup action again")
    return Check("REAPER pattern file", "ok", f"{installed} installed")


def check_reaper(osc_port: int, spool: str | None, host: str = "127.0.0.1") -> Check:
    """What is known about REAPER (bridge/health.py), asking REAPER nothing: from a running daemon's
    status, else from the spool alone (project.json and the importer's out/import.json)."""
    from emsync_bridge.bridge.health import ReaperHealth, read_import_result
    from emsync_bridge.bridge.osc import BridgeClient
    from emsync_bridge.timeline.spool import read_json_file, resolve_spool_dir

    try:
        with BridgeClient(host, osc_port, timeout=0.5) as c:
            reaper = c.status().get("reaper") or {}
        return Check("REAPER", reaper.get("level", "warn"), reaper.get("summary") or "the daemon reports nothing on REAPER")
    except (EmsyncError, OSError, ValueError):
        pass
    try:
        path = Path(spool) if spool else resolve_spool_dir()
    except EmsyncError as exc:
        return Check("REAPER", "warn", str(exc))
    try:
        sent = read_json_file(path / protocol.PROJECT_FILE, "project.json").get("written_at")
    except (EmsyncError, AttributeError):
        sent = None
    h = ReaperHealth(None, sent if isinstance(sent, str) else None, read_import_result(path), daemon_running=False)
    return Check("REAPER", h.level, h.summary())


def run_checks(osc_port: int = protocol.DAEMON_OSC_PORT, spool: str | None = None, reaper_resource: str | None = None) -> list[Check]:
    return [check_onnxruntime(), check_midi(), check_osc_port(osc_port), check_spool(spool), check_pattern_file(reaper_resource),
            check_reaper(osc_port, spool)]
