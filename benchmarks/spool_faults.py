"""Spool-fault benchmark: the faults of tests/test_reliability_daemon_faults.py, many rounds each.

    python benchmarks/spool_faults.py [--rounds 20] [--json PATH]

One commit-mode daemon (in-process, the shipped model). Per round and fault kind (symlink loop at
project.json or requests/, requests/ a file, requests/rejected a file while a bad request
arrives): make the fault, poll for 0.3 s, ask for the status (round trip), remove the fault, then
time until the status is answered and until `last_error` is cleared. Also the supervisor: a
control-loop poll that raises, counted and restarted. Prints every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from test_reliability_daemon_faults import SPOOL_FAULTS, _bridge, _status_s  # noqa: E402

from harness.reliability import manifest_id, wait_for, write_project  # noqa: E402
from emsync_bridge.runtime import load_engine  # noqa: E402
from emsync_bridge.timeline import protocol  # noqa: E402


def _stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"n": len(xs), "p50_ms": round(1000 * statistics.median(xs), 2), "max_ms": round(1000 * max(xs), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    out = {"load_start": os.getloadavg()[0], "rounds": a.rounds, "faults": {}}
    engine = load_engine()
    with tempfile.TemporaryDirectory() as tmp:
        spool = Path(tmp) / "spool"
        spool.mkdir()
        write_project(spool, duration=2.0, markers=((1, "", 1.0),))
        bridge = _bridge(engine, spool).start()
        try:
            assert wait_for(lambda: manifest_id(spool), 120.0)
            for name, (make, undo) in SPOOL_FAULTS.items():
                during, after, cleared, unanswered = [], [], [], 0
                for _ in range(a.rounds):
                    make(spool)
                    time.sleep(0.3)
                    rtt = _status_s(bridge, 1.0)
                    unanswered += rtt is None
                    during.append(rtt)
                    undo(spool)
                    for p in (spool / protocol.REQUESTS_DIR).glob("*.json"):
                        p.unlink()
                    t = time.monotonic()
                    after.append(_status_s(bridge, 1.0))
                    cleared.append(time.monotonic() - t if wait_for(lambda: bridge.last_error == "", 5.0) else None)
                out["faults"][name] = {"status_during": _stats(during), "unanswered": unanswered,
                                       "status_after_removal": _stats(after),
                                       "last_error_cleared_after": _stats(cleared),
                                       "threads_alive": all(t.is_alive() for t in bridge._threads)}
                print(json.dumps({name: out["faults"][name]}), flush=True)
            # the supervisor: the control loop's poll raises a bug `rounds` times in a row
            real, calls = bridge._poll_spool, {"n": 0}

            def flaky():
                calls["n"] += 1
                if calls["n"] <= a.rounds:
                    raise RuntimeError("injected bug")
                real()

            bridge._poll_spool = flaky
            t = time.monotonic()
            during = []
            while calls["n"] <= a.rounds and time.monotonic() - t < 60:
                during.append(_status_s(bridge, 1.0))
            restarted_s = time.monotonic() - t
            del bridge._poll_spool
            out["supervisor"] = {"injected": a.rounds, "restarts": dict(bridge.thread_restarts),
                                 "wall_s": round(restarted_s, 2), "status_during": _stats(during),
                                 "unanswered": sum(x is None for x in during),
                                 "threads_alive": all(t.is_alive() for t in bridge._threads)}
            print(json.dumps({"supervisor": out["supervisor"]}), flush=True)
        finally:
            bridge.close()
    out["load_end"] = os.getloadavg()[0]
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
