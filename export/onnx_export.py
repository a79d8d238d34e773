"""Export a `MusicTransformer` to ONNX graphs with a KV cache (see `emsync_bridge.export` for
their inputs and outputs), and check them against torch.

We use the legacy TorchScript exporter (`dynamo=False`, opset 17): it exports in seconds, and its
output is one self-contained .onnx file per graph (no external-data sidecar). (dynamo takes
10-15 s and, on torch 2.13, fails on the model's `clamp(0, 8.0)` of a tensor.)

What gets traced is `_Graph`, the model's forward restated on the model's own parameters rather
than `MusicTransformer.forward` itself, because that forward takes and returns the whole cache as
one stacked tensor: about five copies of the cache per generated token (split per layer, index
k/v, concat, stack k/v, stack layers), ~250 MB of memory traffic per token for the 37 M model at
a full window, far more than its matrix products. Here the step reads the cache in place and
returns only the new keys/values; relative-position indices and masks are computed once for all
layers; in a prefill the last layer computes its output for the last position only.
`check_parity` compares the graphs with `MusicTransformer.forward`, so a drift between the two
fails the export loudly.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emsync_bridge.errors import EmsyncError
from emsync_bridge.export import (EXPORTER_VERSION, PARITY_TOLERANCE, PREFILL_INPUTS, STEP_INPUTS,
                                  kv_names)
from emsync_bridge.music.model import MusicTransformer
from emsync_bridge.music.model_config import MAX_SECONDS_TO_CHORD, N_PREFIX

log = logging.getLogger(__name__)

OPSET = 17


@dataclass
class ExportResult:
    prefill: Path
    step: Path
    append: Path
    max_abs_diff: float  # ONNX Runtime vs torch logits over the parity check; nan if not checked
    seconds: float  # export + check wall time
    opset: int = OPSET
    exporter_version: int = EXPORTER_VERSION


class _Graph(nn.Module):
    """Prefill (`prefill=True`: tokens, boundary, valence, arousal) or step (tokens, boundary,
    past_len, caches...) over the model's parameters; see the module docstring for why."""

    def __init__(self, model: MusicTransformer, prefill: bool):
        super().__init__()
        self.model = model
        self.prefill = prefill

    def forward(self, tokens, boundary, *rest):
        m, cfg = self.model, self.model.cfg
        H, dh, L = cfg.n_head, cfg.d_head, cfg.context_len
        x = m.embedding(tokens) * math.sqrt(cfg.d_model)
        b = boundary.float()
        if self.prefill:
            valence, arousal = rest
            x = torch.cat([m.conditions(valence, arousal), x], dim=1)
            b = torch.cat([b[:, :1].expand(-1, N_PREFIX), b], dim=1)
        T = x.shape[1]
        new = torch.arange(T)
        if self.prefill:
            positions = new
        else:
            past_len, caches = rest[0], rest[1:]
            C = caches[0].shape[2]
            positions = past_len + new  # absolute positions of the new tokens
        pos = m.positional_encoding[0].index_select(0, positions).unsqueeze(0)
        offset = m.ff_times_to_chord((MAX_SECONDS_TO_CHORD - b.clamp(0, MAX_SECONDS_TO_CHORD)).unsqueeze(-1))
        x = x + torch.cat([pos, offset], dim=-1)
        # Relative attention: score(i, j) uses E[L-1-d], d = pos_i - pos_j >= 0 (model.py). Indices
        # into q @ E^T and masks are shared by all layers, so computed once here.
        d_new = new.unsqueeze(1) - new.unsqueeze(0)  # [T, T] among the new tokens
        bias = torch.zeros(T, T).masked_fill(d_new < 0, float("-inf"))
        if self.prefill:
            # Distances are 0..T-1: only E's last T rows are needed; column c is distance T-1-c.
            idx_new = (T - 1 - d_new).clamp(0, T - 1).expand(1, H, T, T)
        else:
            idx_new = (L - 1 - d_new).clamp(0, L - 1).expand(1, H, T, T)
            slots = torch.arange(C).unsqueeze(0)
            d_old = positions.unsqueeze(1) - slots  # [T, C]
            idx_old = (L - 1 - d_old).clamp(0, L - 1).expand(1, H, T, C)
            bias_old = torch.zeros(T, C).masked_fill(slots >= past_len, float("-inf"))
            bias = torch.cat([bias_old, bias], dim=1)  # [T, C + T]
        scale = 1.0 / math.sqrt(dh)
        outputs = []
        for i, layer in enumerate(m.enc_layers):
            att = layer.rga
            k = att.Wk(x).view(1, T, H, dh).transpose(1, 2)
            v = att.Wv(x).view(1, T, H, dh).transpose(1, 2)
            outputs += [k, v]
            if self.prefill and i == cfg.n_layer - 1:
                # The last layer's keys/values come from its input; of its output only the last
                # position is used, so queries, projection and FFN run for that one (a re-prime
                # of hundreds of tokens is a quarter of a trained model's generation time).
                x, idx, mask = x[:, -1:], idx_new[:, :, -1:], bias[-1:]
            else:
                idx, mask = idx_new, bias
            Tq = x.shape[1]
            q = att.Wq(x).view(1, Tq, H, dh).transpose(1, 2)
            E = att.E[L - T:] if self.prefill else att.E
            qe = q @ E.transpose(0, 1)  # [1, H, Tq, rows]: q . E[r] for each distance row r
            scores = q @ k.transpose(-2, -1) + torch.gather(qe, 3, idx)
            if not self.prefill:
                ck, cv = caches[2 * i], caches[2 * i + 1]
                scores = torch.cat([q @ ck.transpose(-2, -1) + torch.gather(qe, 3, idx_old), scores], dim=-1)
            w = F.softmax(scores * scale + mask, dim=-1)
            if self.prefill:
                y = w @ v
            else:
                y = w[..., :C] @ cv + w[..., C:] @ v
            x = layer.layernorm1(x + att.fc(y.transpose(1, 2).reshape(1, Tq, cfg.d_model)))
            x = layer.layernorm2(x + layer.FFN_suf(F.relu(layer.FFN_pre(x))))
        return (m.fc(x[:, -1]), *outputs)


def _example(cfg, T: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.vocab_size, (1, T), generator=g)
    boundary = torch.rand(1, T, generator=g) * 9.0  # beyond 8 too: the model clamps
    return tokens, boundary


def _append_graph(n_layer: int, path: Path) -> None:
    """out_* = concat(cache_*, new_*) along positions, built directly (nothing to trace)."""
    import onnx
    from onnx import TensorProto, helper

    caches, news, outs = kv_names(n_layer, "cache"), kv_names(n_layer, "new"), kv_names(n_layer, "out")
    shape = lambda n: [1, "H", n, "dh"]  # noqa: E731
    graph = helper.make_graph(
        [helper.make_node("Concat", [c, n], [o], axis=2) for c, n, o in zip(caches, news, outs)],
        "append",
        [helper.make_tensor_value_info(c, TensorProto.FLOAT, shape("C")) for c in caches]
        + [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape("T")) for n in news],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape("S")) for o in outs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_onnx(model: MusicTransformer, out_dir: str | Path, check: bool = True) -> ExportResult:
    """Write `prefill.onnx`, `step.onnx` and `append.onnx` into `out_dir`; with `check`, run them
    in ONNX Runtime against torch's full pass; `EmsyncError` if logits differ by more than 1e-3."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    cfg = model.cfg
    # Example sizes unlike each other and unlike 1, so the tracer cannot mistake a dynamic length
    # for a constant.
    T_pre, T_step, P_step, C_step = 5, 3, 7, 11
    va = torch.tensor([0.25]), torch.tensor([float("nan")])
    presents, caches, news = (kv_names(cfg.n_layer, kind) for kind in ("present", "cache", "new"))
    prefill_path, step_path, append_path = (out_dir / f"{g}.onnx" for g in ("prefill", "step", "append"))
    with torch.no_grad(), warnings.catch_warnings():
        # The legacy exporter's deprecation notice and tracer warnings are expected noise here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Graph(model, prefill=True).eval(), (*_example(cfg, T_pre), *va), str(prefill_path),
            dynamo=False, opset_version=OPSET, input_names=list(PREFILL_INPUTS),
            output_names=["logits", *presents],
            dynamic_axes={"tokens": {1: "T"}, "boundary": {1: "T"}, **{n: {2: "S"} for n in presents}},
        )
        cache = torch.randn(cfg.n_layer * 2, 1, cfg.n_head, C_step, cfg.d_head)
        torch.onnx.export(
            _Graph(model, prefill=False).eval(),
            (*_example(cfg, T_step, seed=2), torch.tensor([P_step]), *cache.unbind(0)), str(step_path),
            dynamo=False, opset_version=OPSET, input_names=[*STEP_INPUTS, *caches], output_names=["logits", *news],
            dynamic_axes={"tokens": {1: "T"}, "boundary": {1: "T"}, **{n: {2: "C"} for n in caches},
                          **{n: {2: "T"} for n in news}},
        )
    _append_graph(cfg.n_layer, append_path)
    model.eval()  # the exporter restores the wrappers' training flag; keep dropout off for sure
    diff = check_parity(model, out_dir) if check else math.nan
    result = ExportResult(prefill_path, step_path, append_path, diff, time.perf_counter() - t0)
    log.info("exported to ONNX in %.1f s (max |logits diff| vs torch %.2e)", result.seconds, diff)
    return result


def check_parity(model: MusicTransformer, out_dir: Path, n_steps: int = 6) -> float:
    """Max |logits| difference between ONNX Runtime and torch's full pass over the same sequence:
    prefill, single steps and a 3-token chunk; with NaN and numeric valence/arousal; through both
    cache paths (CPU: a capacity buffer with junk beyond past_len; CUDA: exact caches + append)."""
    from emsync_bridge.onnxrt import import_onnxruntime

    ort = import_onnxruntime("the export parity check needs onnxruntime: pip install emsync-bridge[cpu] (or [gpu])")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    pre, stp, app = (ort.InferenceSession(str(Path(out_dir) / f"{g}.onnx"), opts, providers=["CPUExecutionProvider"])
                     for g in ("prefill", "step", "append"))
    cfg = model.cfg
    caches, news = kv_names(cfg.n_layer, "cache"), kv_names(cfg.n_layer, "new")
    rng = np.random.default_rng(0)
    worst = 0.0
    with torch.no_grad():
        cases = [(math.nan, 0.3, min(37, cfg.context_len - N_PREFIX - n_steps - 3), True),
                 (-0.5, math.nan, 1, False)]
        for case, (v, a, T0, buffered) in enumerate(cases):
            tokens, bnd = _example(cfg, T0 + n_steps + 3, seed=10 + case)
            vv, aa = torch.tensor([v]), torch.tensor([a])
            logits, *kv = pre.run(None, {"tokens": tokens[:, :T0].numpy(), "boundary": bnd[:, :T0].numpy(),
                                         "valence": vv.numpy(), "arousal": aa.numpy()})
            P = T0 + N_PREFIX
            if buffered:  # capacity buffers whose unused slots hold junk the graph must ignore
                buf = [rng.standard_normal((1, cfg.n_head, cfg.context_len, cfg.d_head)).astype(np.float32) * 100
                       for _ in kv]
                for bf, c in zip(buf, kv):
                    bf[:, :, :P] = c
                kv = buf
            n = T0
            for width in [1] * n_steps + [3]:
                ref, _ = model(tokens[:, :n], bnd[:, :n], vv, aa, last_only=True)
                worst = max(worst, float(np.max(np.abs(ref[0, -1].numpy() - logits[0]))))
                logits, *new = stp.run(None, {"tokens": tokens[:, n:n + width].numpy(),
                                              "boundary": bnd[:, n:n + width].numpy(),
                                              "past_len": np.array([P], dtype=np.int64), **dict(zip(caches, kv))})
                if buffered:
                    for bf, nw in zip(kv, new):
                        bf[:, :, P:P + width] = nw
                else:
                    kv = app.run(None, {**dict(zip(caches, kv)), **dict(zip(news, new))})
                n += width
                P += width
            ref, _ = model(tokens[:, :n], bnd[:, :n], vv, aa, last_only=True)
            worst = max(worst, float(np.max(np.abs(ref[0, -1].numpy() - logits[0]))))
            expected = (1, cfg.n_head, cfg.context_len if buffered else P, cfg.d_head)
            if len(kv) != 2 * cfg.n_layer or any(tuple(c.shape) != expected for c in kv):
                raise EmsyncError(f"ONNX export produced caches of shape {tuple(kv[0].shape)}, expected "
                                  f"{2 * cfg.n_layer} x {expected}")
    if not worst <= PARITY_TOLERANCE:  # also catches NaN
        raise EmsyncError(f"ONNX export does not match torch: max |logits diff| {worst:.3g} > {PARITY_TOLERANCE}")
    return worst
