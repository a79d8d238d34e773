"""Reliability benchmark: the full counts of tests/test_reliability_*.py, every figure printed.

    python benchmarks/reliability.py [--only NAME[,NAME]] [--json PATH] [--quick]

network   the default daemon in its own network namespace: bound addresses, unreachable on a
          non-loopback address, --allow-remote warning, --allow-from denials
fuzz      10 000 malformed datagrams against `emsync-bridge serve` (alive, status, rejects, RSS),
          then 10 000 more on the same daemon (RSS again: warm-up vs leak)
chaos     1 000 random transport sequences against the live scheduler (virtual time) and 200
          against the live daemon over UDP (notes left sounding, panic latency)
crash     kill -9 at 100 random file-system steps of a commit + 20 at random times (importer
          view, recovery), SIGTERM all-notes-off
video     the bad video matrix (result and wall time per file)
"""

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the harness lives with the tests
from harness import reliability as R  # noqa: E402

PARTS = ("network", "fuzz", "chaos", "crash", "video")


def run(parts, quick: bool, tmp: Path) -> dict:
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                       "loadavg_1m_start": round(os.getloadavg()[0], 2)}}

    def timed(name, fn):
        t = time.perf_counter()
        print(f"reliability: {name} ...", file=sys.stderr, flush=True)
        out[name] = fn()
        out[name]["bench_wall_s"] = round(time.perf_counter() - t, 1)
        print(json.dumps({name: out[name]}, indent=1), flush=True)

    if "network" in parts:
        def network():
            r = R.netns_check(tmp / "netns")
            if r is None:
                return {"skipped": "no network namespaces here", "pass": True}
            r["pass"] = (r["default_all_loopback"] and not r["default_reachable_on_ns_addr"]
                         and r["remote_reachable_on_ns_addr"] and r["remote_denied"] == 2
                         and r["remote_warning_logged"] and r["remote_stopped_by_allowed_shutdown"])
            return r
        timed("network", network)
    if "fuzz" in parts:
        def fuzz():
            spool = tmp / "fuzz-spool"
            spool.mkdir()
            R.write_project(spool, duration=3.0)
            d = R.start_daemon(spool, args=["--no-video-analysis"])
            try:
                d.wait_ready()
                R.wait_for(lambda: d.status(timeout=2.0)["commit"].get("generation_id"), 120.0)
                r = R.run_fuzz(d, n=2000 if quick else 10_000, seed=1)
                # A second pass on the same daemon: growth that is warm-up (first generations,
                # allocator) stops; a leak would grow again.
                r2 = R.run_fuzz(d, n=2000 if quick else 10_000, seed=2)
                r["second_pass"] = {k: r2[k] for k in ("rss_before_mb", "rss_after_mb", "rss_growth_pct",
                                                      "status_checks_failed", "rejects_counted", "alive")}
                r["daemon_log_lines"] = len(d.log_text().splitlines())
                r["daemon_tracebacks"] = d.log_text().count("Traceback")
            finally:
                r_exit = d.stop()
            r["exit_code_after_sigterm"] = r_exit
            r["pass"] = (r["alive"] and r["answered_at_end"] and r["status_checks_failed"] == 0
                         and r["rss_growth_pct"] < 10.0 and r["daemon_tracebacks"] == 0
                         and r["second_pass"]["rss_growth_pct"] < 10.0 and r["second_pass"]["alive"])
            return r
        timed("fuzz", fuzz)
    if "chaos" in parts:
        def chaos():
            v = R.run_virtual_chaos(200 if quick else 1000, seed=1)
            d = R.run_daemon_chaos(20 if quick else 200, seed=1, tmp=tmp)
            return {"virtual": v, "daemon": d, "pass": v["pass"] and d["pass"]}
        timed("chaos", chaos)
    if "crash" in parts:
        def crash():
            c = R.run_crash_rounds(10 if quick else 100, seed=1, tmp=tmp / "crash", random_kills=3 if quick else 20)
            s = R.run_sigterm_check(tmp / "sigterm")
            return {"kill9": c, "sigterm": s, "pass": c["pass"] and s["pass"]}
        timed("crash", crash)
    if "video" in parts:
        timed("video", lambda: R.run_video_matrix(tmp))
    out["pass"] = all(out[p].get("pass", False) for p in parts)
    out["machine"]["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    p.add_argument("--quick", action="store_true", help="the CI counts instead of the full ones")
    p.add_argument("--json", default=None, help="also write all results here")
    a = p.parse_args()
    parts = [x for x in a.only.split(",") if x]
    bad = set(parts) - set(PARTS)
    if bad:
        p.error(f"unknown part(s): {', '.join(sorted(bad))}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="emsync-reliability-") as tmp:
        res = run(parts, a.quick, Path(tmp))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({"pass": res["pass"], "parts": {k: res[k].get("pass") for k in parts}}))
    return 0 if res["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
