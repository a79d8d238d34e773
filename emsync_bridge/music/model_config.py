"""Model shapes, kept apart from model.py so that finding and describing a model never imports
torch (running an exported model must not)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from emsync_bridge.music.vocab import VOCAB_SIZE

MAX_SECONDS_TO_CHORD = 8.0
N_PREFIX = 2  # the valence and arousal slots
# Valence guidance weight used by default at generation (music/generate.py, SamplingConfig): off.
# On the shipped model 2.5 adds only 5 pp of major share (model card) at twice the decode cost,
# which would break the 60 s-in-3 s target; users can still ask for it (--valence-guidance).
DEFAULT_VALENCE_GUIDANCE = 1.0
# Sampling defaults (SamplingConfig, the CLI, the daemon and score options read these). Top-p
# measured with the drift-only bass lean (generate.MODE_LEAN_MARGIN, relative key) on held-out seeds
# (64 pieces, seeds 200-263; mode on seeds 100-139), shipped weights, top triad / distinct triads
# on >= 4 beats / entropy / major share pp: 0.7 -> 0.49 / 3.66 / 2.38 / 52.5; 0.8 -> 0.39 / 4.31 /
# 2.48 / 57.5. The fine-tuned candidate ft24b (mid-run): 0.7 -> 0.50 / 3.72 / 2.31; 0.8 -> 0.44 / 3.89 / 2.43.
DEFAULT_TEMPERATURE = 1.2
DEFAULT_TOP_P = 0.8
# Seconds of guidance from the start and from each valence change (SamplingConfig.valence_guidance_s).
VALENCE_GUIDANCE_S = 8.0


@dataclass
class ModelConfig:
    n_layer: int = 11
    n_head: int = 8
    d_model: int = 512
    d_inner: int = 2048
    context_len: int = 1216  # prefix slots + tokens
    vocab_size: int = VOCAB_SIZE
    dropout: float = 0.1
    cond_hidden: int = 256
    boundary_hidden: int = 128

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


CONFIGS = {
    # The official EMSYNC generator: 37,178,355 parameters.
    "emsync-37m": ModelConfig(),
    # Our default, sized for CPU training and fast CPU inference.
    "emsync-small": ModelConfig(n_layer=4, n_head=2, d_model=128, d_inner=512, context_len=512),
    # The larger model for a short GPU run (scripts/gpu-run.sh): 11,943,347 parameters, 47.8 MB of
    # float32 weights (under the 60 MB an optional model may ship, and back through the run's
    # 64 MiB of output). Sized for 3 minutes on one GPU fed by the one-thread window sampler
    # (0.8-1.35 M tokens/s measured on this project's CPU): ~150-250 M tokens, 12-20 per
    # parameter, 6-9 passes over the cache's 26.7 M tokens; a larger model would see too few.
    # The run reports the rate it reached (train summary: tokens_per_s_this_session).
    "emsync-base": ModelConfig(n_layer=6, n_head=6, d_model=384, d_inner=1536, context_len=512),
}

# Human drum feel strength (music/groove.py): how much of a real drummer's offset from the grid each
# drum hit gets. Measured on 8 pieces of 30 s (V/A +-0.8, cuts 5-9 s, fitted tempo), drum pattern
# consistency / drum hits on a grid fitted to the notes: 0 -> 1.00 / 1.00, 0.3 -> 0.96 / 0.96,
# 0.35 -> 0.94 / 0.94, 0.5 -> 0.90 / 0.90, 1 (as played) -> 0.81 / 0.84. 0.3 keeps both of the
# issue bars (>= 0.85 consistency with human timing, issue 17; >= 0.95 on the fitted grid, issue 18).
DEFAULT_DRUM_FEEL = 0.3
