"""The EMSYNC music transformer, in one file.

Decoder-only, post-LayerNorm layers with Music-Transformer relative attention (one learned
table E per layer, shared by all heads), a learned absolute positional table, valence and arousal
as two prefix "continuous tokens" (MLP 1 -> 256 -> d, a learned null vector when a value is
missing), and the boundary offset b (seconds to the next target chord, in [0, 8]) entering every
position as MLP(8 - b) concatenated with the positional embedding:

    x = [c_V, c_A, sqrt(d) * Emb(tokens)] + [PE ; MLP_b(8 - b)]

Parameter names and shapes follow the official EMSYNC state_dict, so `emsync-37m` loads the
official `midi_model.pt`. A KV cache is built in: `forward(..., past=...)` returns the present
keys/values stacked as one tensor [n_layer, 2, B, n_head, S, d_head].
"""

from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import nn

from emsync_bridge.music.model_config import CONFIGS, ModelConfig  # noqa: F401 (re-exported)

from emsync_bridge.music.model_config import MAX_SECONDS_TO_CHORD, N_PREFIX  # noqa: F401


class RelativeAttention(nn.Module):
    """Relative global attention (Huang et al. 2018) that also works with cached past keys.

    Score(i, j) = (q_i . k_j + q_i . E[L-1-(pos_i - pos_j)]) / sqrt(d_head) for j <= i.
    Instead of the paper's skew we gather the needed diagonal directly: the same numbers, valid
    for any number of cached positions."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head, self.d_head = cfg.n_head, cfg.d_head
        self.E = nn.Parameter(torch.randn(cfg.context_len, cfg.d_head) * 0.02)
        self.Wq = nn.Linear(cfg.d_model, cfg.d_model)
        self.Wk = nn.Linear(cfg.d_model, cfg.d_model)
        self.Wv = nn.Linear(cfg.d_model, cfg.d_model)
        self.fc = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor, past_kv: torch.Tensor | None):
        B, T, _ = x.shape
        q = self.Wq(x).view(B, T, self.n_head, self.d_head).transpose(1, 2)
        k = self.Wk(x).view(B, T, self.n_head, self.d_head).transpose(1, 2)
        v = self.Wv(x).view(B, T, self.n_head, self.d_head).transpose(1, 2)
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        S = k.shape[2]
        P = S - T
        # Query i sits at absolute position P + i; key j at j. Distance d = P + i - j >= 0.
        qi = torch.arange(T, device=x.device).unsqueeze(1) + P
        kj = torch.arange(S, device=x.device).unsqueeze(0)
        dist = qi - kj  # [T, S]
        E = self.E[self.E.shape[0] - S:]  # rows for distances S-1 .. 0
        rel = q @ E.transpose(0, 1)  # [B, H, T, S]; column c means distance S-1-c
        idx = (S - 1 - dist).clamp(0, S - 1)
        rel = torch.gather(rel, 3, idx.expand(B, self.n_head, T, S))
        att = (q @ k.transpose(-2, -1) + rel) / math.sqrt(self.d_head)
        att = att.masked_fill(dist < 0, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        y = y.transpose(1, 2).reshape(B, T, -1)
        return self.fc(y), torch.stack([k, v])


class EncoderLayer(nn.Module):
    """Post-LN layer as in midi-emotion/EMSYNC: LN(x + attn(x)), then LN(x + FFN(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.rga = RelativeAttention(cfg)
        self.FFN_pre = nn.Linear(cfg.d_model, cfg.d_inner)
        self.FFN_suf = nn.Linear(cfg.d_inner, cfg.d_model)
        self.layernorm1 = nn.LayerNorm(cfg.d_model, eps=1e-6)
        self.layernorm2 = nn.LayerNorm(cfg.d_model, eps=1e-6)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)

    def forward(self, x, past_kv=None):
        a, present = self.rga(x, past_kv)
        x = self.layernorm1(x + self.dropout1(a))
        f = self.FFN_suf(F.relu(self.FFN_pre(x)))
        return self.layernorm2(x + self.dropout2(f)), present


class MusicTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.positional_encoding = nn.Parameter(torch.randn(1, cfg.context_len, d // 2) * 0.02)
        self.embedding = nn.Embedding(cfg.vocab_size, d, padding_idx=0)
        self.fc_conditions = nn.ModuleList(
            nn.Sequential(nn.Linear(1, cfg.cond_hidden), nn.ReLU(), nn.Linear(cfg.cond_hidden, d),
                          nn.Dropout(cfg.dropout))
            for _ in range(N_PREFIX)
        )
        self.null_conditions = nn.ParameterList(
            nn.Parameter(torch.randn(1, d) * 0.02) for _ in range(N_PREFIX))
        self.ff_times_to_chord = nn.Sequential(
            nn.Linear(1, cfg.boundary_hidden), nn.ReLU(), nn.Linear(cfg.boundary_hidden, d - d // 2))
        self.enc_layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layer))
        self.fc = nn.Linear(d, cfg.vocab_size)
        self.dropout = nn.Dropout(cfg.dropout)

    def conditions(self, valence: torch.Tensor, arousal: torch.Tensor) -> torch.Tensor:
        """[B] valence and arousal (NaN = missing) -> the two prefix vectors [B, 2, d]."""
        out = []
        for i, value in enumerate((valence, arousal)):
            value = value.reshape(-1, 1).float()
            missing = torch.isnan(value)
            emb = self.fc_conditions[i](torch.nan_to_num(value))
            out.append(torch.where(missing, self.null_conditions[i].expand_as(emb), emb))
        return torch.stack(out, dim=1)

    def forward(self, tokens: torch.Tensor, boundary: torch.Tensor,
                valence: torch.Tensor | None = None, arousal: torch.Tensor | None = None,
                past: torch.Tensor | None = None, last_only: bool = False):
        """tokens [B, T] and boundary offsets b [B, T] (seconds to the next target, 0..8).

        Without `past` this is a prefill: valence and arousal [B] are prepended as the two
        prefix slots (their b copies the first token's b, as EMSYNC "same"-pads it).
        With `past` [n_layer, 2, B, H, P, d_head] the tokens continue that sequence.
        Returns (logits [B, T, vocab] or [B, 1, vocab] with last_only, present)."""
        x = self.embedding(tokens) * math.sqrt(self.cfg.d_model)
        b = boundary.float()
        if past is None:
            x = torch.cat([self.conditions(valence, arousal), x], dim=1)
            b = torch.cat([b[:, :1].expand(-1, N_PREFIX), b], dim=1)
            P = 0
        else:
            P = past.shape[4]
        S = x.shape[1]
        pos = self.positional_encoding[:, P:P + S].expand(x.shape[0], -1, -1)
        offset = self.ff_times_to_chord((MAX_SECONDS_TO_CHORD - b.clamp(0, MAX_SECONDS_TO_CHORD)).unsqueeze(-1))
        x = self.dropout(x + torch.cat([pos, offset], dim=-1))
        presents = []
        for i, layer in enumerate(self.enc_layers):
            x, present = layer(x, None if past is None else past[i])
            presents.append(present)
        if past is None:
            x = x[:, N_PREFIX:]
        if last_only:
            x = x[:, -1:]
        return self.fc(x), torch.stack(presents)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_model(config: str | ModelConfig) -> MusicTransformer:
    cfg = CONFIGS[config] if isinstance(config, str) else config
    return MusicTransformer(cfg)
