"""Model files: the official checkpoint importer (with a checkpoint of the official layout built
here), name resolution without torch, and clear errors."""

import subprocess
import sys

import pytest
import torch

from emsync_bridge import models
from emsync_bridge.errors import EmsyncError
from emsync_bridge.music.model import build_model


@pytest.mark.parametrize("nesting", ["plain", "model", "state_dict"])
def test_import_official_checkpoint(tmp_path, nesting):
    torch.manual_seed(1)
    official = build_model("emsync-37m").eval()
    state = {k: v.clone() for k, v in official.state_dict().items()}
    obj = state if nesting == "plain" else {nesting: state, "epoch": 3}
    ckpt = tmp_path / "midi_model.pt"
    torch.save(obj, ckpt)
    out = models.import_checkpoint(ckpt)
    assert out.is_file() and out.with_suffix(".json").is_file()
    loaded, files = models.load_torch_model("emsync-37m")
    assert files.trained and files.config["meta"]["official"]
    tokens = torch.randint(4, 1011, (1, 16))
    b = torch.full((1, 16), 3.0)
    v, a = torch.tensor([0.1]), torch.tensor([-0.4])
    with torch.no_grad():
        assert torch.equal(official(tokens, b, v, a)[0], loaded(tokens, b, v, a)[0])


def test_import_rejects_wrong_layout(tmp_path):
    small = build_model("emsync-small")
    ckpt = tmp_path / "other.pt"
    torch.save({"model": small.state_dict()}, ckpt)
    with pytest.raises(EmsyncError, match="emsync-37m layout"):
        models.import_checkpoint(ckpt)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(EmsyncError, match="cannot read checkpoint"):
        models.import_checkpoint(tmp_path / "junk.pt")


def test_official_model_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EMSYNC_MODELS_DIR", str(tmp_path / "empty"))
    with pytest.raises(EmsyncError, match="import-checkpoint"):
        models.resolve("emsync-37m")


def test_resolving_models_does_not_import_torch():
    code = "import sys; from emsync_bridge import models; models.resolve('default'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
