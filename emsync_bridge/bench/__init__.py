"""`emsync-bridge bench` and `bench-live`: the product's speed and live-mode measurements.

One home for every benchmark a user can run; it sits above what it measures and nothing in the
library imports it:
- `decode`: decoder speed (reference vs cached torch vs ONNX Runtime) and generation speed;
- `analyze`: video analysis × real time and cut accuracy vs `scenedetect` defaults;
- `live`: the bridge's live-mode acceptance numbers (regeneration latency, scheduler timing,
  transport, OSC flood), the real daemon driven by
- `simulator`: a REAPER stand-in speaking REAPER's control-surface OSC over 127.0.0.1.
"""
