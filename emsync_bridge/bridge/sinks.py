"""Where live MIDI goes: the `MidiSink` protocol, a recording sink for tests and benches, and a
real port through mido + python-rtmidi.

Port facts (shared/docs/reaper-integration.md §4, dependencies.md Q3):
- macOS and Linux: rtmidi creates a virtual output port that REAPER lists as an input device.
- Windows (WinMM) cannot create virtual ports: the user makes a loopMIDI port named `EmSync Out`
  and we open it by name.
- JACK silently drops messages sent in large bursts, so `MidoSink` paces bursts.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from emsync_bridge.bridge.events import CC_ALL_NOTES_OFF, MidiMsg
from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline.protocol import LIVE_PORT_NAME

log = logging.getLogger(__name__)

# rtmidi API names as mido spells them (MIDO_BACKEND=mido.backends.rtmidi/<API>).
API_LABELS = {
    "LINUX_ALSA": "ALSA",
    "UNIX_JACK": "JACK",
    "MACOSX_CORE": "CoreMIDI",
    "WINDOWS_MM": "WinMM",
    "WEB_MIDI_API": "WebMIDI",
    "WINDOWS_UWP": "WinUWP",
    "ANDROID": "Android",
}
LOOPMIDI_HINT = ("Windows cannot create virtual MIDI ports: install loopMIDI "
                 "(https://www.tobias-erichsen.de/software/loopmidi.html), create a port named "
                 f"'{LIVE_PORT_NAME}', then start the daemon again (or pass --midi-port NAME)")


class MidiSink(Protocol):
    """Anything the scheduler can send MIDI to. Use as a context manager; `close` is idempotent."""

    name: str

    def send(self, msg: MidiMsg) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Sent:
    wall: float  # time.perf_counter() when sent
    msg: MidiMsg
    project_time: float | None = None  # what the sender meant (the event's project time)


class RecordingSink:
    """Keeps every message with its send time (tests, benches, `--midi-port record:`)."""

    def __init__(self, name: str = "recording", clock: Callable[[], float] = time.perf_counter):
        self.name = name
        self.clock = clock
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self.closed = False

    def send(self, msg: MidiMsg, project_time: float | None = None) -> None:
        with self._lock:
            self.sent.append(Sent(self.clock(), msg, project_time))

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def messages(self) -> list[MidiMsg]:
        with self._lock:
            return [s.msg for s in self.sent]

    def note_ons(self) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.msg.type == "note_on"]

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()

    def sounding(self) -> set[tuple[int, int]]:
        """(channel, note) pairs a receiver would still be playing after everything sent so far."""
        return sounding_after(self.messages())


def sounding_after(messages) -> set[tuple[int, int]]:
    """What a receiver still plays after `messages` (note-offs and all-notes-off release)."""
    on: set[tuple[int, int]] = set()
    for m in messages:
        if m.type == "note_on" and m.velocity > 0:
            on.add((m.channel, m.note))
        elif m.type in ("note_on", "note_off"):
            on.discard((m.channel, m.note))
        elif m.type == "control_change" and m.control in (CC_ALL_NOTES_OFF, 120):
            on = {k for k in on if k[0] != m.channel}
    return on


# --------------------------------------------------------------------------------------------
# mido / python-rtmidi


def _rtmidi():
    try:
        import rtmidi  # python-rtmidi
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise EmsyncError(f"python-rtmidi is not installed ({exc}); pip install python-rtmidi") from None
    return rtmidi


def _api_name(rtmidi, api: int) -> str:
    return {
        rtmidi.API_LINUX_ALSA: "LINUX_ALSA",
        rtmidi.API_UNIX_JACK: "UNIX_JACK",
        rtmidi.API_MACOSX_CORE: "MACOSX_CORE",
        rtmidi.API_WINDOWS_MM: "WINDOWS_MM",
    }.get(api, rtmidi.get_api_name(api).upper())


def _preferred_order() -> list[str]:
    if sys.platform == "darwin":
        return ["MACOSX_CORE", "UNIX_JACK"]
    if sys.platform.startswith("win"):
        return ["WINDOWS_MM"]
    return ["LINUX_ALSA", "UNIX_JACK"]


@dataclass
class BackendInfo:
    api: str  # "LINUX_ALSA", "UNIX_JACK", ...
    label: str  # "ALSA", "JACK", ...
    available: bool
    error: str = ""
    outputs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()


def probe_backends() -> list[BackendInfo]:
    """Every rtmidi API compiled in, whether it works here, and its ports."""
    rtmidi = _rtmidi()
    out = []
    for api in rtmidi.get_compiled_api():
        name = _api_name(rtmidi, api)
        label = API_LABELS.get(name, name)
        try:
            mo = rtmidi.MidiOut(api)
            mi = rtmidi.MidiIn(api)
            outs, ins = tuple(mo.get_ports()), tuple(mi.get_ports())
            del mo, mi
            out.append(BackendInfo(name, label, True, "", outs, ins))
        except Exception as exc:  # rtmidi raises SystemError/RuntimeError when the API cannot start
            out.append(BackendInfo(name, label, False, str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__))
    return out


def active_backend(probed: list[BackendInfo] | None = None) -> BackendInfo | None:
    """The API `open_sink` will use: MIDO_BACKEND's if set, else the first that works here in
    this OS's preferred order."""
    probed = probe_backends() if probed is None else probed
    by_name = {b.api: b for b in probed}
    env = os.environ.get("MIDO_BACKEND", "")
    if "/" in env:
        return by_name.get(env.split("/", 1)[1])
    for name in _preferred_order() + list(by_name):
        b = by_name.get(name)
        if b is not None and b.available:
            return b
    return None


class MidoSink:
    """A real MIDI output through mido's rtmidi backend.

    `virtual=True` creates the port (`EmSync Out`); otherwise an existing port is opened by name
    (exact, else the first whose name starts with it: ALSA adds ` 128:0`-style suffixes).
    Bursts are paced (at most `burst` messages per `burst_window_s`) because JACK drops big bursts
    silently (dependencies.md Q3).
    """

    def __init__(self, port_name: str = LIVE_PORT_NAME, *, virtual: bool | None = None, api: str | None = None,
                 client_name: str = "EmSync", burst: int = 32, burst_window_s: float = 0.004):
        import mido

        rtmidi = _rtmidi()
        if api is None:
            b = active_backend()
            if b is None:
                raise EmsyncError("no working MIDI backend (rtmidi found no ALSA/JACK/CoreMIDI/WinMM); "
                                  "run `emsync-bridge ports` for details")
            api = b.api
        self.api = api
        self.backend = mido.Backend(f"mido.backends.rtmidi/{api}", load=True)
        windows = api == "WINDOWS_MM"
        self.virtual = (not windows) if virtual is None else virtual
        if self.virtual and windows:
            raise EmsyncError(LOOPMIDI_HINT)
        try:
            if self.virtual:
                self.port = self.backend.open_output(port_name, virtual=True, client_name=client_name)
            else:
                names = self.backend.get_output_names()
                match = next((n for n in names if n == port_name), None) or next(
                    (n for n in names if n.startswith(port_name)), None)
                if match is None:
                    hint = LOOPMIDI_HINT if windows else "start the program that provides it, or use a virtual port"
                    raise EmsyncError(f"no MIDI output named '{port_name}' (have: {', '.join(names) or 'none'}); {hint}")
                self.port = self.backend.open_output(match)
                port_name = match
        except EmsyncError:
            raise
        except Exception as exc:  # rtmidi: SystemError "JACK server not running?", ALSA seq missing
            first = str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__
            raise EmsyncError(f"cannot open MIDI output '{port_name}' with {API_LABELS.get(api, api)}: {first}") from None
        del rtmidi
        self.name = port_name
        self.burst = burst
        self.burst_window_s = burst_window_s
        self._recent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self.closed = False

    def send(self, msg: MidiMsg, project_time: float | None = None) -> None:
        import mido

        with self._lock:
            if self.closed:
                return
            now = time.perf_counter()
            while self._recent and now - self._recent[0] > self.burst_window_s:
                self._recent.popleft()
            if len(self._recent) >= self.burst:
                time.sleep(max(0.0, self.burst_window_s - (now - self._recent[0])))
                self._recent.clear()
            self._recent.append(time.perf_counter())
            self.port.send(mido.Message.from_bytes(msg.bytes()))

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_sink(spec: str = LIVE_PORT_NAME) -> MidiSink:
    """`record:` -> RecordingSink; `port:NAME` -> an existing output port only; `NAME` -> the
    existing output port NAME if there is one (loopMIDI on Windows, an IAC bus on macOS, VirMIDI on
    Linux), else a new virtual port NAME (macOS/Linux; Windows says how to get loopMIDI)."""
    if spec.startswith("record:"):
        return RecordingSink(spec[len("record:"):] or "recording")
    if spec.startswith("port:"):
        return MidoSink(spec[len("port:"):], virtual=False)
    b = active_backend()
    if b is not None and any(n == spec or n.startswith(spec) for n in b.outputs):
        return MidoSink(spec, virtual=False, api=b.api)
    return MidoSink(spec, api=b.api if b is not None else None)
