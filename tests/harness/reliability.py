"""Reliability harness: network surface, OSC fuzz, transport chaos, kill -9 crash safety, SIGTERM,
soak. `tests/test_reliability_*.py` run each with small counts; `benchmarks/reliability.py` and
`benchmarks/soak.py` run the full counts and print every figure (docs/reliability.md).

Everything talks to daemons over 127.0.0.1 only (the network-namespace probe also uses an address
on a veth pair inside a namespace it creates itself); every loop is bounded; every daemon this
starts is stopped by its process id.

`python tests/harness/reliability.py child ...` runs a daemon the way `emsync-bridge serve`
does, plus two test hooks: live MIDI to a file (`--record`, one line per message, written with
O_APPEND so it survives kill -9) and `--kill-at-op N`: SIGKILL itself at the N-th file-system step
of a commit (temp file created, fsync, rename, folder removal; before or after each).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from emsync_bridge.bridge.events import MidiMsg, NoteEvent
from emsync_bridge.bridge.osc import BridgeClient, build_message
from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol

log = logging.getLogger(__name__)

CC_ALL_NOTES_OFF = 123


def pct(values, q: float):
    v = sorted(values)
    if not v:
        return None
    return v[min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))]


def ms(x):
    return None if x is None else round(x * 1000.0, 3)


def wait_for(pred, timeout: float, step: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------------------------ sinks


class FileSink:
    """Live MIDI to a file: `wall hexbytes project_time` per line, O_APPEND, unbuffered."""

    name = "file-sink"
    api = "file"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.closed = False
        self._lock = threading.Lock()

    def send(self, msg: MidiMsg, project_time: float | None = None) -> None:
        line = f"{time.perf_counter():.6f} {bytes(msg.bytes()).hex()} {'' if project_time is None else round(project_time, 6)}\n"
        with self._lock:
            if not self.closed:
                os.write(self.fd, line.encode())

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                os.close(self.fd)


def read_file_sink(path: str | Path) -> list[tuple[float, MidiMsg]]:
    out = []
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) < 2 or len(parts[1]) != 6:
            continue  # a line cut by kill -9
        out.append((float(parts[0]), MidiMsg.from_bytes(bytes.fromhex(parts[1]))))
    return out


class TrackingSink:
    """What a receiver plays, updated per message (no message list: bounded memory for long runs).

    `on`: (channel, note) sounding at the receiver. Optional `on_send(msg, project_time, wall)`."""

    name = "tracking"

    def __init__(self, clock=time.perf_counter, keep: int = 0):
        self.clock = clock
        self.on: set[tuple[int, int]] = set()
        self.count = 0
        self.note_ons = 0
        self.keep = keep
        self.recent: list = []  # (wall, msg, project_time), the last `keep`
        self.on_send = None
        self._lock = threading.Lock()
        self.closed = False

    def send(self, msg: MidiMsg, project_time: float | None = None) -> None:
        wall = self.clock()
        with self._lock:
            self.count += 1
            if msg.type == "note_on" and msg.velocity > 0:
                self.on.add((msg.channel, msg.note))
                self.note_ons += 1
            elif msg.type in ("note_on", "note_off"):
                self.on.discard((msg.channel, msg.note))
            elif msg.type == "control_change" and msg.control in (CC_ALL_NOTES_OFF, 120):
                self.on = {k for k in self.on if k[0] != msg.channel}
            if self.keep:
                self.recent.append((wall, msg, project_time))
                if len(self.recent) > 2 * self.keep:
                    del self.recent[: len(self.recent) - self.keep]
        if self.on_send is not None:
            self.on_send(msg, project_time, wall)

    def sounding(self) -> set[tuple[int, int]]:
        with self._lock:
            return set(self.on)

    def close(self) -> None:
        self.closed = True


# ------------------------------------------------------------------------------------ daemon processes


@dataclass
class DaemonProc:
    proc: subprocess.Popen
    port: int
    spool: Path
    log_path: Path
    host: str = "127.0.0.1"
    _log_fh: object = None
    started: float = 0.0  # time.monotonic() when it was started

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status(self, timeout: float = 1.0, host: str | None = None) -> dict:
        with BridgeClient(host or self.host, self.port, timeout=timeout) as c:
            return c.status()

    def send(self, address: str, *args) -> None:
        with BridgeClient(self.host, self.port) as c:
            c.send(address, *args)

    def wait_ready(self, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise EmsyncError(f"daemon exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                return self.status(timeout=0.5)
            except EmsyncError:
                continue
        raise EmsyncError(f"daemon did not answer within {timeout} s: {self.log_tail()}")

    def rss(self) -> int:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 8) -> str:
        return " | ".join(self.log_text().strip().splitlines()[-n:])

    def send_signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signal the daemon (by pid) and wait; SIGKILL if it does not exit in `timeout`."""
        self.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        return self.proc.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL, timeout=10)


def start_daemon(spool: Path, *, port: int | None = None, args=(), child: bool = False, env: dict | None = None,
                 log_path: Path | None = None, prefix=(), host: str = "127.0.0.1") -> DaemonProc:
    """`emsync-bridge serve` (or the `child` runner) in a subprocess; output goes to `log_path`."""
    spool = Path(spool)
    spool.mkdir(parents=True, exist_ok=True)
    port = port or free_udp_port()
    reaper_port = free_udp_port()  # nothing listens there: REAPER is not running
    if child:
        cmd = [sys.executable, __file__, "child"]
    else:
        cmd = [sys.executable, "-m", "emsync_bridge", "serve"]
    cmd += ["--osc-port", str(port), "--reaper-port", str(reaper_port), "--spool", str(spool), *map(str, args)]
    log_path = Path(log_path or spool.parent / f"daemon-{spool.name}-{port}.log")
    fh = open(log_path, "ab")
    e = dict(os.environ if env is None else env)
    e.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.Popen([*prefix, *cmd], stdout=fh, stderr=subprocess.STDOUT, env=e)
    return DaemonProc(proc, port, spool, log_path, host, fh)


def write_project(spool: Path, duration: float = 4.0, markers=((1, "", 1.5), (2, "joy", 3.0)),
                  project_id: str = "reliab01", video_items=()) -> Path:
    from emsync_bridge.bench.simulator import ReaperSim, SimMarker

    sim = ReaperSim(0, markers=[SimMarker(*m) for m in markers], project_id=project_id)
    try:
        return sim.write_project(spool, duration_hint=duration, video_items=video_items)
    finally:
        sim.close()


# ------------------------------------------------------------------------------------ 1. network surface


def bound_inet_sockets(pid: int) -> list[tuple[str, int]]:
    """(ip, port) of every IPv4/IPv6 socket of `pid` that is bound to a port."""
    import psutil

    out = []
    for c in psutil.Process(pid).net_connections(kind="inet"):
        if c.laddr and c.laddr.port:
            out.append((c.laddr.ip, c.laddr.port))
    return out


NETNS_ADDR = "10.213.0.1"


def netns_probe(spool_base: Path) -> dict:
    """Runs inside a fresh network namespace (see `netns_check`): a veth pair gives the namespace a
    non-loopback address; the default daemon must not answer there, an explicitly remote one must
    (the probe works), and --allow-from must deny control messages from that address."""
    from emsync_bridge.bridge.osc import is_loopback

    def ip(*a):
        subprocess.run(["ip", *a], check=True, capture_output=True, timeout=10)

    ip("link", "set", "lo", "up")
    ip("link", "add", "emr0", "type", "veth", "peer", "name", "emr1")
    ip("addr", "add", f"{NETNS_ADDR}/24", "dev", "emr0")
    ip("link", "set", "emr0", "up")
    ip("link", "set", "emr1", "up")
    res: dict = {"namespace_addr": NETNS_ADDR}
    d = start_daemon(spool_base / "netns-default", args=["--no-video-analysis"])
    try:
        res["default_status_loopback"] = d.wait_ready()["state"]
        res["default_bound"] = bound_inet_sockets(d.pid)
        res["default_all_loopback"] = all(is_loopback(h) for h, _ in res["default_bound"])
        try:
            d.status(timeout=1.5, host=NETNS_ADDR)
            res["default_reachable_on_ns_addr"] = True
        except EmsyncError:
            res["default_reachable_on_ns_addr"] = False
        res["default_alive"] = d.alive()
    finally:
        d.stop()
    d = start_daemon(spool_base / "netns-remote", args=["--no-video-analysis", "--host", "0.0.0.0", "--allow-remote",
                                                       "--allow-from", "127.0.0.1"])
    try:
        d.wait_ready()
        st = d.status(timeout=2.0, host=NETNS_ADDR)  # the control: a remote bind is reachable there
        res["remote_reachable_on_ns_addr"] = st["osc"]["host"] == "0.0.0.0"
        res["remote_warning_logged"] = "anyone on that network" in d.log_text()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((NETNS_ADDR, 0))
        for addr in ("/emsync/regenerate", "/emsync/shutdown"):
            s.sendto(build_message(addr), (NETNS_ADDR, d.port))
        s.close()
        st = wait_for(lambda: (x := d.status(timeout=1.0)) and x["osc"]["denied"] >= 2 and x, 5.0)
        res["remote_denied"] = st["osc"]["denied"] if st else None
        res["remote_alive_after_denied_shutdown"] = d.alive()
        d.send("/emsync/shutdown")  # from 127.0.0.1: allowed
        try:
            d.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        res["remote_stopped_by_allowed_shutdown"] = not d.alive()
    finally:
        d.stop()
    return res


def netns_check(spool_base: Path, timeout: float = 120.0) -> dict | None:
    """`netns_probe` in a new network namespace (`unshare -n`); None if namespaces are not allowed."""
    from shutil import which

    if which("unshare") is None or which("ip") is None:
        return None
    test = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10)
    if test.returncode != 0:
        return None
    spool_base.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["unshare", "-n", sys.executable, __file__, "netns-probe",
                        str(spool_base)], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise EmsyncError(f"netns probe failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ 2. OSC fuzz


FUZZ_KINDS = ("random_bytes", "slash_random", "truncated", "wrong_tags", "huge_blob", "wrong_args", "bad_bundle",
              "nested_bundle", "future_bundle", "pattern", "bad_utf8", "nan_inf", "oversize_string", "out_of_range")


def _osc_str(s: bytes) -> bytes:
    s += b"\0"
    return s + b"\0" * (-len(s) % 4)


def _fuzz_addresses() -> list[str]:
    out = []
    for a in protocol.REAPER_FEEDBACK_ADDRESSES:
        out.append(a.replace("@", "1"))
    # Never a well-formed /emsync/shutdown: the fuzz must not stop the daemon it is testing.
    out += [a for a in protocol.EMSYNC_ADDRESSES if a != "/emsync/shutdown"]
    return out


_ADDRS = _fuzz_addresses()
_VALID_ARGS = {"float": [1.5], "toggle": [1.0], "string": ["intro"]}


def _valid_message(rng: random.Random) -> bytes:
    addr = rng.choice(_ADDRS)
    pat = addr if addr in protocol.EMSYNC_ADDRESSES else next(
        k for k in protocol.REAPER_FEEDBACK_ADDRESSES if k.replace("@", "1") == addr)
    if pat in protocol.EMSYNC_ADDRESSES:
        spec = protocol.EMSYNC_ADDRESSES[pat].replace("[", "").replace("]", "")
        args = [{"f": 0.25, "i": 1, "s": "xyz"}[c] for c in spec]
    else:
        args = _VALID_ARGS[protocol.REAPER_FEEDBACK_ADDRESSES[pat]]
    return build_message(addr, args)


def _bundle(contents: list[bytes], timetag: bytes = b"\0" * 7 + b"\1") -> bytes:
    out = b"#bundle\0" + timetag
    for c in contents:
        out += struct.pack(">i", len(c)) + c
    return out


def fuzz_datagram(rng: random.Random, kind: str) -> bytes:
    """One malformed (or hostile) datagram of `kind` (see FUZZ_KINDS)."""
    if kind == "random_bytes":
        return rng.randbytes(rng.randint(0, 600))
    if kind == "slash_random":  # passes python-osc's first sanity check, then garbage
        return b"/" + rng.randbytes(rng.randint(0, 300))
    if kind == "truncated":
        m = _valid_message(rng)
        return m[: rng.randint(0, max(0, len(m) - 1))]
    if kind == "wrong_tags":
        addr = rng.choice(_ADDRS).encode()
        tags = "".join(rng.choice("ifsbhdtTFNIcrmz[]?!") for _ in range(rng.randint(0, 12)))
        return _osc_str(addr) + _osc_str(b"," + tags.encode()) + rng.randbytes(rng.randint(0, 64))
    if kind == "huge_blob":
        addr = rng.choice(_ADDRS).encode()
        if rng.random() < 0.5:  # a size field that lies
            return _osc_str(addr) + _osc_str(b",b") + struct.pack(">i", rng.choice([0x7FFFFFFF, -1, 1 << 30, 65536]))
        n = rng.randint(8_000, 60_000)
        return _osc_str(addr) + _osc_str(b",b") + struct.pack(">i", n) + rng.randbytes(n) + b"\0" * (-n % 4)
    if kind == "wrong_args":
        return _wrong_args(rng)
    if kind == "bad_bundle":
        inner = _valid_message(rng)
        size = rng.choice([0, -4, len(inner) + 4, 0x7FFFFFFF, -0x80000000, 3])
        return b"#bundle\0" + rng.randbytes(8) + struct.pack(">i", size) + inner[: rng.randint(0, len(inner))]
    if kind == "nested_bundle":
        d = _valid_message(rng)
        for _ in range(rng.choice([50, 500, 2000])):
            d = _bundle([d])
            if len(d) > 60_000:
                break
        return d
    if kind == "future_bundle":  # python-osc would sleep until the time tag in the server thread
        secs = int(time.time()) + 2_208_988_800 + rng.choice([60, 3600, 10**8])
        return _bundle([build_message("/time", [rng.uniform(0, 30)])], struct.pack(">II", secs % (1 << 32), 0))
    if kind == "pattern":  # OSC wildcards: never routed (a regex from them backtracks for minutes)
        return build_message(rng.choice(["/" + "*" * rng.randint(20, 200) + "Z", "/emsync/*", "/emsync/sh?tdown",
                                         "/{emsync,marker}/*", "/marker/[!0]/time", "/*/*/*"]), [])
    if kind == "bad_utf8":
        addr = rng.choice(_ADDRS).encode()
        if rng.random() < 0.5:
            return _osc_str(addr) + _osc_str(b",s") + _osc_str(b"ab\xff\xfe" + rng.randbytes(rng.randint(0, 20)).replace(b"\0", b"x"))
        return _osc_str(b"/ma\xffrker") + _osc_str(b",f") + struct.pack(">f", 1.0)
    if kind == "nan_inf":
        addr = rng.choice(["/time", "/tempo/raw", "/marker/1/time", "/playrate/raw", "/emsync/regenerate/time"])
        return _osc_str(addr.encode()) + _osc_str(b",f") + struct.pack(">f", rng.choice([float("nan"), float("inf"), float("-inf")]))
    if kind == "oversize_string":
        addr = rng.choice(["/marker/1/name", "/beat/str", "/emsync/emotion/label", "/emsync/mode"])
        return build_message(addr, ["x" * rng.randint(4097, 30_000)])
    if kind == "out_of_range":
        return rng.choice([
            build_message("/marker/0/time", [1.0]), build_message("/marker/999999999/time", [1.0]),
            build_message("/tempo/raw", [rng.choice([0.0, -5.0, 5000.0])]),
            build_message("/emsync/emotion", [rng.uniform(1.5, 1e6), 0.0]),
            build_message("/emsync/regenerate/marker", [rng.randint(50_000, 2**31 - 1)]),
            build_message("/emsync/emotion/label", ["v=9 a=9"]),
            build_message("/emsync/mode", ["chaos"]),
            build_message("/time", [-1e30]),
        ])
    raise ValueError(kind)


def _wrong_args(rng: random.Random) -> bytes:
    from emsync_bridge.bridge.osc import _check, _check_tags

    for _ in range(50):
        addr = rng.choice(_ADDRS)
        args = [rng.choice([1, 2.5, "s", b"blob", True, None]) for _ in range(rng.randint(0, 4))]
        b = OscBuilder(addr, args)
        if b is None:
            continue
        pat = addr if addr in protocol.EMSYNC_ADDRESSES else next(
            k for k in protocol.REAPER_FEEDBACK_ADDRESSES if k.replace("@", "1") == addr)
        parsed = tuple(_decode_args(b))
        ok = (_check_tags(protocol.EMSYNC_ADDRESSES[pat], parsed) if pat in protocol.EMSYNC_ADDRESSES
              else _check(protocol.REAPER_FEEDBACK_ADDRESSES[pat], parsed))
        if ok is None:
            return b
    return build_message("/time", ["nope"])


def OscBuilder(addr: str, args) -> bytes | None:
    from pythonosc.osc_message_builder import OscMessageBuilder

    m = OscMessageBuilder(address=addr)
    for a in args:
        if a is None:
            m.add_arg(None, "N")
        elif isinstance(a, bool):
            m.add_arg(a, "T" if a else "F")
        elif isinstance(a, int):
            m.add_arg(a, "i")
        elif isinstance(a, float):
            m.add_arg(a, "d")  # a double where REAPER sends float32
        elif isinstance(a, bytes):
            m.add_arg(a, "b")
        else:
            m.add_arg(a, "s")
    try:
        return m.build().dgram
    except Exception:
        return None


def _decode_args(dgram: bytes) -> list:
    from pythonosc.osc_message import OscMessage

    return list(OscMessage(dgram).params)


def fuzz_stream(n: int, seed: int = 0):
    """`n` (kind, datagram) pairs, the kinds in rotation (each kind about n / len(FUZZ_KINDS))."""
    rng = random.Random(seed)
    for i in range(n):
        kind = FUZZ_KINDS[i % len(FUZZ_KINDS)]
        yield kind, fuzz_datagram(rng, kind)


def run_fuzz(daemon: DaemonProc, n: int = 10_000, seed: int = 0, rate: float = 2000.0,
             max_bytes_per_s: float = 8e6, check_every: int = 500, warmup: int = 300) -> dict:
    """Send `n` fuzz datagrams to `daemon` over loopback, paced (`rate` per second and
    `max_bytes_per_s`, so the 4 MiB receive buffer never overflows); ask for status every
    `check_every`; RSS after a `warmup` of the same traffic vs at the end."""
    import collections

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    target = ("127.0.0.1", daemon.port)
    kinds = collections.Counter()
    status_ok = status_fail = 0
    status_ms = []
    errors = 0

    def send_many(items):
        nonlocal errors
        t0 = time.perf_counter()
        sent_b = 0
        for i, (kind, d) in enumerate(items):
            due = t0 + max(i / rate, sent_b / max_bytes_per_s)
            while (w := due - time.perf_counter()) > 0:
                time.sleep(min(w, 0.002))
            try:
                s.sendto(d, target)
            except OSError:
                errors += 1  # e.g. EMSGSIZE; counted, not fatal
            sent_b += len(d)
            kinds[kind] += 1

    try:
        before0 = daemon.status(timeout=5.0)
        send_many(list(fuzz_stream(warmup, seed + 1)))
        wait_for(lambda: False, 0.5)
        base_status = daemon.status(timeout=5.0)
        rss0 = daemon.rss()
        kinds.clear()
        t_start = time.perf_counter()
        stream = list(fuzz_stream(n, seed))
        for k in range(0, n, check_every):
            send_many(stream[k:k + check_every])
            t = time.perf_counter()
            try:
                daemon.status(timeout=3.0)
                status_ok += 1
                status_ms.append(time.perf_counter() - t)
            except EmsyncError:
                status_fail += 1
        fuzz_s = time.perf_counter() - t_start
        time.sleep(1.0)
        # A valid message is still handled after everything.
        s.sendto(build_message("/time", [0.0]), target)
        end_status = wait_for(lambda: _try_status(daemon), 10.0)
        rss1 = daemon.rss()
    finally:
        s.close()
    c0, c1 = base_status["osc"], (end_status or {}).get("osc", {})
    delta = {k: c1.get(k, 0) - c0.get(k, 0) for k in ("received", "accepted", "rejected", "unknown", "malformed",
                                                          "denied", "queue_full_dropped")}
    rejects = delta["rejected"] + delta["unknown"] + delta["malformed"]
    return {
        "datagrams": n, "by_kind": dict(kinds), "send_errors": errors, "fuzz_wall_s": round(fuzz_s, 2),
        "rate_per_s": round(n / fuzz_s), "counters_delta": delta, "rejects_counted": rejects,
        "status_checks_ok": status_ok, "status_checks_failed": status_fail,
        "status_reply_ms_p50": ms(pct(status_ms, 0.5)), "status_reply_ms_max": ms(max(status_ms) if status_ms else None),
        "alive": daemon.alive(), "answered_at_end": end_status is not None,
        "rss_before_mb": round(rss0 / 2**20, 1), "rss_after_mb": round(rss1 / 2**20, 1),
        "rss_growth_pct": round(100.0 * (rss1 - rss0) / rss0, 2),
        "startup_counters": before0["osc"],
    }


def _try_status(daemon: DaemonProc):
    try:
        return daemon.status(timeout=1.0)
    except EmsyncError:
        return None


# ------------------------------------------------------------------------------------ 3. transport chaos


_INSTS = ("bass", "drums", "guitar", "piano", "strings")


def _chaos_notes(rng: random.Random, t0: float, t1: float, n: int) -> list[NoteEvent]:
    """Random notes in [t0, t1): overlapping re-strikes of the same pitch, zero-length notes,
    chords (many events at one time), every instrument."""
    evs = []
    for _ in range(n):
        inst = rng.choice(_INSTS)
        pitch = rng.randint(48, 56)  # few pitches: many re-strikes and on/off at the same time
        s = rng.uniform(t0, t1)
        if rng.random() < 0.2:
            s = round(s * 4) / 4  # chords on a grid
        d = rng.choice([0.0, rng.uniform(0.005, 0.3), rng.uniform(0.3, 6.0)])
        evs += [NoteEvent(s, True, inst, pitch, rng.randint(1, 127)), NoteEvent(s + d, False, inst, pitch)]
    evs.sort(key=lambda e: (e.time, e.on))
    return evs


def run_virtual_chaos(sequences: int = 1000, seed: int = 0) -> dict:
    """Random transport sequences against `Scheduler` in virtual time (explicit wall times, no
    sleeping): play, stop, seek, loop wraps, play-rate and tempo changes, regenerations ahead of
    and behind the play head (as the worker does), panics, late wake-ups, clock jitter.

    Invariants, checked after every step: the receiver never plays a note the scheduler does not
    track (else only a global all-notes-off could end it); nothing sounds after a stop or a panic;
    nothing sounds at the end of a sequence."""
    from emsync_bridge.bridge.scheduler import LiveScore, PlayClock, Scheduler

    totals = {"sequences": sequences, "steps": 0, "ops": 0, "messages": 0, "note_ons": 0, "silences": 0,
              "untracked_sounding": 0, "sounding_after_stop_or_panic": 0, "notes_left_sounding": 0}
    ops_count: dict[str, int] = {}
    t_start = time.perf_counter()
    for i in range(sequences):
        rng = random.Random(seed * 1_000_003 + i)
        sink = TrackingSink(clock=lambda: 0.0)
        score = LiveScore()
        score.append(_chaos_notes(rng, 0.0, 60.0, rng.randint(50, 600)), until=60.0)
        clock = PlayClock()
        sched = Scheduler(sink, clock, score)
        wall = 0.0
        loop: tuple[float, float] | None = None
        pending_regen: tuple[float, float] | None = None  # (due wall, from time): a "tempo" job

        def check():
            totals["steps"] += 1
            if not sink.on <= set(sched.sounding):
                totals["untracked_sounding"] += 1

        def run(dur):
            nonlocal wall, pending_regen
            end = wall + dur
            while wall < end:
                step = rng.choice([0.001, 0.004, 0.01, 0.03]) if rng.random() > 0.02 else rng.uniform(0.1, 0.6)
                wall += step
                if loop and clock.playing and clock.position(wall) >= loop[1]:
                    sched.report(loop[0], wall, "loop")
                if pending_regen and wall >= pending_regen[0]:
                    _regen(rng, score, pending_regen[1])
                    sched.notify()
                    pending_regen = None
                sched.pump(wall)
                check()

        sched.play(rng.uniform(0, 50), wall)
        for _ in range(rng.randint(3, 15)):
            op = rng.choice(["run", "seek", "loop", "unloop", "rate", "tempo", "regen_ahead", "regen_behind",
                             "panic", "stop_play", "pause_resume", "jitter"])
            ops_count[op] = ops_count.get(op, 0) + 1
            totals["ops"] += 1
            pos = clock.position(wall)
            if op == "seek":
                sched.report(rng.uniform(0, 59), wall, "seek")
            elif op == "loop":
                lo = rng.uniform(0, 50)
                loop = (lo, lo + rng.uniform(0.2, 6.0))
            elif op == "unloop":
                loop = None
            elif op == "rate":
                sched.set_rate(rng.choice([0.25, 0.5, 1.0, 1.5, 2.0, 4.0]), wall)
            elif op == "tempo":  # the daemon silences at once; the worker regenerates a little later
                sched.silence("tempo")
                pending_regen = (wall + rng.uniform(0.005, 0.3), pos + 0.12)
            elif op == "regen_ahead":
                _regen(rng, score, pos + rng.uniform(0.0, 3.0))
                sched.notify()
            elif op == "regen_behind":
                _regen(rng, score, max(0.0, pos - rng.uniform(0.0, 3.0)))
                sched.notify()
            elif op == "panic":
                sched.silence("panic")
                if sink.on:
                    totals["sounding_after_stop_or_panic"] += 1
            elif op == "stop_play":
                sched.stop()
                if sink.on:
                    totals["sounding_after_stop_or_panic"] += 1
                wall += rng.uniform(0.0, 0.5)
                sched.play(rng.uniform(0, 55), wall)
            elif op == "pause_resume":
                sched.stop()
                if sink.on:
                    totals["sounding_after_stop_or_panic"] += 1
                wall += rng.uniform(0.0, 0.5)
                sched.play(None, wall)
            elif op == "jitter":  # a /time report a little off: slewed, not a jump
                sched.report(pos + rng.uniform(-0.05, 0.05), wall, "seek")
            check()
            run(rng.uniform(0.0, 1.5))
        sched.stop()
        totals["notes_left_sounding"] += len(sink.on)
        totals["messages"] += sink.count
        totals["note_ons"] += sink.note_ons
        totals["silences"] += sum(sched.silences.values())
    totals["wall_s"] = round(time.perf_counter() - t_start, 2)
    totals["ops_by_kind"] = ops_count
    totals["pass"] = (totals["notes_left_sounding"] == 0 and totals["untracked_sounding"] == 0
                      and totals["sounding_after_stop_or_panic"] == 0)
    return totals


def _regen(rng: random.Random, score, t: float) -> None:
    """What the worker does on a regeneration: cut the tail at `t`, then stream new events."""
    score.replace_from(t)
    score.append(_chaos_notes(rng, t, t + rng.uniform(0.5, 20.0), rng.randint(0, 200)), until=t + 20.0)


def run_daemon_chaos(sequences: int = 20, seed: int = 0, engine=None, files=None, tmp: Path | None = None,
                     duration: float = 20.0) -> dict:
    """Random transport sequences against the real daemon in live mode (real model, real worker
    and scheduler threads), driven over UDP by the REAPER simulator: play, stop, seek, loop
    (/repeat + loop points + the wrap REAPER reports), tempo changes (/tempo/raw: silence and
    regenerate), regenerations and emotion changes over OSC, marker moves, play-rate changes,
    panics. After each sequence's stop: notes left sounding at the receiver must be 0.

    Panic latency: /emsync/panic sent -> the scheduler's silence done (every note-off and
    all-notes-off handed to the MIDI port), and -> REAPER's all-notes-off action received."""
    import tempfile

    from emsync_bridge.bridge.daemon import Bridge, BridgeConfig
    from emsync_bridge.bench.simulator import ReaperSim, SimMarker

    if engine is None:
        from emsync_bridge.runtime import load_engine

        engine, files = load_engine()
    own_tmp = None
    if tmp is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="emsync-chaos-")
        tmp = Path(own_tmp.name)
    rng = random.Random(seed)
    spool = Path(tmp) / f"chaos-spool-{seed}"
    spool.mkdir(parents=True, exist_ok=True)
    sim = ReaperSim(0, markers=[SimMarker(1, "", 4.0), SimMarker(2, "joy", 9.0), SimMarker(3, "", 14.0)])
    sim.write_project(spool, duration_hint=duration)
    sink = TrackingSink()
    cfg = BridgeConfig(osc_port=0, reaper_port=sim.port, spool=spool, mode="live", analyze_video=False,
                       policy="markers")
    bridge = Bridge(cfg, engine=engine, model_files=files, sink=sink)
    bridge.start()
    sim.daemon_port = bridge.osc.port
    marks: list[tuple[str, float, int]] = []
    sched = bridge.scheduler
    orig_silence = sched.silence

    def silence(reason):
        with sched.lock:
            orig_silence(reason)
            marks.append((reason, time.perf_counter(), len(sink.on)))

    sched.silence = silence
    client = BridgeClient("127.0.0.1", bridge.osc.port)
    res = {"sequences": sequences, "ops": 0, "notes_left_sounding": 0, "sequences_with_notes": 0,
           "panics": 0, "panic_sounding_after": 0}
    panic_lat, panic_reaper_lat, ops_count = [], [], {}
    t_start = time.perf_counter()
    try:
        wait_for(lambda: bridge.score.generated_until > 3.0, 120.0)
        for _ in range(sequences):
            sim.play(rng.uniform(0, duration - 4))
            n_on0 = sink.note_ons
            for _ in range(rng.randint(2, 7)):
                op = rng.choice(["run", "seek", "loop", "tempo", "regen", "emotion", "marker", "rate", "panic", "panic"])
                ops_count[op] = ops_count.get(op, 0) + 1
                res["ops"] += 1
                if op == "seek":
                    sim.seek(rng.uniform(0, duration - 1))
                elif op == "loop":  # REAPER: loop points, repeat on, and the wrap as a /time jump
                    lo = rng.uniform(0, duration - 4)
                    sim.send("/loop/start/time", lo)
                    sim.send("/loop/end/time", lo + 2.0)
                    sim.send("/repeat", 1)
                    sim.seek(lo + 1.9)
                    time.sleep(0.1)
                    sim.seek(lo)
                elif op == "tempo":
                    for _ in range(rng.randint(1, 4)):
                        sim.set_tempo(rng.uniform(60, 180))
                        time.sleep(0.003)
                elif op == "regen":
                    client.regenerate(time_s=sim.position() + rng.uniform(-1, 2))
                elif op == "emotion":
                    client.set_emotion(rng.uniform(-1, 1), rng.uniform(-1, 1), sim.position() + rng.uniform(0, 2))
                elif op == "marker":
                    sim.move_marker(rng.choice([1, 2, 3]), rng.uniform(1, duration - 1))
                elif op == "rate":
                    sim.send("/playrate/raw", rng.choice([0.5, 1.0, 1.5]))
                elif op == "panic":
                    n = len(marks)
                    t0 = time.perf_counter()
                    client.panic()
                    got = wait_for(lambda: next((m for m in marks[n:] if m[0] == "panic"), None), 2.0, step=0.0002)
                    if got is None:
                        panic_lat.append(float("inf"))
                    else:
                        panic_lat.append(got[1] - t0)
                        res["panic_sounding_after"] += got[2] > 0
                    r = wait_for(lambda: next((w for w, a, p in list(sim.received) if w >= t0 and a == "/action"
                                               and p == [protocol.REAPER_ACTION_ALL_NOTES_OFF]), None), 2.0,
                                 step=0.0005)
                    if r is not None:
                        panic_reaper_lat.append(r - t0)
                    res["panics"] += 1
                time.sleep(rng.uniform(0.02, 0.25))
            n_stop = sched.silences["stop"]
            sim.stop()
            wait_for(lambda: sched.silences["stop"] > n_stop, 3.0, step=0.001)
            left = len(sink.sounding())
            res["notes_left_sounding"] += left
            res["sequences_with_notes"] += sink.note_ons > n_on0
    finally:
        client.close()
        bridge.close()
        sim.close()
        if own_tmp is not None:
            own_tmp.cleanup()
    finite = [x for x in panic_lat if x != float("inf")]
    res.update({
        "ops_by_kind": ops_count, "note_ons": sink.note_ons, "messages": sink.count,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "panic_ms": {"p50": ms(pct(finite, 0.5)), "p99": ms(pct(finite, 0.99)), "max": ms(max(panic_lat) if panic_lat else None)},
        "panic_to_reaper_ms": {"p50": ms(pct(panic_reaper_lat, 0.5)), "max": ms(max(panic_reaper_lat) if panic_reaper_lat else None)},
        "panics_within_50ms": sum(x <= 0.05 for x in panic_lat),
        "regenerations": bridge._job_seq, "silences": dict(sched.silences),
        "regen_latency_ms_p50": ms(pct([r["latency_s"] for r in bridge.regen_latencies], 0.5)),
        "last_error": bridge.last_error,
    })
    res["pass"] = (res["notes_left_sounding"] == 0 and res["panic_sounding_after"] == 0
                   and res["panics_within_50ms"] == res["panics"])
    return res


# ------------------------------------------------------------------------------------ 4. crash safety


def importer_view(spool: Path) -> dict:
    """What "EmSync: Import generated MIDI" acts on: out/manifest.json (absent is fine: nothing to
    import) and every MIDI file it names (inside the spool, a regular file, parses as MIDI), plus
    status.json (the panel reads it). `ok` False means a partial or corrupt file is visible."""
    import stat as stat_mod

    import mido

    from emsync_bridge.timeline.spool import load_manifest, read_json_file, spool_path

    v = {"ok": True, "manifest": None, "files": 0, "problem": ""}
    spool = Path(spool)
    try:
        if (spool / protocol.MANIFEST_FILE).exists() or os.path.islink(spool / protocol.MANIFEST_FILE):
            m = load_manifest(spool)
            v["manifest"] = m.generation_id
            for it in m.items:
                path = spool_path(spool, it.file)
                st = os.lstat(path)
                if not stat_mod.S_ISREG(st.st_mode) or st.st_size == 0:
                    raise EmsyncError(f"{it.file}: not a complete regular file")
                mid = mido.MidiFile(path)
                if len(mid.tracks) < 2:
                    raise EmsyncError(f"{it.file}: {len(mid.tracks)} tracks")
                v["files"] += 1
        if (spool / protocol.STATUS_FILE).exists():
            read_json_file(spool / protocol.STATUS_FILE, "status.json")
    except Exception as exc:  # anything the importer would trip on
        v["ok"] = False
        v["problem"] = f"{type(exc).__name__}: {exc}"
    return v


def temp_files(spool: Path) -> list[str]:
    return sorted(str(p.relative_to(spool)) for p in Path(spool).rglob(".*.tmp"))


def manifest_id(spool: Path):
    """The current manifest's generation id, or None while there is no valid manifest."""
    from emsync_bridge.timeline.spool import load_manifest

    try:
        return load_manifest(spool).generation_id
    except Exception:
        return None


def _trace_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def run_crash_rounds(rounds: int = 100, seed: int = 0, tmp: Path | None = None, duration: float = 3.0,
                     extra_ops: int = 8, timeout: float = 120.0, random_kills: int = 0) -> dict:
    """kill -9 a commit-mode daemon at random points of a commit, `rounds` times, on one spool.

    Each round starts the daemon (`child`, same code path as `serve`): on start it must recover —
    generate and commit a new complete manifest (what the previous round's kill interrupted, done
    again). Then /emsync/regenerate starts a second commit, and the daemon SIGKILLs itself at
    file-system step N of it (N uniform over the steps a first commit takes, plus `extra_ops`: old
    generation folders being pruned add steps; past the last one the harness kills it from outside). After every kill the importer's view
    must be whole (`importer_view`). Then `random_kills` more rounds are killed from outside at
    random times while regenerating. Finally one more restart recovers and SIGTERM stops it."""
    import tempfile

    rng = random.Random(seed)
    own = None
    if tmp is None:
        own = tempfile.TemporaryDirectory(prefix="emsync-crash-")
        tmp = Path(own.name)
    spool = Path(tmp) / "crash-spool"
    spool.mkdir(parents=True, exist_ok=True)
    write_project(spool, duration=duration)
    res = {"rounds": rounds, "kills_in_commit": 0, "kills_outside_commit": 0, "importer_view_bad": 0,
           "recovered": 0, "recovery_failed": 0, "problems": [], "kill_points": {}, "temp_files_max": 0,
           "temp_files_cleaned": 0}
    recover_s = []

    def start(kill_at: int, trace: Path):
        t0 = time.monotonic()
        d = start_daemon(spool, child=True, args=["--no-video-analysis", "--kill-at-op", kill_at,
                                                 "--kill-in-commit", 2, "--op-trace", trace],
                         log_path=Path(tmp) / "crash-daemon.log")
        d.started = t0
        return d

    def recover(d, before):
        got = wait_for(lambda: (g := manifest_id(spool)) and g != before and g, timeout, step=0.02)
        if got and d.alive():
            res["recovered"] += 1
            recover_s.append(time.monotonic() - d.started)  # restart -> a complete new manifest
            return True
        res["recovery_failed"] += 1
        res["problems"].append(f"no recovery: {d.log_tail(3)}")
        return False

    # Calibration: how many steps the second commit takes here.
    trace = Path(tmp) / "trace-cal.txt"
    before = manifest_id(spool)
    d = start(0, trace)
    try:
        d.wait_ready(timeout)
        recover(d, before)
        before = manifest_id(spool)
        d.send("/emsync/regenerate")
        wait_for(lambda: any(x.startswith("commit-end 2") for x in _trace_lines(trace)), timeout)
    finally:
        d.stop()
    end_line = next((x for x in _trace_lines(trace) if x.startswith("commit-end 2")), "ops=40")
    steps = int(end_line.rsplit("ops=", 1)[1])
    res["steps_per_commit"] = steps
    res["recovered"] = res["recovery_failed"] = 0
    t_start = time.perf_counter()
    for r in range(rounds):
        n = rng.randint(1, steps + extra_ops)
        trace = Path(tmp) / f"trace-{r}.txt"
        before = manifest_id(spool)
        temps_before = temp_files(spool)
        d = start(n, trace)
        try:
            d.wait_ready(timeout)
            recover(d, before)
            res["temp_files_cleaned"] += len(set(temps_before) - set(temp_files(spool)))
            view = importer_view(spool)
            if not view["ok"]:
                res["importer_view_bad"] += 1
                res["problems"].append(f"round {r} after recovery: {view['problem']}")
            before = manifest_id(spool)
            d.send("/emsync/regenerate")
            if n <= steps:
                try:
                    d.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            else:  # past the commit's last step: SIGKILL from outside, a moment after it
                wait_for(lambda: (g := manifest_id(spool)) and g != before, timeout, step=0.005)
                time.sleep(rng.uniform(0.0, 0.05))
        finally:
            if d.alive():
                d.kill9()
                res["kills_outside_commit"] += 1
            else:
                d.stop()
                if d.proc.returncode == -signal.SIGKILL:
                    res["kills_in_commit"] += 1
                    res["kills_in_prune_steps"] = res.get("kills_in_prune_steps", 0) + (n > steps)
                else:
                    res["problems"].append(f"round {r}: exited {d.proc.returncode}")
        ops = [x for x in _trace_lines(trace) if x.startswith("op ")]
        if ops and d.proc.returncode == -signal.SIGKILL and len(ops) == n:  # it killed itself at step n
            point = ops[-1].split(" ")[2]
            res["kill_points"][point] = res["kill_points"].get(point, 0) + 1
            res["max_step_seen"] = max(res.get("max_step_seen", 0), n)
        view = importer_view(spool)
        if not view["ok"]:
            res["importer_view_bad"] += 1
            res["problems"].append(f"round {r} after kill at step {n}: {view['problem']}")
        res["temp_files_max"] = max(res["temp_files_max"], len(temp_files(spool)))
    res["rounds_wall_s"] = round(time.perf_counter() - t_start, 1)
    # Also kill -9 from outside at random times while it regenerates (generation, commit, status).
    res["random_time_kills"] = random_kills
    for r in range(random_kills):
        before = manifest_id(spool)
        d = start(0, Path(tmp) / "trace-random.txt")
        try:
            d.wait_ready(timeout)
            recover(d, before)
            for _ in range(rng.randint(1, 4)):
                d.send("/emsync/regenerate")
                time.sleep(rng.uniform(0.0, 0.4))
        finally:
            d.kill9()
        view = importer_view(spool)
        if not view["ok"]:
            res["importer_view_bad"] += 1
            res["problems"].append(f"random-time kill {r}: {view['problem']}")
    # The last restart: recovers, then a clean SIGTERM.
    before = manifest_id(spool)
    d = start(0, Path(tmp) / "trace-final.txt")
    try:
        d.wait_ready(timeout)
        recover(d, before)
    finally:
        rc = d.stop(signal.SIGTERM)
    res["final_exit_code"] = rc
    res["final_importer_view"] = importer_view(spool)
    res["temp_files_left"] = temp_files(spool)
    try:
        res["final_status_state"] = json.loads((spool / protocol.STATUS_FILE).read_text())["state"]
    except Exception as exc:
        res["final_status_state"] = f"unreadable: {exc}"
    res["restart_to_new_manifest_s_p50"] = None if not recover_s else round(pct(recover_s, 0.5), 2)
    res["restart_to_new_manifest_s_max"] = None if not recover_s else round(max(recover_s), 2)
    res["pass"] = (res["importer_view_bad"] == 0 and res["recovery_failed"] == 0
                   and res["kills_in_commit"] + res["kills_outside_commit"] == rounds
                   and res["final_importer_view"]["ok"] and rc == 0 and not res["temp_files_left"])
    if own is not None:
        own.cleanup()
    return res


def run_sigterm_check(tmp: Path, duration: float = 20.0, timeout: float = 120.0) -> dict:
    """Live mode with MIDI recorded to a file; play; SIGTERM while notes sound (if the model makes
    any within a few seconds) -> every channel gets all-notes-off after the signal, nothing is left
    sounding, the process exits 0 and status.json says stopped."""
    from emsync_bridge.bench.simulator import ReaperSim, SimMarker
    from emsync_bridge.bridge.sinks import sounding_after

    spool = Path(tmp) / "sigterm-spool"
    spool.mkdir(parents=True, exist_ok=True)
    record = Path(tmp) / "sigterm-midi.txt"
    sim = ReaperSim(0, markers=[SimMarker(1, "", 3.0), SimMarker(2, "joy", 8.0)])
    sim.write_project(spool, duration_hint=duration)
    d = start_daemon(spool, child=True, args=["--no-video-analysis", "--mode", "live", "--record", record],
                     log_path=Path(tmp) / "sigterm-daemon.log")
    res = {}
    try:
        d.wait_ready(timeout)
        sim.daemon_port = d.port
        wait_for(lambda: (st := d.status(timeout=1.0)) and (st["generation"].get("cursor") or 0) > 4.0, timeout)
        sim.play(0.0)
        sounding = wait_for(lambda: sounding_after([m for _, m in read_file_sink(record)]), 8.0)
        res["sounding_at_sigterm"] = len(sounding or ())
        t_sig = time.perf_counter()
        d.send_signal(signal.SIGTERM)
        try:
            d.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        res["exit_code"] = d.proc.returncode
        res["exit_s"] = round(time.perf_counter() - t_sig, 3)
    finally:
        sim.close()
        d.stop()
    msgs = read_file_sink(record)
    after = [m for w, m in msgs if w >= t_sig]
    res["note_ons_before"] = sum(m.type == "note_on" for w, m in msgs if w < t_sig)
    res["all_notes_off_channels_after_sigterm"] = sorted({m.channel for m in after if m.type == "control_change"
                                                          and m.control == CC_ALL_NOTES_OFF})
    res["left_sounding"] = len(sounding_after([m for _, m in msgs]))
    try:
        res["status_state"] = json.loads((spool / protocol.STATUS_FILE).read_text())["state"]
    except Exception as exc:
        res["status_state"] = f"unreadable: {exc}"
    from emsync_bridge.music.midi import CHANNELS

    res["pass"] = (res.get("exit_code") == 0 and res["left_sounding"] == 0 and res["status_state"] == "stopped"
                   and res["all_notes_off_channels_after_sigterm"] == sorted(set(CHANNELS.values())))
    return res


# ------------------------------------------------------------------------------------ 5. bad video matrix


# name -> words of the one-line error (any of them), or None: an odd file that analyses fine
VIDEO_EXPECT = {
    "missing": ("no such file",),
    "zero_bytes": ("empty file",),
    "truncated_head": ("corrupt/truncated", "zero duration"),  # index intact, no frame data
    "truncated_tail": ("truncated",),
    "not_a_video": ("not a video",),
    "audio_only": ("audio-only",),
    "one_by_one": ("resolution 1x1",),
    "zero_frames": ("no video stream",),
    "one_frame": ("zero duration",),
    "fifo": ("not a regular file",),
    "dev_zero": ("not a regular file",),
    "eight_k": None,
    "vfr": None,
    "rotated": None,
}


def make_bad_videos(d: Path) -> dict[str, Path]:
    """The files of `VIDEO_EXPECT`, made with ffmpeg in a few seconds (8K: three 7680x4320 frames)."""
    ff = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]

    def run(*args):
        subprocess.run([*ff, *map(str, args)], check=True, timeout=120)

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    v = {k: d / f"{k}.mp4" for k in VIDEO_EXPECT}
    run("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-t", 3, *x264, "-movflags", "+faststart", d / "good.mp4")
    good = (d / "good.mp4").read_bytes()
    v["truncated_tail"].write_bytes(good[: len(good) // 3])
    v["truncated_head"].write_bytes(good[:3000])
    v["zero_bytes"].write_bytes(b"")
    v["not_a_video"].write_text("ceci n'est pas une video\n")
    v["audio_only"] = d / "audio_only.m4a"
    run("-f", "lavfi", "-i", "sine=frequency=440", "-t", 1, "-c:a", "aac", v["audio_only"])
    v["one_by_one"] = d / "one_by_one.mkv"
    run("-f", "lavfi", "-i", "color=red:size=16x16:rate=25", "-t", 0.4, "-vf", "scale=1:1", "-c:v", "ffv1", v["one_by_one"])
    run("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-frames:v", 0, *x264, v["zero_frames"])
    run("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-frames:v", 1, *x264, v["one_frame"])
    for k in ("fifo", "dev_zero"):
        if v[k].exists() or v[k].is_symlink():
            v[k].unlink()
    os.mkfifo(v["fifo"])  # a decoder opening this would block forever
    v["dev_zero"].symlink_to("/dev/zero")
    run("-f", "lavfi", "-i", "color=blue:size=7680x4320:rate=25", "-frames:v", 3, *x264, v["eight_k"])
    run("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=1", "-f", "lavfi", "-i",
        "rgbtestsrc=size=160x90:rate=10:duration=1", "-filter_complex", "[0][1]concat=n=2:v=1:a=0",
        "-fps_mode", "vfr", *x264, v["vfr"])
    run("-i", v["vfr"], "-c", "copy", "-metadata:s:v:0", "rotate=90", v["rotated"])
    if v["missing"].exists():
        v["missing"].unlink()
    return v


def analyze_bounded(path: Path, timeout: float = 60.0) -> dict:
    """`analyze_video` in a thread: {"analysis"} or {"error"}, plus "wall_s" and "hung"."""
    from emsync_bridge.video.analysis import analyze_video

    out: dict = {}

    def run():
        try:
            out["analysis"] = analyze_video(path, cache=False)
        except Exception as exc:  # noqa: BLE001 - reported
            out["error"] = exc

    t0 = time.perf_counter()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    out["wall_s"] = time.perf_counter() - t0
    out["hung"] = t.is_alive()
    return out


def run_video_matrix(tmp: Path) -> dict:
    import psutil

    v = make_bad_videos(Path(tmp) / "videos")
    rows, ok = {}, True
    proc = psutil.Process()
    for name, words in VIDEO_EXPECT.items():
        rss0 = proc.memory_info().rss
        r = analyze_bounded(v[name])
        e = r.get("error")
        if words is None:
            good = "analysis" in r
            detail = (f"{r['analysis'].width}x{r['analysis'].height}, {r['analysis'].duration:.2f} s" if good
                      else f"{type(e).__name__}: {e}")
        else:
            good = isinstance(e, EmsyncError) and any(w in str(e) for w in words) and "\n" not in str(e)
            detail = str(e)
        ok &= good and not r["hung"]
        rows[name] = {"ok": good, "hung": r["hung"], "wall_ms": ms(r["wall_s"]), "result": detail,
                      "rss_delta_mb": round((proc.memory_info().rss - rss0) / 2**20, 1)}
    return {"files": len(rows), "cases": rows, "max_wall_ms": max(x["wall_ms"] for x in rows.values()), "pass": ok}


# ------------------------------------------------------------------------------------ 6. soak


def run_soak(minutes: float = 30.0, regen_every_s: float = 10.0, osc_hz: float = 30.0, project_s: float = 60.0,
             windows: int = 10, seed: int = 0, progress=None) -> dict:
    """Live mode for `minutes`: the REAPER simulator plays a `project_s` project in a loop, sending
    /time and /beat/str at `osc_hz`; every `regen_every_s` a regeneration (alternately
    /emsync/regenerate/time and /emsync/emotion a little ahead of the play head); a status round
    trip every 2 s. Figures per window (`windows` of them): RSS, regeneration latency (OSC arrival
    -> first new token; -> first regenerated note sent), status round trip, note timing error
    (sent vs the simulator's true play position), notes sent. RSS growth: last window vs the end of
    the first (warm-up) window."""
    import psutil

    from emsync_bridge.bridge.daemon import Bridge, BridgeConfig
    from emsync_bridge.bench.simulator import ReaperSim, SimMarker
    from emsync_bridge.runtime import load_engine

    import tempfile

    rng = random.Random(seed)
    engine, files = load_engine()
    tmpdir = tempfile.TemporaryDirectory(prefix="emsync-soak-")
    spool = Path(tmpdir.name) / "spool"
    spool.mkdir()
    sim = ReaperSim(0, rate_hz=osc_hz, markers=[SimMarker(1, "", 10.0), SimMarker(2, "joy", 25.0),
                                                SimMarker(3, "", 40.0), SimMarker(4, "sadness", 50.0)])
    sim.write_project(spool, duration_hint=project_s)
    sink = TrackingSink()
    win = {"err": [], "sent": 0}

    def on_send(msg, project_time, wall):
        if msg.type == "note_on" and project_time is not None:
            win["err"].append(sim.position(wall) - project_time)
            win["sent"] += 1

    sink.on_send = on_send
    cfg = BridgeConfig(osc_port=0, reaper_port=sim.port, spool=spool, mode="live", analyze_video=False,
                       policy="markers")
    bridge = Bridge(cfg, engine=engine, model_files=files, sink=sink)
    bridge.start()
    sim.daemon_port = bridge.osc.port
    proc = psutil.Process()
    client = BridgeClient("127.0.0.1", bridge.osc.port, timeout=2.0)
    rows = []
    rtts: list[float] = []
    regen_sent = 0
    status_fail = 0
    try:
        wait_for(lambda: bridge.score.generated_until > 8.0, 300.0)
        sim.send("/repeat", 1)
        sim.play(0.0)
        t0 = time.perf_counter()
        total = minutes * 60.0
        window_s = total / windows
        next_regen = t0 + regen_every_s
        next_status = t0 + 2.0
        next_window = t0 + window_s
        next_beat = t0
        n_lat = 0
        late0 = bridge.scheduler.late_skipped
        beats = 0
        def close_window(now):
            nonlocal n_lat, late0, rtts, next_window
            lats = bridge.regen_latencies[n_lat:]
            n_lat = len(bridge.regen_latencies)
            first_tok = [x["first_token"] - x["trigger"] for x in lats]  # latency.RegenTrace.as_dict()
            errs = [abs(e) for e in win["err"]]
            row = {"t_min": round((now - t0) / 60.0, 2), "rss_mb": round(proc.memory_info().rss / 2**20, 1),
                   "notes_sent": win["sent"], "late_skipped": bridge.scheduler.late_skipped - late0,
                   "timing_err_ms_p50": ms(pct(errs, 0.5)), "timing_err_ms_p99": ms(pct(errs, 0.99)),
                   "regens": len(lats), "regen_first_token_ms_p50": ms(pct(first_tok, 0.5)),
                   "regen_to_note_ms_p50": ms(pct([x["latency_s"] for x in lats], 0.5)),
                   "status_rtt_ms_p50": ms(pct(rtts, 0.5)), "status_rtt_ms_max": ms(max(rtts) if rtts else None),
                   "threads": threading.active_count(), "score_events": len(bridge.score.events)}
            rows.append(row)
            if progress:
                progress(row)
            win["err"], win["sent"], rtts = [], 0, []
            late0 = bridge.scheduler.late_skipped
            next_window += window_s

        while (now := time.perf_counter()) < t0 + total:
            pos = sim.position()
            if pos >= project_s - 0.02:  # REAPER's loop wrap: a /time jump back to the start
                sim.seek(0.0)
            if now >= next_beat:
                beats += 1
                sim.send("/beat/str", f"{beats // 4 + 1}.{beats % 4 + 1}.00")
                next_beat += 1.0 / osc_hz
            if now >= next_regen:
                if regen_sent % 2 == 0:
                    client.regenerate(time_s=min(project_s - 1.0, pos + 1.0))
                else:
                    client.set_emotion(rng.uniform(-1, 1), rng.uniform(-1, 1), min(project_s - 1.0, pos + 0.5))
                regen_sent += 1
                next_regen += regen_every_s
            if now >= next_status:
                t = time.perf_counter()
                try:
                    client.status()
                    rtts.append(time.perf_counter() - t)
                except EmsyncError:
                    status_fail += 1
                next_status += 2.0
            if now >= next_window:
                close_window(now)
            time.sleep(max(0.0, min(next_beat, next_regen, next_status, next_window) - time.perf_counter()))
        if len(rows) < windows:
            close_window(time.perf_counter())
        n_stop = bridge.scheduler.silences["stop"]
        sim.stop()
        wait_for(lambda: bridge.scheduler.silences["stop"] > n_stop, 5.0)
        left = len(sink.sounding())
        osc = dict(bridge.osc.counters)
        regenerations = bridge._job_seq
    finally:
        client.close()
        bridge.close()
        sim.close()
        tmpdir.cleanup()
    base = rows[0]["rss_mb"] if rows else None
    end = rows[-1]["rss_mb"] if rows else None
    half = max(1, len(rows) // 2)

    def med(key, part):
        vals = [r[key] for r in part if r[key] is not None]
        return None if not vals else round(pct(vals, 0.5), 3)

    res = {
        "minutes": minutes, "regen_every_s": regen_every_s, "osc_hz": osc_hz, "windows": rows,
        "rss_first_window_mb": base, "rss_end_mb": end,
        "rss_growth_pct": None if not base else round(100.0 * (end - base) / base, 2),
        "regenerations_requested": regen_sent, "generation_jobs": regenerations,
        "osc_received": osc.get("received", 0), "osc_accepted": osc.get("accepted", 0),
        "status_failures": status_fail, "notes_left_sounding": left,
        "drift": {k: {"first_half": med(k, rows[1:half + 1] or rows[:1]), "second_half": med(k, rows[half:])}
                  for k in ("timing_err_ms_p50", "timing_err_ms_p99", "regen_first_token_ms_p50", "status_rtt_ms_p50")},
    }
    res["pass"] = (res["rss_growth_pct"] is not None and res["rss_growth_pct"] < 10.0 and left == 0
                   and status_fail == 0)
    return res


# ------------------------------------------------------------------------------------ child runner


_OPS = {"n": 0, "kill_at": 0, "kill_commit": 1, "commit_no": 0, "trace_fd": None, "thread": None}


def _op(name: str, where: str) -> None:
    """One file-system step of the commit being run (in its thread): trace it, SIGKILL here if it
    is the chosen one."""
    if _OPS["thread"] != threading.get_ident():
        return  # not inside commit(), or another thread (status.json writes)
    if _OPS["commit_no"] != _OPS["kill_commit"]:
        return
    _OPS["n"] += 1
    if _OPS["trace_fd"] is not None:
        os.write(_OPS["trace_fd"], f"op {_OPS['n']} {name} {where}\n".encode())
    if _OPS["kill_at"] and _OPS["n"] == _OPS["kill_at"]:
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)  # never reached


def install_commit_kill_points(kill_at: int, trace_path: str | None, kill_commit: int = 1) -> None:
    """Count (and trace) every file-system step of the `kill_commit`-th `commit.commit`; SIGKILL at
    step `kill_at` (0: never).

    Steps: before/after `tempfile.mkstemp`, `os.fsync`, `os.replace`, `shutil.rmtree`, `os.unlink`
    in the committing thread, so a kill lands with a temp file empty, written, synced, renamed, the
    manifest not yet or just replaced, or an old generation folder half removed."""
    import shutil
    import tempfile

    from emsync_bridge.bridge import commit as commit_mod

    _OPS["kill_at"] = kill_at
    _OPS["kill_commit"] = kill_commit
    if trace_path:
        _OPS["trace_fd"] = os.open(trace_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def trace(line: str) -> None:
        if _OPS["trace_fd"] is not None:
            os.write(_OPS["trace_fd"], (line + "\n").encode())

    def wrap(mod, name):
        orig = getattr(mod, name)

        def f(*a, **k):
            where = str(a[0]) if a and isinstance(a[0], (str, os.PathLike)) else ""
            _op(f"before-{name}", where)
            r = orig(*a, **k)
            _op(f"after-{name}", where if name != "mkstemp" else str(r[1]))
            return r

        setattr(mod, name, f)

    for mod, name in ((tempfile, "mkstemp"), (os, "fsync"), (os, "replace"), (shutil, "rmtree"), (os, "unlink")):
        wrap(mod, name)
    orig_commit = commit_mod.commit

    def commit(*a, **k):
        _OPS["commit_no"] += 1
        _OPS["n"] = 0
        _OPS["thread"] = threading.get_ident()
        trace(f"commit-start {_OPS['commit_no']}")
        try:
            r = orig_commit(*a, **k)
            trace(f"commit-end {_OPS['commit_no']} {r.generation_id} ops={_OPS['n']}")
            return r
        finally:
            _OPS["thread"] = None

    commit_mod.commit = commit


def child_main(argv) -> int:
    """A daemon as `serve` runs it, with the test hooks described at the top of this module."""
    p = argparse.ArgumentParser(prog="reliability child")
    p.add_argument("--osc-port", type=int, required=True)
    p.add_argument("--reaper-port", type=int, default=protocol.REAPER_OSC_PORT)
    p.add_argument("--spool", required=True)
    p.add_argument("--mode", default="commit")
    p.add_argument("--record", default=None, help="live MIDI to this file")
    p.add_argument("--kill-at-op", type=int, default=0)
    p.add_argument("--kill-in-commit", type=int, default=1)
    p.add_argument("--op-trace", default=None)
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--no-video-analysis", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from emsync_bridge.bridge.daemon import Bridge, BridgeConfig

    if a.kill_at_op or a.op_trace:
        install_commit_kill_points(a.kill_at_op, a.op_trace, a.kill_in_commit)
    cfg = BridgeConfig(osc_port=a.osc_port, reaper_port=a.reaper_port, spool=Path(a.spool), mode=a.mode,
                       duration=a.duration, analyze_video=not a.no_video_analysis)
    sink = FileSink(a.record) if a.record else None
    bridge = Bridge(cfg, sink=sink)
    bridge.start()
    print(f"child serving on {bridge.osc.port}", file=sys.stderr, flush=True)
    bridge.serve_forever()
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python tests/harness/reliability.py child|netns-probe ...", file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "child":
        return child_main(rest)
    if cmd == "netns-probe":
        logging.basicConfig(level=logging.WARNING)
        print(json.dumps(netns_probe(Path(rest[0]))))
        return 0
    print(f"unknown command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
