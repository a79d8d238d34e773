"""The bridge daemon: REAPER OSC in/out, the Lua spool, commit-mode MIDI files, live MIDI output.

Entry points: `Bridge`/`BridgeConfig` (the daemon), `BridgeClient` (control API over loopback
OSC, used by the panel), `MidiSink`/`RecordingSink`/`MidoSink`/`open_sink`, `PlayClock`/
`Scheduler`/`LiveScore`. (The REAPER stand-in for tests and benches is `emsync_bridge.bench.simulator`.)
Heavy modules (model runtimes, rtmidi) load only when used.
"""

from emsync_bridge.bridge.events import MidiMsg, NoteEvent, TokenStream
from emsync_bridge.bridge.osc import BridgeClient, OscServer, ReaperOut
from emsync_bridge.bridge.scheduler import Cut, LiveScore, PlayClock, Scheduler
from emsync_bridge.bridge.sinks import MidiSink, MidoSink, RecordingSink, open_sink

__all__ = [
    "BridgeClient", "Cut", "LiveScore", "MidiMsg", "MidiSink", "MidoSink", "NoteEvent", "OscServer", "PlayClock",
    "ReaperOut", "RecordingSink", "Scheduler", "TokenStream", "open_sink",
]
