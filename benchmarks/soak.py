"""Soak benchmark (not CI): live mode for --minutes (default 30) with a regeneration every 10 s and
REAPER's OSC at 30 Hz (the simulator's /time feed plus /beat/str), the project looping. Prints a
row per window (RSS, note timing error, regeneration latency, status round trip) and a summary:
RSS growth (last window vs the first) must stay under 10 %, nothing left sounding.

    python benchmarks/soak.py [--minutes 30] [--regen-every 10] [--osc-hz 30] [--json PATH]
"""

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the harness lives with the tests
from harness.reliability import run_soak  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--regen-every", type=float, default=10.0, help="seconds between regenerations")
    p.add_argument("--osc-hz", type=float, default=30.0)
    p.add_argument("--windows", type=int, default=10, help="figures are reported per window")
    p.add_argument("--json", default=None, help="also write the result here")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    res = run_soak(minutes=a.minutes, regen_every_s=a.regen_every, osc_hz=a.osc_hz, windows=a.windows,
                   progress=lambda row: print(json.dumps(row), flush=True))
    summary = {k: v for k, v in res.items() if k != "windows"}
    print(json.dumps(summary, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if res["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
