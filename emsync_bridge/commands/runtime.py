"""Runtime subcommands: export (ONNX with a KV cache) and bench (decoder and analysis speed)."""

from __future__ import annotations

import json
import sys

from emsync_bridge.commands.registry import command
from emsync_bridge.commands import argtypes


@command("export", "export a model to ONNX (prefill/step graphs with a KV cache), checked against torch")
def export_cmd(args) -> int:
    from pathlib import Path

    from emsync_bridge.models import resolve
    from emsync_bridge.runtime.onnx_cache import cache_key, ensure_exported, torch_model_for, write_export

    from emsync_bridge.paths import check_output_dir

    if args.out is not None:
        check_output_dir(args.out, what="--out")  # before the model loads and the export runs
    files = resolve(args.model)
    if args.out:
        manifest = write_export(torch_model_for(files, args.seed), Path(args.out),
                                {"model": files.name, "weights_hash": files.weights_hash(),
                                 "trained": files.trained, "seed": args.seed})
        where = Path(args.out)
    else:
        cached = ensure_exported(files, args.seed, force=args.force)
        manifest, where = cached.manifest, cached.dir
        if not cached.exported_now:
            print(f"already exported (cache key {cache_key(files, args.seed)}); --force to redo", file=sys.stderr)
    size = sum(f["size"] for f in manifest["files"].values()) / 1e6
    print(f"{files.name}{'' if files.trained else ' (untrained)'}: ONNX graphs in {where} ({size:.1f} MB), "
          f"max |logits diff| vs torch {manifest['parity_max_abs_diff']:.2e}")
    return 0


def _export_args(p):
    p.add_argument("--model", default=None, help="model name or .safetensors path (default: the shipped model)")
    p.add_argument("--out", default=None, help="output folder (default: the user cache, where the daemon looks)")
    p.add_argument("--seed", type=argtypes.seed, default=0, help="seed of an untrained model's weights")
    p.add_argument("--force", action="store_true", help="re-export even if the cache is valid")


export_cmd.add_arguments = _export_args


@command("bench", "measure decoder speed (reference vs cached torch vs ONNX Runtime) and analysis speed")
def bench_cmd(args) -> int:
    if args.what == "live":  # the bridge's live-mode acceptance bench (emsync_bridge/bench/live.py)
        from emsync_bridge.bench.live import run_all

        live = run_all(quick=args.quick)
        print(json.dumps(live, indent=None if args.json else 1))
        return 0 if live.get("pass") else 1
    from emsync_bridge.bench import decode as bench

    say = None if args.json else (lambda msg: print(f"bench: {msg} ...", file=sys.stderr, flush=True))
    result = {}
    if args.what in ("decode", "all"):
        result = bench.bench_decode(quick=args.quick, model=args.model, seconds=args.seconds, progress=say)
    if args.what in ("analyze", "all"):
        result["analyze"] = bench.bench_analyze()
    if args.json:
        print(json.dumps(result))
        return 0
    if "decoder" in result:
        print(bench.format_decode(result))
    if "analyze" in result:
        a = result["analyze"]
        print("analyze: " + (json.dumps({k: v for k, v in a.items() if k != "available"}) if a["available"]
                             else "not available"))
    return 0


def _bench_args(p):
    p.add_argument("what", nargs="?", default="decode", choices=["decode", "analyze", "all", "live"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="tiny model, short piece (smoke test)")
    p.add_argument("--model", default=None,
                   help="model for the generation benchmark (default: the shipped one; a config name such as "
                        "emsync-37m without installed weights runs that shape with random weights)")
    p.add_argument("--seconds", type=argtypes.duration, default=None, help="music to generate (default 60)")


bench_cmd.add_arguments = _bench_args
