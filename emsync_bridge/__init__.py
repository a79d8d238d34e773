"""emsync-bridge: emotion-conditioned, cut-aligned MIDI scoring for video, with a REAPER bridge."""

import os as _os

__version__ = "0.1.0"

# onnxruntime (1.2x+ Linux wheels) starts a telemetry store when it is *imported*: it writes
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db} (venv path, OS, CPU,
# a device id) and is built to upload it. Its environment switch must be set before that import,
# so here, before any module of ours can import it; `onnxrt.import_onnxruntime`
# also calls `disable_telemetry_events()`. A user who sets the variable keeps their value.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
