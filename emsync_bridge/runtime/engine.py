"""The `Engine` protocol: what generation needs from a model, whatever runs it.

Two calls, both returning the logits of the last position as a numpy array [vocab]:
- `prefill(tokens, boundary, valence, arousal)` starts a sequence (the valence/arousal prefix slots
  plus `tokens`) and keeps its KV cache;
- `step(token, b)` appends one token to the cached sequence.
`cached_len` is the number of positions in the cache (prefix slots included), and
`context_len` the most the model can attend to. A full-recompute decoder simply calls `prefill`
for every token. `twin()` gives a second engine on the same loaded model with its own cache
(valence guidance decodes two sequences side by side); an engine without it is decoded unguided.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Engine(Protocol):
    name: str  # e.g. "torch", "onnxruntime"
    provider: str  # e.g. "CPUExecutionProvider", "CUDAExecutionProvider", "torch-cpu"
    context_len: int
    cached_len: int

    def prefill(self, tokens: np.ndarray, boundary: np.ndarray, valence: float, arousal: float) -> np.ndarray: ...

    def step(self, token: int, b: float) -> np.ndarray: ...

    def twin(self) -> "Engine": ...
