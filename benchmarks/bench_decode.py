"""Decoder benchmark: reference (full recompute) vs cached torch vs cached ONNX Runtime, and
seconds of music per wall second with the default model. Same as `emsync-bridge bench decode`.

    python benchmarks/bench_decode.py [--quick] [--json]
"""

import argparse
import json
import logging
import sys

from emsync_bridge.bench.decode import bench_decode, format_decode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny model, short piece (smoke test)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--model", default=None, help="model for the generation benchmark")
    p.add_argument("--seconds", type=float, default=None, help="music to generate (default 60)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    say = None if args.json else (lambda msg: print(f"bench: {msg} ...", file=sys.stderr, flush=True))
    result = bench_decode(quick=args.quick, model=args.model, seconds=args.seconds, progress=say)
    print(json.dumps(result) if args.json else format_decode(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
