"""The PyTorch examples, at quick sizes: each trains its model eagerly and through
graphc and raises if graphc's loss curve leaves eager's; the DDP example checks two
processes against one. These tests also assert on what `main` returns, so an example
that stopped checking would still fail here."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@pytest.mark.parametrize("name,model", [("torch_net", "net"), ("torch_cnn", "cnn"),
                                        ("torch_lstm", "lstm"), ("torch_bert", "bert")])
def test_example_follows_eager(name, model):
    if model == "bert":
        pytest.importorskip("transformers")
    r = example(name).main(steps=3, quick=True)
    curves = r["curves"]
    loss_rtol = example("_torch_common").LOSS_RTOL
    np.testing.assert_allclose(curves["graphc"], curves["torch eager"], rtol=loss_rtol)
    if model in ("net", "cnn"):
        # SGD: three steps from the same weights leave the parameters as close as the
        # losses. (Not for Adam: it divides each gradient by its own running size, so a
        # parameter whose gradient is rounding noise moves by the learning rate in a
        # direction the noise picks; tests/torch/test_models.py compares in float64.)
        for p, q in zip(r["eager_model"].parameters(), r["model"].parameters()):
            np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(),
                                       rtol=loss_rtol, atol=loss_rtol * float(p.detach().abs().max()))


@pytest.mark.parametrize("dynamo", [False, True], ids=["ddp-of-compiled", "compile-of-ddp"])
def test_ddp_matches_one_process(dynamo):
    r = example("torch_ddp").main(steps=4, dynamo=dynamo)
    assert r["error"] <= example("torch_ddp").RTOL
    np.testing.assert_allclose(r["losses"], r["single_losses"], rtol=1e-9)
