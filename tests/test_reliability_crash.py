"""Crash safety (fast version): kill -9 a commit-mode daemon at 10 random file-system steps of a
commit (+3 kills at random times), checking after each that the importer sees no partial or
corrupt file and that the restarted daemon recovers; SIGTERM in live mode sends all-notes-off
(MIDI recorded to a file the test reads). `benchmarks/reliability.py` does 100 rounds."""

from __future__ import annotations

from harness.reliability import importer_view, run_crash_rounds, run_sigterm_check
from emsync_bridge.music.midi import CHANNELS
from emsync_bridge.timeline.spool import ensure_spool


def test_kill9_mid_commit_never_shows_partial_files_and_restart_recovers(tmp_path):
    r = run_crash_rounds(10, seed=7, tmp=tmp_path, duration=2.0, random_kills=3)
    assert r["importer_view_bad"] == 0, r["problems"]
    assert r["kills_in_commit"] + r["kills_outside_commit"] == 10
    assert r["kills_in_commit"] >= 5, r  # most kills land inside the commit, by construction
    assert r["recovery_failed"] == 0 and r["recovered"] == 10 + 3 + 1, r["problems"]
    assert r["final_importer_view"]["ok"] and r["final_importer_view"]["files"] >= 1
    assert r["final_exit_code"] == 0 and r["final_status_state"] == "stopped"
    assert r["temp_files_left"] == [], "a restart removes what an interrupted commit left"
    assert r["steps_per_commit"] >= 8


def test_importer_view_catches_what_it_must(tmp_path):
    spool = ensure_spool(tmp_path / "spool")
    assert importer_view(spool)["ok"]  # nothing to import yet
    (spool / "out" / "manifest.json").write_text('{"version": 1, "kind": "emsync.manifest", "generation_id": "g1", ')
    assert not importer_view(spool)["ok"]
    (spool / "out" / "g1").mkdir()
    (spool / "out" / "g1" / "piano.mid").write_bytes(b"MThd\0\0\0\6\0\1\0\2\3\xc0MTrk")  # cut short
    (spool / "out" / "manifest.json").write_text(
        '{"version": 1, "kind": "emsync.manifest", "generation_id": "g1", "items": [{"instrument": "piano",'
        ' "file": "out/g1/piano.mid", "track": "EmSync Piano", "position": 0, "length": 2}]}')
    v = importer_view(spool)
    assert not v["ok"] and v["problem"], v


def test_sigterm_sends_all_notes_off_before_exit(tmp_path):
    r = run_sigterm_check(tmp_path)
    assert r["exit_code"] == 0 and r["status_state"] == "stopped", r
    assert r["all_notes_off_channels_after_sigterm"] == sorted(set(CHANNELS.values())), r
    assert r["left_sounding"] == 0, r
