"""A real virtual MIDI port round trip: a JACK server with the dummy driver (no sound card needed),
started here under a unique name (shared/docs/dependencies.md Q3). The scheduler plays a score
into `MidoSink`'s virtual port `EmSync Out`; a JACK MIDI input reads it back. JACK drops big
bursts silently, so notes are spaced and the sink paces bursts. Skipped only where jackd is absent
(`scripts/install_system_deps.sh` installs jackd2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from emsync_bridge.bridge.events import MidiMsg, NoteEvent
from emsync_bridge.bridge.scheduler import LiveScore, PlayClock, Scheduler
from emsync_bridge.bridge.sinks import MidoSink, sounding_after
from emsync_bridge.timeline.protocol import LIVE_PORT_NAME


@pytest.fixture(scope="module")
def jack_server():
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        pytest.skip("jackd is not installed (apt install jackd2; see scripts/install_system_deps.sh)")
    name = f"emsync_ci_{os.getpid()}"
    old = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    proc = subprocess.Popen(["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            out = subprocess.run(["jack_wait", "-c", "-s", name], capture_output=True, text=True, timeout=10).stdout
            if out.strip() == "running":  # it prints "not running" with rc 0 while starting
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jackd -n {name} did not start (exit {proc.poll()})")
            time.sleep(0.1)
        yield name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if old is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = old


def test_virtual_port_round_trip_through_jack(jack_server):
    client = f"emsync_{os.getpid()}"
    with MidoSink(LIVE_PORT_NAME, api="UNIX_JACK", virtual=True, client_name=client) as sink:
        names = sink.backend.get_input_names()
        src = next((n for n in names if n.startswith(client) and LIVE_PORT_NAME in n), None)
        assert src is not None, f"our virtual port is listed: {names}"
        inport = sink.backend.open_input(src)
        try:
            score = LiveScore()
            events = []
            for i in range(120):  # 10 ms apart, a mix of instruments incl. drums on channel 10
                inst = ("bass", "drums", "guitar", "piano", "strings")[i % 5]
                t = 0.05 + i * 0.01
                events.append(NoteEvent(t, True, inst, 40 + i % 40, 1 + i % 120))
                events.append(NoteEvent(t + 0.025, False, inst, 40 + i % 40))
            events.sort(key=lambda e: (e.time, e.on))
            score.append(events, until=2.0)
            sched = Scheduler(sink, PlayClock(), score)
            sched.start()
            sched.play(0.0)
            got = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                for msg in inport.iter_pending():
                    got.append(MidiMsg.from_bytes(msg.bytes()))
                if sum(m.type == "note_on" for m in got) >= 120 and sum(m.type == "note_off" for m in got) >= 120:
                    break
                time.sleep(0.002)
            sched.stop()
            sched.close()
            time.sleep(0.2)
            for msg in inport.iter_pending():
                got.append(MidiMsg.from_bytes(msg.bytes()))
        finally:
            inport.close()
    ons = [(m.channel, m.note, m.velocity) for m in got if m.type == "note_on"]
    expect = [(e.channel, e.pitch, e.velocity) for e in events if e.on]
    assert ons == expect, "every note arrives, in order, on its instrument's channel"
    assert sounding_after(got) == set()
    assert {m.channel for m in got if m.type == "control_change" and m.control == 123} == {0, 1, 2, 3, 9}
