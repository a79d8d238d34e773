"""Bridge subcommands: serve (the daemon), ports, doctor, bench-live.

Import-light: the daemon, torch/onnxruntime and rtmidi load only when a command runs.
"""

from __future__ import annotations

import json
import sys

from emsync_bridge.commands.registry import command
from emsync_bridge.errors import EmsyncError
from emsync_bridge.commands import argtypes
from emsync_bridge.timeline import protocol


@command("serve", "run the bridge daemon: OSC from REAPER, MIDI files (commit) or a live MIDI port")
def serve(args) -> int:
    from emsync_bridge.bridge.daemon import Bridge, BridgeConfig
    from emsync_bridge.paths import check_output_dir

    # --quantize, --duration, ports, --lead, --min-scene: ranges checked by their argtypes.
    # The spool is where the daemon writes: a writable folder, given as an absolute path (the
    # status file and the REAPER scripts name it; a relative one would depend on the cwd).
    spool = None if args.spool is None else check_output_dir(args.spool, what="--spool").resolve()
    cfg = BridgeConfig(
        osc_host=args.host, osc_port=args.osc_port, reaper_host=args.reaper_host, reaper_port=args.reaper_port,
        allow_remote=args.allow_remote, allow_from=tuple(args.allow_from) if args.allow_from else None,
        spool=spool, mode=args.mode,
        midi_port=args.midi_port, policy=args.boundaries, min_spacing=args.min_scene, model=args.model,
        backend=args.backend, seed=args.seed, duration=args.duration, analyze_video=not args.no_video_analysis,
        quantize_qn=args.quantize, layout=args.layout, lead_s=args.lead, realtime=not args.no_realtime,
    )
    bridge = Bridge(cfg)
    bridge.handle_signals()  # before start: it answers status from then on
    bridge.start()
    print(f"emsync-bridge serving ({bridge.mode} mode) on {bridge.osc.host}:{bridge.osc.port}; "
          f"status: {bridge.spool / protocol.STATUS_FILE}; Ctrl+C to stop", file=sys.stderr)
    bridge.serve_forever()
    return 0


def _serve_args(p) -> None:
    p.add_argument("--osc-port", type=argtypes.port, default=protocol.DAEMON_OSC_PORT,
                   help="UDP port the daemon listens on (0..65535)")
    p.add_argument("--reaper-port", type=argtypes.port, default=protocol.REAPER_OSC_PORT,
                   help="REAPER's OSC listen port (0..65535)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (non-loopback needs --allow-remote)")
    p.add_argument("--reaper-host", default="127.0.0.1")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host (no authentication!)")
    p.add_argument("--allow-from", action="append", default=None, metavar="ADDR[,ADDR]",
                   help="only these senders (IPs or networks, e.g. 127.0.0.1,10.0.0.0/24) may regenerate, "
                        "set emotions, change mode or shut down; repeatable (default: anyone who can reach the port)")
    p.add_argument("--spool", type=argtypes.nonempty, default=None, help="spool folder shared with the REAPER scripts (default: as the scripts)")
    p.add_argument("--mode", choices=["commit", "live"], default="commit")
    p.add_argument("--midi-port", default=protocol.LIVE_PORT_NAME,
                   help="live mode output: NAME (virtual port; Windows: existing loopMIDI port), port:NAME, record:")
    p.add_argument("--boundaries", choices=["cuts", "markers", "both"], default="both", help="boundary policy")
    p.add_argument("--min-scene", type=argtypes.non_negative, default=4.0,
                   help="minimum spacing of video-cut boundaries (s)")
    p.add_argument("--model", default=None)
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
    p.add_argument("--seed", type=argtypes.seed, default=0)
    p.add_argument("--duration", type=argtypes.duration, default=None,
                   help=f"score length without a video item (s, at most {argtypes.MAX_DURATION_S:.0f})")
    p.add_argument("--no-video-analysis", action="store_true", help="ignore the video (markers only)")
    p.add_argument("--quantize", type=argtypes.positive, default=None, metavar="QN",
                   help="commit mode: snap note starts to this grid in quarter notes (e.g. 0.25)")
    p.add_argument("--layout", choices=["per-instrument", "type1"], default="per-instrument",
                   help="one MIDI file per instrument, or one type-1 file")
    p.add_argument("--lead", type=argtypes.non_negative, default=None,
                   help="live: how far ahead of the play head a regeneration starts (s; default: adaptive from "
                        "measured time to the first note, 30-250 ms)")
    p.add_argument("--no-realtime", action="store_true",
                   help="live: do not ask for real-time scheduling of the MIDI scheduler thread")


serve.add_arguments = _serve_args


@command("ports", "list MIDI ports per backend (ALSA, JACK, CoreMIDI, WinMM) and which one live mode uses")
def ports(args) -> int:
    from emsync_bridge.bridge.sinks import active_backend, probe_backends

    probed = probe_backends()
    active = active_backend(probed)
    if args.json:
        print(json.dumps({"active": active.api if active else None,
                          "backends": [vars(b) | {"outputs": list(b.outputs), "inputs": list(b.inputs)} for b in probed]},
                         indent=1))
        return 0
    for b in probed:
        mark = "*" if active is not None and b.api == active.api else " "
        if not b.available:
            print(f"{mark} {b.label:9s} unavailable: {b.error}")
            continue
        print(f"{mark} {b.label:9s} outputs: {', '.join(b.outputs) or '-'}")
        print(f"  {'':9s} inputs:  {', '.join(b.inputs) or '-'}")
    print(f"live mode uses: {active.label if active else 'nothing (no working MIDI backend)'}"
          f"{' (virtual port ' + repr(protocol.LIVE_PORT_NAME) + ')' if active and active.api != 'WINDOWS_MM' else ''}")
    return 0


ports.add_arguments = lambda p: p.add_argument("--json", action="store_true")


@command("doctor", "check onnxruntime, MIDI backend, OSC port, spool and the REAPER pattern file")
def doctor(args) -> int:
    from emsync_bridge.bridge.doctor import run_checks

    checks = run_checks(osc_port=args.osc_port, spool=args.spool, reaper_resource=args.reaper_resource)
    worst = 0
    for c in checks:
        worst = max(worst, {"ok": 0, "warn": 0, "fail": 1}[c.level])
        print(f"[{c.level:4s}] {c.name}: {c.detail}")
    return worst


def _doctor_args(p) -> None:
    p.add_argument("--osc-port", type=argtypes.port, default=protocol.DAEMON_OSC_PORT)
    p.add_argument("--spool", type=argtypes.nonempty, default=None)
    p.add_argument("--reaper-resource", default=None, help="REAPER resource path (default: per OS)")


doctor.add_arguments = _doctor_args


@command("bench-live", "live-mode benchmarks: regeneration latency, scheduler accuracy, stuck notes, OSC flood")
def bench_live(args) -> int:
    from emsync_bridge.bench.live import run_all
    from emsync_bridge.paths import check_output_file

    if args.rounds < 1 or (args.trials is not None and args.trials < 1):
        raise EmsyncError("--rounds and --trials must be at least 1")
    if args.json is not None:
        check_output_file(args.json, "--json")
    result = run_all(quick=args.quick, only=args.only, model=args.model, rounds=args.rounds, trials=args.trials)
    text = json.dumps(result, indent=1)
    if args.json:
        from emsync_bridge.atomic import write_atomic

        write_atomic(args.json, (text + "\n").encode())
    print(text)
    if "regen" in result:  # the acceptance table last, where a reader looks
        from emsync_bridge.bench.live import format_regen

        print(format_regen(result["regen"]))
    return 0 if result.get("pass", False) else 1


def _bench_args(p) -> None:
    p.add_argument("--quick", action="store_true", help="smaller counts (smoke run)")
    p.add_argument("--only", choices=["regen", "scheduler", "transport", "osc"], default=None)
    p.add_argument("--json", metavar="PATH", default=None, help="also write the results here")
    p.add_argument("--model", default=None, help="model (default: the shipped one)")
    p.add_argument("--rounds", type=int, default=1, help="regen: consecutive rounds, each reported (default 1)")
    p.add_argument("--trials", type=int, default=None, help="regen: marker moves per round (default 40; --quick 10)")


bench_live.add_arguments = _bench_args
