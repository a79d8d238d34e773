"""The ONNX Runtime engine: runs the exported prefill/step graphs (see `emsync_bridge.export`)
with the KV cache kept between calls. Imports onnxruntime and numpy only, never torch.

Providers: [CUDAExecutionProvider, CPUExecutionProvider] by default; the active one is
`session.get_providers()[0]` after creation (onnxruntime-gpu lists CUDA even without a GPU) and
is logged in one line. On CUDA the cache never leaves the GPU (IO binding; the append graph grows
it); only tokens go in and logits [vocab] come back to the host.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from pathlib import Path

import numpy as np

from emsync_bridge.errors import EmsyncError
from emsync_bridge.onnxrt import import_onnxruntime
from emsync_bridge.export import kv_names
from emsync_bridge.music.model_config import N_PREFIX, ModelConfig

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def default_threads() -> int:
    """Intra-op threads of the prefill: all cores up to 4 (beyond that, synchronisation outweighs
    the gain for these model sizes). EMSYNC_ORT_THREADS overrides it, and the step's 1."""
    env = os.environ.get("EMSYNC_ORT_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise EmsyncError(f"EMSYNC_ORT_THREADS must be an integer, got {env!r}") from None
    return max(1, min(os.cpu_count() or 1, 4))


class OnnxEngine:
    """Engine over the exported graphs (see `emsync_bridge.export` for their inputs/outputs).

    CPU: the cache lives in preallocated numpy buffers of capacity `context_len` per layer; a step
    reads them in place and we write its new keys/values at `cached_len` (no per-token copy of the
    cache). CUDA: the cache stays in device memory as OrtValues (IO binding) and grows by the
    `append` graph; only tokens in and logits out cross to the host."""

    name = "onnxruntime"

    def __init__(self, prefill_path: str | Path, step_path: str | Path, config: ModelConfig,
                 providers: list[str] | None = None, threads: int | None = None,
                 append_path: str | Path | None = None, io_binding: bool | None = None):
        """`io_binding`: keep the cache as OrtValues on the provider's device (default: on CUDA
        only; True on CPU runs the CUDA code path on the CPU, for tests)."""
        ort = import_onnxruntime()
        self.cfg = config
        self.context_len = config.context_len
        requested = list(providers) if providers is not None else [CUDA, CPU]
        available = ort.get_available_providers()
        # Ask only for what this build has: the CPU wheel would otherwise print a UserWarning for
        # CUDA, and the GPU wheel lists CUDA even without a GPU (we detect that after creation).
        usable = [p for p in requested if p in available] or [CPU]
        threads = threads or default_threads()
        # onnxruntime-gpu on a machine without CUDA logs raw "Failed to load library ..." errors
        # while falling back; we say it once, in our own words, below.
        quiet = 4 if CUDA in usable else 3
        ort.set_default_logger_severity(quiet)
        try:
            self._prefill = ort.InferenceSession(str(prefill_path), self._options(ort, threads, quiet), providers=usable)
            # A one-token step is a chain of small ops: extra threads mostly add synchronisation,
            # and on a busy 2-core machine their spinning fights the other processes. The prefill
            # (hundreds of positions) does use all threads.
            step_threads = threads if os.environ.get("EMSYNC_ORT_THREADS") else 1
            self._step = ort.InferenceSession(str(step_path), self._options(ort, step_threads, quiet), providers=usable)
        finally:
            ort.set_default_logger_severity(3)
        self.provider = self._step.get_providers()[0]
        if CUDA in requested and self.provider != CUDA:
            why = ("this onnxruntime build has no CUDA; install emsync-bridge[gpu] instead of [cpu] for it"
                   if CUDA not in available else "CUDA/cuDNN libraries or a GPU are missing")
            log.info("onnxruntime: CUDA not available (%s); running on %s", why, self.provider)
        else:
            log.info("onnxruntime: running on %s", self.provider)
        self._bound = self.provider == CUDA if io_binding is None else io_binding
        self._device = "cuda" if self.provider == CUDA else "cpu"
        n = config.n_layer
        self._cache_names = kv_names(n, "cache")
        self._new_names = kv_names(n, "new")
        self._present_names = kv_names(n, "present")
        self._out_names = kv_names(n, "out")
        self._len = 0
        if self._bound:
            if append_path is None:
                raise ValueError("the IO-binding (CUDA) engine needs the append graph")
            self._append = ort.InferenceSession(str(append_path), self._options(ort, 1, quiet), providers=usable)
            self._cache = None  # list of OrtValues [1, H, cached_len, d_head] in device memory
        else:
            shape = (1, config.n_head, config.context_len, config.d_head)
            self._cache = [np.zeros(shape, dtype=np.float32) for _ in range(2 * n)]
            self._bind_step()

    def _bind_step(self) -> None:
        """CPU step: bind every input and output once to fixed numpy buffers (the cache buffers
        themselves included) so a step is one `run_with_iobinding`, with no per-call feed dict,
        validation or output allocation: ~25% off a small model's step."""
        cfg = self.cfg
        self._tok = np.zeros((1, 1), dtype=np.int64)
        self._b = np.zeros((1, 1), dtype=np.float32)
        self._past_len = np.zeros(1, dtype=np.int64)
        self._logits = np.zeros((1, cfg.vocab_size), dtype=np.float32)
        self._new = [np.zeros((1, cfg.n_head, 1, cfg.d_head), dtype=np.float32) for _ in self._cache]
        binding = self._step.io_binding()
        inputs = [("tokens", self._tok), ("boundary", self._b), ("past_len", self._past_len),
                  *zip(self._cache_names, self._cache)]
        for name, arr in inputs:
            binding.bind_input(name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
        for name, arr in [("logits", self._logits), *zip(self._new_names, self._new)]:
            binding.bind_output(name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
        self._step_binding = binding  # holds raw pointers: the arrays above live as long as self

    def twin(self) -> "OnnxEngine":
        """The same sessions (stateless, run one after the other) with a cache of its own."""
        other = copy.copy(self)
        other._len = 0
        if self._bound:
            other._cache = None
        else:
            other._cache = [np.zeros_like(c) for c in self._cache]
            other._bind_step()
        return other

    @staticmethod
    def _options(ort, threads: int, severity: int):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = severity
        # Worker threads that spin-wait for the next parallel section burn a core the sampler, the
        # daemon and the rest of the machine need: measured on 2 cores, spinning took 60% more
        # CPU for the same 60 s of music, and more wall time, not less.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    @property
    def cached_len(self) -> int:
        return self._len

    def prefill(self, tokens, boundary, valence, arousal) -> np.ndarray:
        tokens = np.asarray(tokens, dtype=np.int64).reshape(1, -1)
        S = tokens.shape[1] + N_PREFIX
        if S > self.context_len:
            raise ValueError(f"prefill of {tokens.shape[1]} tokens exceeds the context {self.context_len}")
        feeds = {
            "tokens": tokens,
            "boundary": np.asarray(boundary, dtype=np.float32).reshape(1, -1),
            # NaN selects the learned null vector inside the graph (missing valence/arousal).
            "valence": np.array([_nan_if_none(valence)], dtype=np.float32),
            "arousal": np.array([_nan_if_none(arousal)], dtype=np.float32),
        }
        if self._bound:
            logits, *self._cache = self._run_bound(self._prefill, feeds, self._present_names)
        else:
            logits, *present = self._prefill.run(None, feeds)
            for buf, p in zip(self._cache, present):
                buf[:, :, :S] = p
        self._len = S
        return logits[0]

    def step(self, token, b) -> np.ndarray:
        P = self._len
        if P == 0:
            raise RuntimeError("step() before prefill()")
        if P >= self.context_len:
            raise ValueError(f"the cache is full ({self.context_len} positions): prefill a shorter window")
        if self._bound:
            feeds = {"tokens": np.array([[int(token)]], dtype=np.int64),
                     "boundary": np.array([[float(b)]], dtype=np.float32),
                     "past_len": np.array([P], dtype=np.int64), **dict(zip(self._cache_names, self._cache))}
            logits, *new = self._run_bound(self._step, feeds, self._new_names)
            _, *self._cache = self._run_bound(
                self._append, {**dict(zip(self._cache_names, self._cache)), **dict(zip(self._new_names, new))},
                self._out_names, logits=False)
            self._len = P + 1
            return logits[0]
        self._tok[0, 0] = int(token)
        self._b[0, 0] = float(b)
        self._past_len[0] = P
        self._step.run_with_iobinding(self._step_binding)
        for buf, nw in zip(self._cache, self._new):
            buf[:, :, P:P + 1] = nw
        self._len = P + 1
        return self._logits[0].copy()  # the buffer is overwritten by the next step

    def _run_bound(self, sess, feeds, device_outputs, logits: bool = True):
        """Run with IO binding: numpy inputs are copied in, OrtValues stay where they are; the
        cache outputs stay in device memory, the logits come back as numpy."""
        binding = sess.io_binding()
        for name, value in feeds.items():
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, value)
            else:
                binding.bind_ortvalue_input(name, value)
        if logits:
            binding.bind_output("logits")  # host memory: the sampler runs in numpy
        for name in device_outputs:
            binding.bind_output(name, self._device)
        sess.run_with_iobinding(binding)
        outs = binding.get_outputs()
        return [outs[0].numpy(), *outs[1:]] if logits else [None, *outs]


def _nan_if_none(x) -> float:
    return math.nan if x is None else float(x)
