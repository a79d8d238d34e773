"""The torch reference engine: runs `MusicTransformer` directly (training, export parity, and a
fallback when no ONNX Runtime is installed)."""

from __future__ import annotations

import math

import numpy as np
import torch

from emsync_bridge.music.model import MusicTransformer
from emsync_bridge.music.model_config import N_PREFIX


class TorchEngine:
    name = "torch"

    def __init__(self, model: MusicTransformer, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.device = device
        self.provider = f"torch-{device}"
        self.context_len = model.cfg.context_len
        self._past = None

    @property
    def cached_len(self) -> int:
        return 0 if self._past is None else int(self._past.shape[4])

    @torch.inference_mode()
    def prefill(self, tokens, boundary, valence, arousal):
        t = torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=self.device).unsqueeze(0)
        b = torch.as_tensor(np.asarray(boundary, dtype=np.float32), device=self.device).unsqueeze(0)
        v = torch.tensor([_nan_if_none(valence)], device=self.device)
        a = torch.tensor([_nan_if_none(arousal)], device=self.device)
        if t.shape[1] + N_PREFIX > self.context_len:
            raise ValueError(f"prefill of {t.shape[1]} tokens exceeds the context {self.context_len}")
        logits, self._past = self.model(t, b, v, a, last_only=True)
        return logits[0, -1].float().cpu().numpy()

    def twin(self) -> "TorchEngine":
        return TorchEngine(self.model, self.device)

    @torch.inference_mode()
    def step(self, token, b):
        if self._past is None:
            raise RuntimeError("step() before prefill()")
        t = torch.tensor([[int(token)]], device=self.device)
        bb = torch.tensor([[float(b)]], device=self.device)
        logits, self._past = self.model(t, bb, past=self._past, last_only=True)
        return logits[0, -1].float().cpu().numpy()


def _nan_if_none(x):
    return math.nan if x is None else float(x)
