"""Hostile-argument benchmark: the hypothesis properties of the CI suite at full size.

    python benchmarks/cli_fuzz.py [--examples 1000] [--subprocess 200] [--json PATH]

1. `tests/test_reliability_cli.py::test_no_argument_makes_a_traceback` for each of the 13
   subcommands with --examples generated argument lists (in-process `cli.main`, the expensive
   work replaced by a sentinel: what is exercised is parsing and every check made before work),
   and the OSC property (`test_hypothesis_osc_arguments_never_break_the_daemon`, 5x examples).
2. --subprocess N: N real `python -m emsync_bridge` runs with random hostile arguments (seeded),
   the actual entry point and its imports: no "Traceback" on stderr, exit 0/1/2, one-line errors.
   Commands that would start long work (a daemon, a panel, training, an export) get a bad
   argument as well so that they stop at the check; runs are bounded by a 60 s timeout each.

Prints one JSON object (and writes it to --json): examples per command, failures, wall times,
machine load at the start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOSTILE = ["", "-1", "70000", "1e9", "1e309", "nan", "-inf", "9" * 30, "a,b", "/dev/null", "/dev/zero", "..",
           "/", "x.json", "x.png", "\u00e9\u00e9", "--", "-", "0", "3,-1"]
OPTIONS = {
    "generate": ["--duration", "--seed", "--valence", "--arousal", "--boundaries", "--temperature", "--top-p",
                 "--valence-guidance", "--model", "-o"],
    "score": ["-o", "--seed", "--valence", "--min-scene", "--tempo-grid", "--instruments", "--emotion"],
    "analyze": ["--json", "--png", "--min-scene", "--estimator", "--detector"],
    "serve": ["--osc-port", "--reaper-port", "--spool", "--seed", "--duration", "--lead", "--min-scene",
              "--quantize", "--allow-from", "--host"],
    "panel": ["--osc-port", "--load", "--screenshot"],
    "doctor": ["--osc-port", "--spool"],
    "export": ["--model", "--out", "--seed"],
    "train": ["--data", "--config", "--minutes", "--batch-size", "--lr"],
}
# a bad value that always stops the command at parsing or at its first check
STOPPER = {"serve": ["--osc-port", "70000"], "panel": ["--osc-port", "70000"], "export": ["--model", "/nonexistent.safetensors"],
           "train": ["--config", "no-such-config", "--data", "/nonexistent"]}


def hypothesis_part(examples: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.jsonl"
        env = dict(os.environ, EMSYNC_HYPOTHESIS_EXAMPLES=str(examples), QT_QPA_PLATFORM="offscreen",
                   EMSYNC_HYPOTHESIS_REPORT=str(report))
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/test_reliability_cli.py::test_no_argument_makes_a_traceback",
                            "tests/test_reliability_daemon_faults.py::test_hypothesis_osc_arguments_never_break_the_daemon"],
                           cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        lines = [json.loads(x) for x in report.read_text().splitlines()] if report.exists() else []
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    return {"examples_per_command": examples, "ran": lines, "pytest": summary, "ok": r.returncode == 0,
            "wall_s": round(wall, 1),
            "failures": [line for line in r.stdout.splitlines() if line.startswith(("E  ", "FAILED"))][:40]}


def subprocess_part(n: int, seed: int) -> dict:
    rng = random.Random(seed)
    failures, codes, walls = [], {}, []
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "afile").write_text("x")
        for i in range(n):
            cmd = rng.choice(sorted(OPTIONS))
            argv = [cmd]
            if cmd in ("score", "analyze"):
                argv.append(rng.choice(HOSTILE + ["afile"]))
            for _ in range(rng.randint(1, 3)):
                argv += [rng.choice(OPTIONS[cmd]), rng.choice(HOSTILE + ["afile", "afile/x"])]
            argv += STOPPER.get(cmd, [])
            if cmd == "generate":
                argv += ["--duration", rng.choice(["0", "-1", "1e9", "nan"])]  # never a real model run
            if cmd in ("score", "analyze"):
                argv[1] = rng.choice(["/nonexistent.mp4", "afile", ""])  # never a real video
            t = time.perf_counter()
            try:
                r = subprocess.run([sys.executable, "-m", "emsync_bridge", *argv], cwd=tmp, capture_output=True,
                                   text=True, timeout=60, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
            except subprocess.TimeoutExpired:
                failures.append({"argv": argv, "why": "timeout 60 s"})
                continue
            walls.append(time.perf_counter() - t)
            codes[r.returncode] = codes.get(r.returncode, 0) + 1
            err = r.stderr.strip()
            if "Traceback" in err or r.returncode not in (0, 1, 2) or (r.returncode and len(err.splitlines()) != 1):
                failures.append({"argv": argv, "rc": r.returncode, "stderr": err[-500:]})
    walls.sort()
    return {"runs": n, "seed": seed, "exit_codes": codes, "failures": failures,
            "wall_s_p50": round(walls[len(walls) // 2], 2) if walls else None,
            "wall_s_max": round(walls[-1], 2) if walls else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=1000, help="hypothesis examples per command (0: skip)")
    ap.add_argument("--subprocess", type=int, default=200, help="real subprocess runs (0: skip)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    out = {"load_start": os.getloadavg()[0]}
    if a.examples:
        out["hypothesis"] = hypothesis_part(a.examples)
    if a.subprocess:
        out["subprocess"] = subprocess_part(a.subprocess, a.seed)
    out["load_end"] = os.getloadavg()[0]
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    ok = out.get("hypothesis", {}).get("ok", True) and not out.get("subprocess", {}).get("failures")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
