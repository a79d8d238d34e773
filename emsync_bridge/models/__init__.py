"""Shipped and user model weights: safetensors + a JSON config, found by name or path.

- `default` (alias `emsync-small`): the model we train and ship in this folder;
- `emsync-37m`: the official EMSYNC checkpoint, once a user converts theirs with
  `emsync-bridge import-checkpoint` (stored in the user data dir, never downloaded);
- a path to a `.safetensors` file with its `.json` beside it.
If the default weights are missing (a checkout before training finished), an untrained model is
built and flagged `trained: false`, and every output says so.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from emsync_bridge.errors import EmsyncError

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_NAME = "emsync-small"
ALIASES = {"default": DEFAULT_NAME}


def user_models_dir() -> Path:
    return Path(os.environ.get("EMSYNC_MODELS_DIR") or platformdirs.user_data_dir("emsync-bridge")) / "models"


@dataclass
class ModelFiles:
    name: str
    weights: Path | None  # None: no weights, an untrained model of `config_name`
    config: dict  # ModelConfig fields plus "meta"

    @property
    def trained(self) -> bool:
        return self.weights is not None and self.config.get("meta", {}).get("trained", True)

    def weights_hash(self) -> str:
        if self.weights is None:
            return "untrained-" + hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()[:16]
        h = hashlib.sha256()
        with open(self.weights, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()[:16]


def resolve(name_or_path: str | None = None) -> ModelFiles:
    """Find a model's files without importing torch."""
    name = ALIASES.get(name_or_path or "default", name_or_path or "default")
    candidates = []
    p = Path(name)
    if p.suffix == ".safetensors" or p.exists():
        if not p.is_file():
            raise EmsyncError(f"model file not found: {p}")
        candidates.append(p)
    else:
        candidates += [MODELS_DIR / f"{name}.safetensors", user_models_dir() / f"{name}.safetensors"]
    for w in candidates:
        if w.is_file():
            cfg_path = w.with_suffix(".json")
            if not cfg_path.is_file():
                raise EmsyncError(f"model config missing next to the weights: {cfg_path}")
            try:
                config = json.loads(cfg_path.read_text())
            except ValueError as exc:
                raise EmsyncError(f"model config is not valid JSON: {cfg_path} ({exc})") from None
            return ModelFiles(w.stem, w, config)
    from_config = _builtin_config(name)
    if from_config is None:
        raise EmsyncError(f"unknown model {name_or_path!r}: use 'default', 'emsync-37m' (after "
                          f"import-checkpoint) or a path to a .safetensors file")
    if name == "emsync-37m":
        raise EmsyncError("the official emsync-37m weights are not installed: convert your "
                          "midi_model.pt with `emsync-bridge import-checkpoint PATH`")
    return ModelFiles(name, None, {**from_config, "meta": {"trained": False}})


def _builtin_config(name: str) -> dict | None:
    from emsync_bridge.music.model_config import CONFIGS  # torch-free

    cfg = CONFIGS.get(name)
    return None if cfg is None else cfg.to_dict()


def load_torch_model(name_or_path: str | None = None, seed: int = 0):
    """(MusicTransformer, ModelFiles). Untrained models are seeded so they are reproducible."""
    import torch
    from safetensors.torch import load_file

    from emsync_bridge.music.model import MusicTransformer
    from emsync_bridge.music.model_config import ModelConfig

    files = resolve(name_or_path)
    cfg = ModelConfig.from_dict(files.config)
    torch.manual_seed(seed)
    model = MusicTransformer(cfg)
    if files.weights is not None:
        try:
            state = load_file(str(files.weights))
        except Exception as exc:
            raise EmsyncError(f"cannot read model weights {files.weights}: {exc}") from None
        _load_exactly(model, state, f"weights {files.weights.name} do not fit their config")
    model.eval()
    return model, files


def save_model(model, path: Path, meta: dict) -> Path:
    """Save weights (safetensors) + config JSON (with `meta`), each atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    os.replace(tmp, path)
    cfg = {**model.cfg.to_dict(), "meta": meta}
    tmpj = path.with_name(f".{path.stem}.json.tmp")
    tmpj.write_text(json.dumps(cfg, indent=2) + "\n")
    os.replace(tmpj, path.with_suffix(".json"))
    return path


def import_checkpoint(path: str | os.PathLike, name: str = "emsync-37m") -> Path:
    """Convert the official EMSYNC `midi_model.pt` (a plain state_dict, or one nested under a
    usual key such as "model" or "state_dict") into safetensors + config in the user models dir.
    The weights must fit the `emsync-37m` config exactly."""
    import torch

    from emsync_bridge.music.model import MusicTransformer
    from emsync_bridge.music.model_config import CONFIGS

    path = Path(path)
    if not path.is_file():
        raise EmsyncError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EmsyncError(f"cannot read checkpoint {path.name}: {type(exc).__name__}: {str(exc)[:120]}") from None
    state = _find_state_dict(obj)
    if state is None:
        raise EmsyncError(f"no model state_dict found in {path.name}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = MusicTransformer(CONFIGS["emsync-37m"])
    _load_exactly(model, state, f"{path.name} does not match the emsync-37m layout")
    meta = {"trained": True, "source": f"imported from {path.name}", "official": True}
    return save_model(model, user_models_dir() / f"{name}.safetensors", meta)


def _load_exactly(model, state: dict, problem: str) -> None:
    """Load `state` into `model`, every key and shape; anything else is one EmsyncError line."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise EmsyncError(f"{problem}: {str(exc).splitlines()[-1].strip()[:160]}") from None
    if missing or unexpected:
        raise EmsyncError(f"{problem}: {len(missing)} missing keys (e.g. {missing[:2]}), "
                          f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})")


def _find_state_dict(obj):
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        if "embedding.weight" in obj or any(k.endswith("embedding.weight") for k in obj):
            return obj
        for key in ("model", "state_dict", "model_state_dict", "midi_model", "net"):
            if key in obj:
                found = _find_state_dict(obj[key])
                if found is not None:
                    return found
    return None
