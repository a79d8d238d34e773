"""What the setup wizard installs into REAPER's resource folder (no Qt here, so it is testable and
usable without the panel).

The pattern file goes to `<resource>/OSC/`, the Lua actions and their library to
`<resource>/Scripts/EmSync/` (docs/reaper-setup.md, "By hand"). The resource folder per OS comes
from `bridge.doctor.reaper_resource_dir` (~/.config/REAPER, ~/Library/Application
Support/REAPER, %APPDATA%\\REAPER).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from emsync_bridge.bridge.doctor import PATTERN_FILE, reaper_resource_dir
from emsync_bridge.errors import EmsyncError

SCRIPTS_SRC = Path(__file__).resolve().parents[1] / "reaper_scripts"
SCRIPTS_SUBDIR = Path("Scripts") / "EmSync"


@dataclass(frozen=True)
class Copy:
    src: Path
    dst: Path

    @property
    def state(self) -> str:
        """"new", "same" (already installed, identical) or "replace" (differs)."""
        if not self.dst.exists():
            return "new"
        return "same" if self.dst.read_bytes() == self.src.read_bytes() else "replace"


def install_plan(resource: str | Path | None = None, src: Path = SCRIPTS_SRC) -> list[Copy]:
    """The copies that installing would make; raises when this installation has no scripts."""
    base = Path(resource) if resource else reaper_resource_dir()
    pattern = src / PATTERN_FILE
    if not pattern.is_file():
        raise EmsyncError(f"{pattern} not found: the REAPER scripts ship with the source checkout "
                          f"(or install them with ReaPack, see docs/reaper-setup.md)")
    plan = [Copy(pattern, base / "OSC" / PATTERN_FILE)]
    for lua in sorted(src.glob("*.lua")):
        plan.append(Copy(lua, base / SCRIPTS_SUBDIR / lua.name))
    return plan


def install(plan: list[Copy]) -> list[Path]:
    """Make the copies (creating folders); returns the files written."""
    written = []
    for c in plan:
        if c.state == "same":
            continue
        try:
            c.dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(c.src, c.dst)
        except OSError as exc:
            raise EmsyncError(f"cannot write {c.dst}: {exc.strerror or exc}") from None
        written.append(c.dst)
    return written
