"""What is known about REAPER, found out without asking REAPER to do anything.

REAPER's OSC surface is silent while the transport is stopped and the cursor still: it sends
TIME/BEAT only when the position changed and everything else only when it changes (csurf_osc.cpp
Run() and SetSurfaceVal's cache). Silence is therefore not absence, and the daemon never sends an
action to find out (action 41743 "refresh all surfaces" would reset the user's own controllers
too). What it reports instead are three independent signs, each with its age:

- the last OSC feedback from REAPER's surface;
- the last project.json the "EmSync: Send project" action wrote;
- the importer's last result, out/import.json ("imported" or "failed" with the reason).

The daemon's status, the panel and `emsync-bridge doctor` show the same summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol

IMPORT_STATES = ("imported", "failed")


@dataclass(frozen=True)
class ImportResult:
    state: str  # "imported" | "failed" | "unreadable"
    generation_id: str
    reason: str
    written_at: str

    def as_dict(self) -> dict:
        return {"state": self.state, "generation_id": self.generation_id, "reason": self.reason,
                "written_at": self.written_at}


def read_import_result(spool: Path) -> ImportResult | None:
    """out/import.json as the importer left it; None when there is none yet."""
    from emsync_bridge.timeline.spool import read_json_file

    path = Path(spool) / protocol.IMPORT_FILE
    if not path.exists():
        return None
    try:
        d = read_json_file(path, "import.json", max_bytes=64 * 1024)
    except EmsyncError as exc:
        return ImportResult("unreadable", "", str(exc), "")
    if not isinstance(d, dict) or d.get("kind") != "emsync.import" or d.get("state") not in IMPORT_STATES:
        return ImportResult("unreadable", "", f"{path}: not an emsync.import result", "")
    return ImportResult(d["state"], str(d.get("generation_id", "")), str(d.get("reason", ""))[:500],
                        str(d.get("written_at", "")))


@dataclass(frozen=True)
class ReaperHealth:
    feedback_seen_s_ago: float | None  # None: no OSC feedback since the daemon started (or no daemon)
    project_sent_at: str | None  # written_at of the project.json the daemon holds
    last_import: ImportResult | None
    daemon_running: bool = True

    @property
    def level(self) -> str:
        """"ok", or "warn" when something needs the user (an import failed, nothing seen at all)."""
        if self.last_import is not None and self.last_import.state != "imported":
            return "warn"
        if self.feedback_seen_s_ago is None and self.project_sent_at is None:
            return "warn"
        return "ok"

    def summary(self) -> str:
        parts = []
        if not self.daemon_running:
            parts.append("no daemon running, so no OSC feedback is watched")
        elif self.feedback_seen_s_ago is None:
            parts.append("no OSC feedback yet (normal until REAPER plays, seeks or edits a marker; "
                         "if it stays so while REAPER plays, check the OSC surface: docs/reaper-setup.md)")
        else:
            parts.append(f"OSC feedback {self.feedback_seen_s_ago:.0f} s ago (silence is normal while stopped)")
        parts.append(f"project sent {self.project_sent_at}" if self.project_sent_at
                     else "no project.json yet (run 'EmSync: Send project')")
        imp = self.last_import
        if imp is not None:
            if imp.state == "imported":
                parts.append(f"last import: {imp.generation_id} imported {imp.written_at}")
            else:
                parts.append(f"last import {imp.state}: {imp.generation_id} {imp.reason}".replace("  ", " "))
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"feedback_seen_s_ago": self.feedback_seen_s_ago, "project_sent_at": self.project_sent_at,
                "last_import": None if self.last_import is None else self.last_import.as_dict(),
                "level": self.level, "summary": self.summary()}
