"""emsync-bridge: emotion-conditioned, cut-aligned MIDI scoring for video, with a REAPER bridge."""

__version__ = "0.1.0"
