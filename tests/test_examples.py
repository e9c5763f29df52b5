"""The examples, run with few steps (and small sizes where the full ones take long).

Each example checks itself and raises if the check fails; these tests also assert on
what its `main` returns (loss curves, parameters, gradients) against its reference,
so that an example that silently stopped checking would still fail here.
"""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from graphc.passes import autodiff

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str):
    """Import examples/NAME.py (the folder goes on sys.path, as `python examples/NAME.py`
    puts it, for the examples' shared `_common` module)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def rel_error(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def test_polyfit_hand_and_graphc_gradients_agree():
    r = example("polyfit").main(steps=300)
    np.testing.assert_allclose(r["graphc_params"], r["hand_params"], rtol=1e-9)
    np.testing.assert_allclose(r["graphc_losses"], r["hand_losses"], rtol=1e-9)
    assert r["graphc_losses"][-1] < r["graphc_losses"][0] / 10


def test_mlp_matches_torch():
    r = example("mlp").main(steps=100)
    assert r["reference"] == "torch"
    np.testing.assert_allclose(r["losses"], r["reference_losses"], rtol=1e-4)
    assert r["losses"][-1] < r["losses"][0]


def test_mlp_matches_the_interpreter_without_torch():
    r = example("mlp").main(steps=20, use_torch=False)
    assert r["reference"] == "interpreter"
    np.testing.assert_allclose(r["losses"], r["reference_losses"], rtol=1e-5)


def test_adam_is_one_kernel_and_matches_eager():
    r = example("adam").main(steps=5, n=10_000)
    assert r["kernels"][1] == 1
    for compiled, eager in zip(r["state"], r["eager_state"]):
        assert rel_error(compiled, eager) < 1e-5
    np.testing.assert_allclose(r["losses"], r["eager_losses"], rtol=1e-5)
    assert r["losses"][-1] < r["losses"][0]


def test_bert_matches_torch():
    r = example("bert").main(steps=3, batch=4, seq=8, width=64, ffn=128, vocab=50)
    np.testing.assert_allclose(r["losses"], r["reference_losses"], rtol=1e-4)
    assert r["grads"].keys() == r["reference_grads"].keys()
    for name, g in r["grads"].items():
        assert rel_error(g, r["reference_grads"][name]) < 1e-4, name
    assert r["losses"][-1] < r["losses"][0]


def test_lstm_matches_torch():
    r = example("lstm").main(steps=3, batch=6, seq=7, inputs=5, hidden=12)
    np.testing.assert_allclose(r["losses"], r["reference_losses"], rtol=1e-4)
    assert r["grads"].keys() == r["reference_grads"].keys()
    for name, g in r["grads"].items():
        assert rel_error(g, r["reference_grads"][name]) < 1e-4, name
    assert r["losses"][-1] < r["losses"][0]


@pytest.mark.skipif("conv2d" not in autodiff.VJP,
                    reason="conv2d has no gradient rule yet")
def test_cnn_matches_torch():
    r = example("cnn").main(steps=2, batch=4)
    np.testing.assert_allclose(r["losses"], r["reference_losses"], rtol=1e-4)
    for name, p in r["params"].items():
        assert rel_error(p, r["reference_params"][name]) < 1e-3, name
