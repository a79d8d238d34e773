"""The options of a training run: one parser for `emsync-bridge train` and for
`python -m emsync_bridge.music.train`. Torch-free, so the CLI lists them without loading torch;
the run itself is `emsync_bridge.music.train.run`."""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("--data", default="data_cache")
    p.add_argument("--run", default="runs/small")
    p.add_argument("--config", default="emsync-small")
    p.add_argument("--minutes", type=float, default=90.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0,
                   help="validate and checkpoint this often (and at the end)")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="start a new run from this model (name or .safetensors) instead of random weights")
    p.add_argument("--ship", default=None, metavar="OUT.safetensors",
                   help="don't train: save the run's best weights to OUT (+ .json)")
