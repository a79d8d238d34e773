"""OSC in (REAPER feedback + our /emsync namespace), OSC out to REAPER, and `BridgeClient`, the small
control API the panel and the CLI use.

python-osc facts (shared/docs/dependencies.md Q4): the threading server starts a thread per
datagram and lost 87 % of a 10 k flood, so this uses `BlockingOSCUDPServer` in one thread with a
4 MiB receive buffer; handlers only validate and enqueue (the daemon's control loop does the work).
Malformed datagrams can reach a handler with missing or truncated arguments, so every handler
checks arity and types against the protocol tables and counts what it rejects.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import queue
import re
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass

from pythonosc import osc_packet
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol

log = logging.getLogger(__name__)

RCVBUF_BYTES = 4 * 1024 * 1024
MAX_STRING = 4096


@dataclass(frozen=True, slots=True)
class OscEvent:
    """One accepted message: `address` as REAPER/our client sent it, validated `args`, the
    pattern it matched (`/marker/@/time`), the slot for `@` patterns, and when it arrived."""

    address: str
    pattern: str
    args: tuple
    slot: int | None
    wall: float
    sender: tuple[str, int] | None


# Messages that change what the daemon does; `allow_from` restricts these to listed senders.
CONTROL_ADDRESSES = frozenset({
    "/emsync/regenerate", "/emsync/regenerate/marker", "/emsync/regenerate/time", "/emsync/emotion",
    "/emsync/emotion/label", "/emsync/mode", "/emsync/project/reload", "/emsync/shutdown",
})


def parse_allow_from(entries) -> tuple:
    """IP addresses or networks ("127.0.0.1", "10.0.0.0/24", "::1") as `ipaddress` networks."""
    out = []
    for e in entries:
        for part in str(e).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(ipaddress.ip_network("127.0.0.1" if part == "localhost" else part, strict=False))
            except ValueError:
                raise EmsyncError(f"--allow-from: not an IP address or network: {part!r}") from None
    return tuple(out)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _ranges() -> dict[str, tuple]:
    from emsync_bridge.timeline.spool import MAX_TIME_S  # the spool's bounds, so OSC and files agree

    pos, span = (0.0, MAX_TIME_S), (-MAX_TIME_S, MAX_TIME_S)
    return {
        "/time": (pos,), "/loop/start/time": (span,), "/loop/end/time": (span,),
        "/marker/@/time": (span,), "/region/@/time": (span,), "/region/@/length": (pos,),
        "/lastmarker/time": (span,), "/lastregion/time": (span,), "/lastregion/length": (pos,),
        "/emsync/regenerate/time": (pos,),
        "/emsync/emotion": ((-1.0, 1.0), (-1.0, 1.0), pos),
        "/emsync/emotion/label": (None, pos),  # None: not a number (the label)
    }


# Per address, the allowed range of each numeric argument (by position): anything outside is
# rejected and counted like a wrong type, e.g. `/time -5` or `/emsync/emotion 1e30 0`.
VALUE_RANGES = _ranges()


def in_range(pattern: str, args: tuple) -> bool:
    for bounds, v in zip(VALUE_RANGES.get(pattern, ()), args):
        if bounds is not None and isinstance(v, float) and not bounds[0] <= v <= bounds[1]:
            return False
    return True


def _check(kind: str, args: tuple) -> tuple | None:
    """Validated args for a REAPER feedback kind, or None to reject."""
    if len(args) != 1:
        return None
    (v,) = args
    if kind in ("float", "toggle"):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
            return None
        return (float(v),)
    if kind == "string":
        if not isinstance(v, str) or len(v) > MAX_STRING:
            return None
        return (v,)
    return None


def _check_tags(spec: str, args: tuple) -> tuple | None:
    """Validate our namespace's args against a spec like "ff[f]" (brackets: optional tail)."""
    required, _, optional = spec.partition("[")
    optional = optional.rstrip("]")
    if not len(required) <= len(args) <= len(required) + len(optional):
        return None
    out = []
    for tag, v in zip(required + optional, args):
        if tag == "f":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or abs(v) == float("inf"):
                return None
            out.append(float(v))
        elif tag == "i":
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int):
                return None
            out.append(v)
        elif tag == "s":
            if not isinstance(v, str) or len(v) > MAX_STRING:
                return None
            out.append(v)
    return tuple(out)


class _Msg:
    """The parts of python-osc's OscMessage a Handler uses (address; iterating gives the args)."""

    __slots__ = ("address", "params")

    def __init__(self, address: str, params: list):
        self.address = address
        self.params = params

    def __iter__(self):
        return iter(self.params)


def _fast_message(data: bytes) -> _Msg | None:
    """Parse the common case, one message with only f/i/s arguments (everything REAPER sends),
    about 5x cheaper than python-osc's general parser. Anything else (bundles, other types,
    truncated or padded oddly) returns None and goes through python-osc's parser."""
    try:
        if not data or data[0] != 0x2F:  # "/"
            return None
        end = data.find(b"\0")
        if end <= 0:
            return None
        address = data[:end].decode("ascii")
        t = (end + 4) & ~3
        if data[t:t + 1] != b",":
            return None
        tend = data.find(b"\0", t)
        if tend < 0:
            return None
        tags = data[t + 1:tend]
        pos = (tend + 4) & ~3
        params: list = []
        for tag in tags:
            if tag == 0x66:  # f
                if pos + 4 > len(data):
                    return None
                params.append(_F32.unpack_from(data, pos)[0])
                pos += 4
            elif tag == 0x69:  # i
                if pos + 4 > len(data):
                    return None
                params.append(_I32.unpack_from(data, pos)[0])
                pos += 4
            elif tag == 0x73:  # s
                send = data.find(b"\0", pos)
                if send < 0:
                    return None
                params.append(data[pos:send].decode("utf-8"))
                pos = (send + 4) & ~3
            else:
                return None
        if pos != len(data):
            return None
        return _Msg(address, params)
    except (UnicodeDecodeError, struct.error):
        return None


_F32 = struct.Struct(">f")
_I32 = struct.Struct(">i")


_BUNDLE_PREFIX = b"#bundle\0"
MAX_BUNDLE_DEPTH = 8


def _bundle_ok(data: bytes, depth: int = 0) -> bool:
    """Whether a bundle's element sizes are sane, checked before python-osc parses it: its parser
    never advances on an element size of -4 (a 20-byte datagram looped the OSC thread forever,
    logging a warning per turn) and recurses into nested bundles without a limit."""
    if depth > MAX_BUNDLE_DEPTH or len(data) < 16:
        return False
    i = 16  # "#bundle\0" + 8-byte time tag
    while i < len(data):
        if i + 4 > len(data):
            return False
        (n,) = _I32.unpack_from(data, i)
        i += 4
        if n <= 0 or i + n > len(data):
            return False
        if data.startswith(_BUNDLE_PREFIX, i) and not _bundle_ok(data[i:i + n], depth + 1):
            return False
        i += n
    return True


class FastDispatcher(Dispatcher):
    """python-osc's Dispatcher matches every mapped pattern with a regex per message (~35 regex
    matches each here); this looks exact addresses up in the map and tries the few slot patterns
    (`/marker/*/name`) only when that fails. Incoming OSC wildcards are not routed (they would fan
    one datagram out to many handlers, `/emsync/*` included): they go to the default handler."""

    _WILD = set("*?[]{}")

    def __init__(self, on_bad=None):
        super().__init__()
        self._slot_rx: list[tuple[re.Pattern, str]] | None = None
        self.on_bad = on_bad  # callable("malformed"): a datagram that does not parse as OSC

    def call_handlers_for_packet(self, data: bytes, client_address) -> list:
        """Like python-osc's, but a bundle's time tag never delays handling (python-osc sleeps in
        the server thread until a future time tag: one datagram could stall OSC for years), and a
        datagram the parser chokes on (bad UTF-8 string, deeply nested bundles: UnicodeDecodeError,
        RecursionError) is counted, not raised into the server's error log."""
        fast = _fast_message(data)
        if fast is not None:
            for handler in self.handlers_for_address(fast.address):
                handler.invoke(client_address, fast)
            return []
        if data.startswith(_BUNDLE_PREFIX) and not _bundle_ok(data):
            if self.on_bad is not None:
                self.on_bad("malformed")
            return []
        try:
            messages = [m.message for m in osc_packet.OscPacket(data).messages]
        except Exception:
            if self.on_bad is not None:
                self.on_bad("malformed")
            return []
        for msg in messages:
            for handler in self.handlers_for_address(msg.address):
                handler.invoke(client_address, msg)
        return []

    def map(self, address, handler, *args, needs_reply_address=False):
        self._slot_rx = None
        return super().map(address, handler, *args, needs_reply_address=needs_reply_address)

    def handlers_for_address(self, address_pattern):
        handlers = self._map.get(address_pattern)
        if handlers:
            yield from handlers
            return
        if not self._WILD.intersection(address_pattern):
            if self._slot_rx is None:
                self._slot_rx = [(re.compile("^" + re.escape(k).replace(r"\*", "[^/]+") + "$"), k)
                                 for k in self._map if "*" in k]
            for rx, key in self._slot_rx:
                if rx.match(address_pattern):
                    yield from self._map[key]
                    return
        if self._default_handler:
            yield self._default_handler


class _Server(BlockingOSCUDPServer):
    def verify_request(self, request, client_address) -> bool:
        ok = super().verify_request(request, client_address)
        if not ok and self.dispatcher.on_bad is not None:  # neither message nor bundle: never dispatched
            self.dispatcher.on_bad("malformed")
        return ok


class OscServer:
    """UDP OSC server in one thread; accepted messages go to `self.events` (a Queue).

    `counters`: received (every datagram that reached a handler), accepted, rejected (bad
    arguments), unknown (no such address), malformed (not parseable as OSC: no handler saw it),
    denied (a control message from a sender not in `allow_from`).
    Bind address: 127.0.0.1 unless told otherwise.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = protocol.DAEMON_OSC_PORT, *,
                 allow_remote: bool = False, maxsize: int = 100_000, allow_from=None):
        if not is_loopback(host) and not allow_remote:
            raise EmsyncError(f"refusing to listen on {host}: OSC has no authentication; bind 127.0.0.1 "
                              f"or pass --allow-remote if you really mean it")
        if not is_loopback(host):
            log.warning("listening for OSC on %s: anyone on that network can control the daemon", host)
        # None: any sender that can reach the socket; else only these may send CONTROL_ADDRESSES.
        self.allow_from = None if allow_from is None else parse_allow_from(allow_from)
        self._denied_logged: set[str] = set()
        self.events: queue.Queue[OscEvent] = queue.Queue(maxsize=maxsize)
        self.counters: Counter[str] = Counter()
        self.dropped_full = 0
        d = FastDispatcher(on_bad=self._bad)
        for addr, kind in protocol.REAPER_FEEDBACK_ADDRESSES.items():
            d.map(protocol.osc_dispatch_pattern(addr), self._feedback_handler(addr, kind), needs_reply_address=True)
        for addr, spec in protocol.EMSYNC_ADDRESSES.items():
            d.map(addr, self._emsync_handler(addr, spec), needs_reply_address=True)
        d.set_default_handler(self._unknown, needs_reply_address=True)
        try:
            self.server = _Server((host, port), d)
        except OSError as exc:
            raise EmsyncError(f"cannot listen for OSC on {host}:{port}: {exc.strerror or exc} "
                              f"(is another emsync-bridge running? try --osc-port)") from None
        try:
            self.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        except OSError:
            pass
        self.host, self.port = self.server.server_address[:2]
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    # handlers run in the server thread: validate, count, enqueue; nothing slow here

    def _bad(self, kind: str) -> None:
        self.counters[kind] += 1

    def _push(self, ev: OscEvent) -> None:
        try:
            self.events.put_nowait(ev)
            self.counters["accepted"] += 1
        except queue.Full:
            self.dropped_full += 1

    def _feedback_handler(self, pattern: str, kind: str):
        slot_index = pattern.split("/").index("@") if "@" in pattern else None

        def handler(client, address, *args):
            self.counters["received"] += 1
            checked = _check(kind, args)
            if checked is not None and not in_range(pattern, checked):
                checked = None
            slot = None
            if checked is not None and slot_index is not None:
                part = address.split("/")[slot_index] if len(address.split("/")) > slot_index else ""
                slot = int(part) if part.isdigit() and 0 < int(part) <= 100_000 else None
                if slot is None:
                    checked = None
            if checked is None:
                self.counters["rejected"] += 1
                return
            self._push(OscEvent(address, pattern, checked, slot, time.perf_counter(), client))

        return handler

    def allowed(self, client) -> bool:
        if self.allow_from is None:
            return True
        try:
            ip = ipaddress.ip_address(client[0])
        except (TypeError, ValueError, IndexError):
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.allow_from)

    def _emsync_handler(self, pattern: str, spec: str):
        control = pattern in CONTROL_ADDRESSES

        def handler(client, address, *args):
            self.counters["received"] += 1
            if control and not self.allowed(client):
                self.counters["denied"] += 1
                host = str(client[0]) if client else "?"
                if host not in self._denied_logged and len(self._denied_logged) < 64:
                    self._denied_logged.add(host)
                    log.warning("ignored %s from %s: not in --allow-from (further ones from it are only counted)",
                                address, host)
                return
            checked = _check_tags(spec, args)
            if checked is None or not in_range(pattern, checked):
                self.counters["rejected"] += 1
                return
            self._push(OscEvent(address, pattern, checked, None, time.perf_counter(), client))

        return handler

    def _unknown(self, client, address, *args):
        self.counters["received"] += 1
        self.counters["unknown"] += 1

    def start(self) -> "OscServer":
        self._thread = threading.Thread(target=self._serve, name="emsync-osc-in", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        """The blocking server's request loop without socketserver's per-datagram select() and
        handler object (half the cost per message at 10 k msg/s); same checks, same dispatcher.
        Nothing a datagram contains can end the loop: a handler bug is logged and counted."""
        srv = self.server
        sock = srv.socket
        sock.settimeout(0.1)  # how quickly close() is noticed
        while not self._closing.is_set():
            try:
                data, client = sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                if self._closing.is_set():
                    break
                continue
            try:
                if srv.verify_request((data, sock), client):
                    srv.dispatcher.call_handlers_for_packet(data, client)
            except Exception:
                self.counters["handler_errors"] += 1
                log.exception("OSC handler failed (%s)", client)

    def send_to(self, address: str, args, target: tuple[str, int]) -> None:
        """Send from the server's own socket (replies come from the port clients talk to)."""
        self.server.socket.sendto(build_message(address, args), target)

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def build_message(address: str, args=()) -> bytes:
    b = OscMessageBuilder(address=address)
    for a in args:
        if isinstance(a, bool):
            b.add_arg(int(a), "i")
        elif isinstance(a, int):
            b.add_arg(a, "i")
        elif isinstance(a, float):
            b.add_arg(a, "f")
        else:
            b.add_arg(str(a), "s")
    return b.build().dgram


class ReaperOut:
    """What the daemon sends to REAPER's control surface (port 9138 by default)."""

    def __init__(self, host: str = "127.0.0.1", port: int = protocol.REAPER_OSC_PORT):
        self.target = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if is_loopback(host):  # else the first send binds 0.0.0.0:<ephemeral>, reachable from the network
            self.sock.bind(("127.0.0.1", 0))
        self.sent = 0

    def send(self, address: str, *args) -> None:
        try:
            self.sock.sendto(build_message(address, args), self.target)
            self.sent += 1
        except OSError as exc:  # REAPER not running: UDP may report ECONNREFUSED; never fatal
            log.debug("OSC to REAPER %s failed: %s", address, exc)

    def refresh(self, bank: int = protocol.MARKER_BANK_SIZE) -> None:
        """Ask REAPER's surface to resend the marker and region banks to us alone (on start).

        Bank size 0 makes REAPER forget what it last sent for each slot, the real size then sends
        every slot again (csurf_osc.cpp ProcessStateAction -> SetMarkerBankChange). No action is
        run: "refresh all surfaces" (41743) would reset the user's own controllers too."""
        for count in (0, bank):
            self.send("/device/marker/count", count)
            self.send("/device/region/count", count)

    def play(self) -> None:
        self.send("/play", 1)

    def stop(self) -> None:
        self.send("/stop", 1)

    def pause(self) -> None:
        self.send("/pause", 1)

    def seek(self, seconds: float) -> None:
        self.send("/time", float(seconds))

    def all_notes_off(self) -> None:
        self.send("/action", protocol.REAPER_ACTION_ALL_NOTES_OFF)

    def close(self) -> None:
        self.sock.close()


class BridgeClient:
    """Talk to a running daemon over loopback OSC: the panel and `emsync-bridge` use this.

    `status()` sends `/emsync/status` and waits for `/emsync/status/reply <json>` (a dict; fields
    in docs/protocol.md "Daemon status"). The other calls are fire-and-forget UDP.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = protocol.DAEMON_OSC_PORT, timeout: float = 1.0):
        self.target = (host, port)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1" if is_loopback(host) else "0.0.0.0", 0))

    def send(self, address: str, *args) -> None:
        self.sock.sendto(build_message(address, args), self.target)

    def status(self, timeout: float | None = None) -> dict:
        """The daemon's status; raises EmsyncError when nothing answers in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self.send("/emsync/status")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EmsyncError(f"no emsync-bridge daemon answered on {self.target[0]}:{self.target[1]} "
                                  f"(start it with `emsync-bridge serve`)")
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:  # ECONNREFUSED from an ICMP port-unreachable: keep waiting until the deadline
                time.sleep(min(0.05, max(left, 0)))
                continue
            try:
                msg = OscMessage(data)
            except Exception:
                continue
            if msg.address == protocol.EMSYNC_STATUS_REPLY and msg.params and isinstance(msg.params[0], str):
                return json.loads(msg.params[0])

    def regenerate(self, time_s: float | None = None, marker: int | None = None) -> None:
        if marker is not None:
            self.send("/emsync/regenerate/marker", int(marker))
        elif time_s is not None:
            self.send("/emsync/regenerate/time", float(time_s))
        else:
            self.send("/emsync/regenerate")

    def set_emotion(self, valence: float, arousal: float, time_s: float | None = None) -> None:
        args = [float(valence), float(arousal)] + ([] if time_s is None else [float(time_s)])
        self.send("/emsync/emotion", *args)

    def set_emotion_label(self, label: str, time_s: float | None = None) -> None:
        self.send("/emsync/emotion/label", label, *([] if time_s is None else [float(time_s)]))

    def panic(self) -> None:
        self.send("/emsync/panic")

    def set_mode(self, mode: str) -> None:
        self.send("/emsync/mode", mode)

    def reload_project(self) -> None:
        self.send("/emsync/project/reload")

    def shutdown(self) -> None:
        self.send("/emsync/shutdown")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
