"""The distance route's shipped weights (CVAE and DAE, half precision): their records, sha256 and loading."""
import hashlib

import pytest
import torch

from pdfsolve.models import DistanceCVAE, DistanceDAE, build_model
from pdfsolve.models.weights import load_model, load_weights, save_half_precision, shipped_weights
from pdfsolve.training.checkpoint import save_atomic
from _models import one_thread  # noqa: F401 (one_thread: autouse fixture)

TINY = dict(n_max=12, latent_dim=2, satellites=4, pdf_rmin=1.0, pdf_rmax=8.0, pdf_rstep=0.1, channels=2,
            encoder_hidden=(8,), decoder_hidden=(8,), prior_lengths=(12, 6))


def test_half_precision_copy_rounds_every_weight_to_float16_and_loads_as_float32(tmp_path):
    torch.manual_seed(0)
    model = build_model("cvae", TINY)
    save_atomic({"model": model.state_dict(), "config": {"model": "cvae", "model_params": TINY}}, tmp_path / "a.pt")
    save_half_precision(tmp_path / "a.pt", tmp_path / "b.pt")
    loaded, config = load_model(tmp_path / "b.pt")
    assert config["model"] == "cvae" and (tmp_path / "b.pt").stat().st_size < (tmp_path / "a.pt").stat().st_size
    for (name, ours), theirs in zip(loaded.state_dict().items(), model.state_dict().values()):
        assert ours.dtype == torch.float32, name
        torch.testing.assert_close(ours, theirs.half().float(), rtol=0, atol=0)
        torch.testing.assert_close(ours, theirs, rtol=2.0**-11, atol=6e-8)  # float16's rounding (and subnormals)
    with pytest.raises(ValueError, match="no model weights"):
        save_half_precision(tmp_path / "missing.pt", tmp_path / "c.pt")


@pytest.mark.parametrize("name, kind", [("cvae", DistanceCVAE), ("dae", DistanceDAE)])
def test_shipped_weights_match_their_record_and_load(name, kind):
    shipped = shipped_weights(name)
    assert shipped is not None, f"no {name} weights shipped"
    path, record = shipped
    assert {"sha256", "command", "metrics", "trained"} <= set(record)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
    assert path.stat().st_size < 10e6  # half precision: <= 10 MB each
    model, config = load_weights(None, name)
    assert type(model) is kind and config["model"] == name and not model.training
    assert record["trained"]["model_params"] == config["model_params"]
    assert any(f"pdfsolve train {name}" in command for command in record["command"])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, value.half().float(), rtol=0, atol=0, msg=key)
