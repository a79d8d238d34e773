"""A REAPER stand-in for tests and benches: speaks REAPER's control-surface OSC (our pattern file)
to a daemon over UDP on 127.0.0.1 and writes project.json the way "EmSync: Send project" does.

It keeps a true play position (`position()`), sends `/time` at ~30 Hz while playing (a thread,
stopped by `stop()`/`close()`), the marker bank as REAPER's feedback does (`/marker/N/number/str`,
`/name`, `/time`, then an empty slot), `/tempo/raw`, transport toggles, and records what the
daemon sends back to "REAPER".
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pythonosc.osc_message import OscMessage

from emsync_bridge.bridge.osc import build_message
from emsync_bridge.timeline import protocol
from emsync_bridge.atomic import write_json_atomic
from emsync_bridge.timeline.spool import utc_now_iso


@dataclass
class SimMarker:
    number: int
    name: str
    time: float


@dataclass
class ReaperSim:
    daemon_port: int
    rate_hz: float = 30.0
    markers: list[SimMarker] = field(default_factory=list)
    tempo: float = 120.0
    project_id: str = "simproject01"

    def __post_init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))  # "REAPER's" listen port: the daemon sends here
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.1)
        self.received: list[tuple[float, str, list]] = []
        self.playing = False
        self.anchor_pos = 0.0
        self.anchor_wall = time.perf_counter()
        self.history: list[tuple[float, float, bool]] = []  # (wall, position, playing) at each change
        self._lock = threading.Lock()
        self._stop_feed = threading.Event()
        self._closed = threading.Event()
        self._feed: threading.Thread | None = None
        self._recv = threading.Thread(target=self._receive, name="reaper-sim-recv", daemon=True)
        self._recv.start()

    # -- what REAPER would send

    def send(self, address: str, *args) -> None:
        self.sock.sendto(build_message(address, args), ("127.0.0.1", self.daemon_port))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.daemon_port))

    def position(self, wall: float | None = None) -> float:
        with self._lock:
            if not self.playing:
                return self.anchor_pos
            return self.anchor_pos + ((time.perf_counter() if wall is None else wall) - self.anchor_wall)

    def position_at(self, wall: float) -> float:
        """The true play position at a past `wall` time (for checking what was sent when)."""
        with self._lock:
            past = [h for h in self.history if h[0] <= wall]
        if not past:
            return 0.0
        w, pos, playing = past[-1]
        return pos + (wall - w) if playing else pos

    def play(self, pos: float | None = None) -> None:
        with self._lock:
            if pos is not None:
                self.anchor_pos = pos
            self.anchor_wall = time.perf_counter()
            self.playing = True
            self.history.append((self.anchor_wall, self.anchor_pos, True))
        self.send("/time", float(self.anchor_pos))
        self.send("/stop", 0)
        self.send("/play", 1)
        self._stop_feed.clear()
        self._feed = threading.Thread(target=self._feed_time, name="reaper-sim-time", daemon=True)
        self._feed.start()

    def stop(self) -> None:
        pos = self.position()
        with self._lock:
            self.playing = False
            self.anchor_pos = pos
            self.history.append((time.perf_counter(), pos, False))
        self._stop_feed.set()
        if self._feed is not None:
            self._feed.join(timeout=2.0)
            self._feed = None
        self.send("/play", 0)
        self.send("/stop", 1)
        self.send("/time", float(pos))

    def seek(self, pos: float) -> None:
        with self._lock:
            self.anchor_pos = pos
            self.anchor_wall = time.perf_counter()
            self.history.append((self.anchor_wall, pos, self.playing))
        self.send("/time", float(pos))

    def set_tempo(self, bpm: float) -> None:
        self.tempo = bpm
        self.send("/tempo/raw", float(bpm))

    def send_marker_bank(self) -> None:
        """The marker bank in timeline order, then one empty slot (the list is complete)."""
        ordered = sorted(self.markers, key=lambda m: (m.time, m.number))
        for slot, m in enumerate(ordered, start=1):
            self.send(f"/marker/{slot}/number/str", str(m.number))
            self.send(f"/marker/{slot}/name", m.name)
            self.send(f"/marker/{slot}/time", float(m.time))
        empty = len(ordered) + 1
        self.send(f"/marker/{empty}/number/str", "")
        self.send(f"/marker/{empty}/name", "")
        self.send(f"/marker/{empty}/time", 0.0)

    def move_marker(self, number: int, new_time: float) -> None:
        for m in self.markers:
            if m.number == number:
                m.time = new_time
        self.send_marker_bank()

    def rename_marker(self, number: int, name: str) -> None:
        for m in self.markers:
            if m.number == number:
                m.name = name
        self.send_marker_bank()

    def _feed_time(self) -> None:
        period = 1.0 / self.rate_hz
        nxt = time.perf_counter()
        while not self._stop_feed.is_set() and not self._closed.is_set():
            self.send("/time", float(self.position()))
            nxt += period
            self._stop_feed.wait(max(0.0, nxt - time.perf_counter()))

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)
            except (socket.timeout, OSError):
                continue
            try:
                msg = OscMessage(data)
            except Exception:
                continue
            self.received.append((time.perf_counter(), msg.address, list(msg.params)))

    def addresses_received(self) -> list[str]:
        return [a for _, a, _ in self.received]

    # -- what "EmSync: Send project" would write

    def project_dict(self, video_items=(), tempo_map=None, regions=(), duration_hint: float | None = None) -> dict:
        return {
            "version": protocol.PROTOCOL_VERSION,
            "kind": "emsync.project",
            "written_at": utc_now_iso(),
            "reaper": {"version": "7.0/sim", "os": "sim", "scripts": "sim"},
            "project": {"name": "sim.rpp", "file": "/tmp/sim.rpp", "id": self.project_id},
            "video_items": list(video_items),
            "markers": [{"index": m.number, "name": m.name, "position": m.time, "guid": f"{{M{m.number}}}"}
                        for m in sorted(self.markers, key=lambda m: m.time)],
            "regions": list(regions),
            "tempo_map": tempo_map if tempo_map is not None else [
                {"time": 0.0, "bpm": self.tempo, "num": 4, "denom": 4, "linear": False}],
            "time_selection": None if duration_hint is None else {"start": 0.0, "end": duration_hint},
            "cursor": 0.0,
            "target_tracks": [],
            "frame_rate": 30.0,
            "actions": {},
        }

    def write_project(self, spool: Path, **kwargs) -> Path:
        path = Path(spool) / protocol.PROJECT_FILE
        write_json_atomic(path, self.project_dict(**kwargs))
        return path

    def close(self) -> None:
        self._stop_feed.set()
        self._closed.set()
        if self._feed is not None:
            self._feed.join(timeout=2.0)
        self._recv.join(timeout=2.0)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
