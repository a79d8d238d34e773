"""Transport chaos (fast version): 200 random sequences against the live scheduler in virtual time
and 10 against the real daemon in live mode over UDP (`benchmarks/reliability.py`: 1 000 and 200,
with the panic latency figures). Invariant: notes left sounding = 0."""

from __future__ import annotations

import pytest

from harness.reliability import run_daemon_chaos, run_virtual_chaos


def test_virtual_chaos_leaves_nothing_sounding():
    r = run_virtual_chaos(200, seed=3)
    assert r["notes_left_sounding"] == 0, r
    assert r["untracked_sounding"] == 0, "the receiver played a note the scheduler no longer tracked"
    assert r["sounding_after_stop_or_panic"] == 0
    assert r["note_ons"] > 1000 and r["steps"] > 10_000  # the sequences really played music
    assert set(r["ops_by_kind"]) >= {"seek", "loop", "rate", "tempo", "regen_ahead", "regen_behind", "panic",
                                     "stop_play"}


@pytest.fixture(scope="module")
def engine():
    from emsync_bridge.runtime import load_engine

    return load_engine()


def test_daemon_chaos_leaves_nothing_sounding_and_panic_silences(engine, tmp_path):
    r = run_daemon_chaos(10, seed=5, engine=engine[0], files=engine[1], tmp=tmp_path)
    assert r["notes_left_sounding"] == 0, r
    assert r["panics"] >= 1 and r["panic_ms"]["max"] is not None and r["panic_ms"]["max"] < 2000, r
    assert r["panic_sounding_after"] == 0, "something still sounded when the panic's silence was done"
    assert r["silences"].get("panic", 0) == r["panics"]
    assert r["note_ons"] > 0 and r["regenerations"] >= 1
