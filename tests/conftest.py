"""Shared test setup: Qt renders offscreen, torch stays on few threads, POP909 path (optional)."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
POP909 = REPO.parent / "shared" / "data" / "pop909" / "POP909"


@pytest.fixture(scope="session")
def pop909_dir() -> Path:
    if not POP909.is_dir():
        pytest.skip(f"POP909 not found at {POP909} (reference data, present only beside the dev checkout)")
    return POP909


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Caches, imported models and spools go to a per-session temp dir, never the user's."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("EMSYNC_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("EMSYNC_MODELS_DIR", str(base / "models"))
    monkeypatch.setenv("EMSYNC_SPOOL", str(base / "spool"))
