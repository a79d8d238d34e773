"""Train the music transformer on the token cache (CPU, or CUDA when present).

    python -m emsync_bridge.music.train --data data_cache --run runs/small [--minutes 90]

What each training window teaches (EMSYNC's recipe, see the model card):
- the sequence is [V, A, <MORE|LESS_INSTRUMENTS>, tokens...], windows start on a BAR half the time;
- b_k = seconds from the time cursor after token k to the next CHORD token, clamped to [0, 8]
  (8 when none follows); with p = 0.2 the whole window gets b = 8 (boundary info removed);
- valence is the rendition's label; arousal is measured on the window itself (log note-onset
  rate, mapped to [-1, 1] by the training set's 5th/95th percentiles) and removed with p = 0.2;
- cross-entropy ignoring PAD, CHORD targets weighted x10.
Checkpoints every few minutes to RUN/ckpt.pt; a rerun resumes from it. Logs to RUN/train.log.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from emsync_bridge.errors import EmsyncError, OneLineParser, run_main
from emsync_bridge.music import train_options, vocab
from emsync_bridge.music.data import describe_cache
from emsync_bridge.music.model import MusicTransformer
from emsync_bridge.music.model_config import CONFIGS, MAX_SECONDS_TO_CHORD, N_PREFIX, ModelConfig

log = logging.getLogger("emsync.train")

CHORD_LOSS_WEIGHT = 10.0
REMOVE_BOUNDARY_P = 0.2
REMOVE_AROUSAL_P = 0.2
REMOVE_VALENCE_P = 0.15  # trains the valence null vector: callers who give none, and valence guidance
BAR_START_P = 0.5


@dataclass
class Corpus:
    """The cache as flat arrays plus per-rendition spans; derived arrays computed once."""

    tokens: np.ndarray  # uint16, all renditions back to back
    spans: list[tuple[int, int, float]]  # (offset, length, valence) per rendition
    tick: np.ndarray  # int64, time cursor in ticks after each token (per rendition)
    next_chord_tick: np.ndarray  # int64, tick of the next CHORD after each token, or huge
    is_on: np.ndarray  # bool, note-on tokens
    instrument: np.ndarray  # int8, instrument of note tokens, -1 otherwise

    @classmethod
    def load(cls, data_dir: Path, split: str) -> "Corpus":
        tokens = np.load(data_dir / "tokens.npy", mmap_mode="r")
        index = json.loads((data_dir / "index.json").read_text())
        entries = [e for e in index["renditions"] if e["split"] == split]
        parts, spans, off = [], [], 0
        for e in entries:
            seg = np.asarray(tokens[e["offset"]:e["offset"] + e["length"]])
            parts.append(seg)
            spans.append((off, len(seg), float(e["valence"])))
            off += len(seg)
        toks = np.concatenate(parts).astype(np.int64)
        shift = np.where((toks >= vocab.TIMESHIFT_BASE) & (toks < vocab.NOTE_BASE),
                         toks - vocab.TIMESHIFT_BASE + 1, 0)
        tick = np.zeros(len(toks), dtype=np.int64)
        next_chord = np.full(len(toks), 1 << 40, dtype=np.int64)
        for start, length, _ in spans:
            sl = slice(start, start + length)
            t = np.cumsum(shift[sl])
            tick[sl] = t
            # tick of the first CHORD at an index > i: reverse running minimum, shifted by one
            chord_t = np.where(toks[sl] == vocab.CHORD, t, 1 << 40)
            rev_min = np.minimum.accumulate(chord_t[::-1])[::-1]
            nxt = np.full(length, 1 << 40, dtype=np.int64)
            nxt[:-1] = rev_min[1:]
            next_chord[sl] = nxt
        is_note = (toks >= vocab.NOTE_BASE) & (toks < vocab.LESS_INSTRUMENTS)
        block = (toks - vocab.NOTE_BASE) // vocab.N_PITCHES
        instrument = np.where(is_note, block // 2, -1).astype(np.int8)
        is_on = is_note & (block % 2 == 1)
        return cls(toks.astype(np.uint16), spans, tick, next_chord, is_on, instrument)

    def n_tokens(self) -> int:
        return len(self.tokens)


class WindowSampler:
    def __init__(self, corpus: Corpus, n_tokens: int, rng: np.random.Generator,
                 arousal_scale: tuple[float, float] | None = None):
        self.c, self.n, self.rng = corpus, n_tokens, rng
        lengths = np.array([s[1] for s in corpus.spans], dtype=float)
        self.p = lengths / lengths.sum()
        bars = np.flatnonzero(corpus.tokens == vocab.BAR)
        self.bars = bars
        self.arousal_scale = arousal_scale or self._fit_arousal_scale()

    def _window_density(self, start: int, end: int) -> float:
        c = self.c
        ticks = max(int(c.tick[end - 1] - (c.tick[start - 1] if start > 0 else 0)), 1)
        seconds = ticks * vocab.TICK_S
        return math.log(1.0 + c.is_on[start:end].sum() / max(seconds, 1.0))

    def _fit_arousal_scale(self) -> tuple[float, float]:
        dens = [self._window_density(*self._pick()[:2]) for _ in range(2000)]
        lo, hi = np.percentile(dens, [5, 95])
        return float(lo), float(hi)

    def arousal_of_density(self, log_density: float) -> float:
        lo, hi = self.arousal_scale
        return float(np.clip(2 * (log_density - lo) / max(hi - lo, 1e-6) - 1, -1, 1))

    def _pick(self):
        r = self.rng.choice(len(self.c.spans), p=self.p)
        off, length, valence = self.c.spans[r]
        n = min(self.n, length)
        start = off + int(self.rng.integers(0, length - n + 1))
        if self.rng.random() < BAR_START_P:
            # snap to the first BAR at or after the random start, when one fits
            i = np.searchsorted(self.bars, start)
            if i < len(self.bars) and self.bars[i] + n <= off + length:
                start = int(self.bars[i])
        return start, start + n, valence

    def batch(self, batch_size: int):
        c = self.c
        L = self.n + 1  # instrument token + n tokens, predicting the next of each
        tokens = np.zeros((batch_size, L), dtype=np.int64)
        bvals = np.full((batch_size, L), MAX_SECONDS_TO_CHORD, dtype=np.float32)
        valence = np.zeros(batch_size, dtype=np.float32)
        arousal = np.zeros(batch_size, dtype=np.float32)
        for i in range(batch_size):
            start, end, v = self._pick()
            seg = c.tokens[start:end].astype(np.int64)
            n_inst = len(np.unique(c.instrument[start:end][c.instrument[start:end] >= 0]))
            tokens[i, 0] = vocab.MORE_INSTRUMENTS if n_inst >= 3 else vocab.LESS_INSTRUMENTS
            tokens[i, 1:1 + len(seg)] = seg
            if self.rng.random() >= REMOVE_BOUNDARY_P:
                b = (c.next_chord_tick[start:end] - c.tick[start:end]) * vocab.TICK_S
                b = np.clip(b, 0, MAX_SECONDS_TO_CHORD).astype(np.float32)
                bvals[i, 1:1 + len(seg)] = b
                bvals[i, 0] = b[0]
            valence[i] = np.nan if self.rng.random() < REMOVE_VALENCE_P else v
            arousal[i] = (np.nan if self.rng.random() < REMOVE_AROUSAL_P
                          else self.arousal_of_density(self._window_density(start, end)))
        x = torch.from_numpy(tokens[:, :-1])
        y = torch.from_numpy(tokens[:, 1:])
        b = torch.from_numpy(bvals[:, :-1])
        return x, y, b, torch.from_numpy(valence), torch.from_numpy(arousal)


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    t = targets.reshape(-1)
    w = (t != vocab.PAD).float() * torch.where(t == vocab.CHORD, CHORD_LOSS_WEIGHT, 1.0)
    return (ce * w).sum() / w.sum().clamp_min(1.0)


def unigram_loss(train: Corpus, val: Corpus) -> float:
    """Cross-entropy of the validation tokens under the training unigram (the baseline)."""
    counts = np.bincount(train.tokens, minlength=vocab.VOCAB_SIZE).astype(float) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[val.tokens].mean())


@torch.no_grad()
def evaluate(model, batches: list) -> float:
    """Mean validation cross-entropy (PAD ignored, no CHORD weighting) over fixed batches."""
    model.eval()
    device = _device(model)
    total = 0.0
    for x, y, b, v, a in batches:
        logits, _ = model(x.to(device), b.to(device), v.to(device), a.to(device))
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1),
                                       ignore_index=vocab.PAD))
    model.train()
    return total / len(batches)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def train(data_dir: Path, run_dir: Path, config: ModelConfig, minutes: float, batch_size: int,
          lr: float, seed: int, checkpoint_minutes: float = 5.0, threads: int | None = None,
          init: str | None = None) -> dict:
    """Train for `minutes` (wall clock), resuming from `run_dir/ckpt.pt` when there is one; a new
    run starts from random weights, or from model `init` (a name or .safetensors path) to
    fine-tune a shipped model on new data (its config wins over `config`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(run_dir / "train.log")
    fh.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(fh)
    log.setLevel(logging.INFO)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # tensor cores for float32 matmuls
        torch.backends.cudnn.allow_tf32 = True
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    train_c, val_c = Corpus.load(data_dir, "train"), Corpus.load(data_dir, "val")
    n = config.context_len - N_PREFIX - 1
    train_s = WindowSampler(train_c, n, np.random.default_rng(seed))
    val_s = WindowSampler(val_c, n, np.random.default_rng(seed + 1), train_s.arousal_scale)
    val_batches = [val_s.batch(batch_size) for _ in range(8)]
    if init is not None and not (run_dir / "ckpt.pt").exists():
        from emsync_bridge.models import load_torch_model

        model, files = load_torch_model(init)
        config = model.cfg
        started_from = init_record(files)
        log.info("starting from %s (%s)", files.weights, started_from)
    else:
        model = MusicTransformer(config)
        started_from = None
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    step, elapsed, best = 0, 0.0, float("inf")
    ckpt = run_dir / "ckpt.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed, best = state["step"], state["elapsed"], state["best"]
        started_from = state.get("init")
        train_s.rng = np.random.default_rng(seed + step)
        log.info("resumed at step %d (%.1f min)", step, elapsed / 60)
    baseline = unigram_loss(train_c, val_c)
    data_note = describe_cache(data_dir)  # read once; every checkpoint records it
    log.info("params %d, train tokens %d, val tokens %d, unigram val loss %.3f, device %s",
             model.num_parameters(), train_c.n_tokens(), val_c.n_tokens(), baseline, device)
    budget = minutes * 60
    warmup = 300
    last_ckpt = time.time()
    bar = tqdm(total=int(budget), initial=int(elapsed), unit="s", desc="train")
    t0 = time.time() - elapsed
    tokens_seen = 0
    tstart = time.time()
    model.train()
    while elapsed < budget:
        x, y, b, v, a = (t.to(device) for t in train_s.batch(batch_size))
        # linear warm-up, then cosine decay to 10 % over the time budget
        frac = min(elapsed / budget, 1.0)
        cur_lr = lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = cur_lr
        logits, _ = model(x, b, v, a)
        loss = loss_fn(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += x.numel()
        elapsed = time.time() - t0
        if step % 10 == 0 or step == 1:  # loss.item() waits for the GPU: not every step, so that
            # the next batch is sampled while the GPU still works on this one
            bar.n = int(min(elapsed, budget))
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tokens_seen / (time.time() - tstart):.0f}", step=step)
        if step % 50 == 0:
            log.info("step %d loss %.4f lr %.2e tok/s %.0f", step, loss.item(), cur_lr,
                     tokens_seen / (time.time() - tstart))
        if time.time() - last_ckpt > checkpoint_minutes * 60 or elapsed >= budget:
            val = evaluate(model, val_batches)
            log.info("step %d val loss %.4f (unigram %.4f)", step, val, baseline)
            if val < best:
                best = val
                torch.save(model.state_dict(), run_dir / "best.pt.tmp")
                os.replace(run_dir / "best.pt.tmp", run_dir / "best.pt")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "elapsed": elapsed, "best": best, "config": config.to_dict(),
                        "arousal_scale": train_s.arousal_scale, "init": started_from,
                        "data": data_note}, run_dir / "ckpt.pt.tmp")
            os.replace(run_dir / "ckpt.pt.tmp", ckpt)
            last_ckpt = time.time()
    bar.close()
    summary = {"steps": step, "best_val_loss": best, "unigram_val_loss": baseline,
               "train_tokens": train_c.n_tokens(), "val_tokens": val_c.n_tokens(),
               "tokens_seen": tokens_seen, "arousal_scale_log_notes_per_s": train_s.arousal_scale,
               "params": model.num_parameters(), "minutes": elapsed / 60, "device": device,
               "tokens_per_s_this_session": round(tokens_seen / max(time.time() - tstart, 1e-9))}
    if device == "cuda":
        summary["gpu"] = torch.cuda.get_device_name()
        summary["gpu_peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info("done: %s", summary)
    return summary


def init_record(files) -> dict:
    """What a fine-tuning run started from, for the shipped model's metadata."""
    meta = files.config.get("meta", {})
    return {"model": files.name, "steps": meta.get("steps"), "train_minutes": meta.get("train_minutes"),
            "best_val_loss": meta.get("best_val_loss"), "data": meta.get("data")}


def ship(run_dir: Path, out: Path, which: str = "best", init: str | None = None,
         data_dir: Path | None = None) -> Path:
    """Save a run's best (or latest) weights as the shipped safetensors + config JSON.
    `init`: the model the run started from, and `data_dir`: the token cache it trained on, when
    its checkpoint predates recording them."""
    from emsync_bridge.models import resolve, save_model

    if not (run_dir / "ckpt.pt").is_file() or (which == "best" and not (run_dir / "best.pt").is_file()):
        raise EmsyncError(f"no finished checkpoint in {run_dir}: train there first (`emsync-bridge train --run {run_dir}`)")
    state = torch.load(run_dir / "ckpt.pt", map_location="cpu", weights_only=False)
    config = ModelConfig.from_dict(state["config"])
    model = MusicTransformer(config)
    weights = torch.load(run_dir / "best.pt", map_location="cpu") if which == "best" else state["model"]
    model.load_state_dict(weights)
    summary_path = run_dir / "summary.json"
    meta = {"trained": True, "steps": state["step"], "train_minutes": round(state["elapsed"] / 60, 1),
            "best_val_loss": state["best"], "finished": summary_path.exists(),
            "arousal_scale_log_notes_per_s": state.get("arousal_scale"),
            "data": state.get("data") or describe_cache(data_dir)}
    started_from = state.get("init") or (init_record(resolve(init)) if init else None)
    if started_from:
        meta["fine_tuned_from"] = started_from
    return save_model(model, out, meta)


def run(args) -> int:
    """`emsync-bridge train ARGS` and `python -m emsync_bridge.music.train ARGS` (options:
    `train_options`): ship a run's weights, or train; bad input is an `EmsyncError` before any work."""
    if args.ship:
        print(ship(Path(args.run), Path(args.ship), init=args.init, data_dir=Path(args.data)))
        return 0
    if not (Path(args.data) / "tokens.npy").is_file():
        raise EmsyncError(f"no token cache in {args.data}: build it with "
                          f"`python -m emsync_bridge.music.data --pop909 DIR --out {args.data}`")
    if args.config not in CONFIGS:
        raise EmsyncError(f"unknown config {args.config!r}: {', '.join(CONFIGS)}")
    summary = train(Path(args.data), Path(args.run), CONFIGS[args.config], args.minutes, args.batch_size,
                    args.lr, args.seed, checkpoint_minutes=args.checkpoint_minutes, threads=args.threads,
                    init=args.init)
    print(json.dumps(summary, indent=2))
    return 0


def main(argv=None) -> int:
    """`python -m emsync_bridge.music.train ARGS`: the same options, run and error path as
    `emsync-bridge train ARGS`."""
    parser = OneLineParser(prog="python -m emsync_bridge.music.train", description=__doc__.splitlines()[0])
    train_options.add_arguments(parser)
    args = parser.parse_args(argv)
    return run_main(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
