"""Rematerialization: the min cut saves fewer bytes than saving everything, and the
split forward/backward give the same gradients as the joint graph and as torch."""
import numpy as np
import pytest
import torch

import graphc
from graphc.passes.autodiff import backward
from graphc.passes.remat import split


# these tests watch or break the passes and the code generator, which a hit of the
# persistent compile cache would skip
pytestmark = pytest.mark.usefixtures("no_compile_cache")

def mlp_block(x, w):
    # cheap elementwise values after the matmul: recomputing them beats storing them
    h = np.tanh(x @ w)
    return np.exp(h) * 2.0 + h * h


def _torch_vjp(x, w, ct):
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    h = torch.tanh(tx @ tw)
    out = torch.exp(h) * 2.0 + h * h
    out.backward(torch.tensor(ct))
    return out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()


@pytest.fixture
def data(rng):
    return (rng.standard_normal((64, 32)), rng.standard_normal((32, 32)),
            rng.standard_normal((64, 32)))


def test_min_cut_saves_strictly_fewer_bytes_with_identical_gradients(data):
    x, w, ct = data
    graph = graphc.trace(mlp_block, x, w)
    joint = backward(graph, [0, 1], seed_inputs=True)
    parts = split(joint, 1, 1)
    parts.forward.verify()
    parts.backward.verify()
    assert 0 < parts.saved_bytes < parts.save_all_bytes
    # the forward matmul x @ w is never recomputed: what the backward needs is saved
    assert not [n for n in parts.backward.nodes if n.op == "matmul"
                and [v.name for v in n.inputs] == ["x", "w"]]
    joint_out = graphc.interpret(joint, x, w, ct)
    fwd = graphc.interpret(parts.forward, x, w)
    fwd = fwd if isinstance(fwd, tuple) else (fwd,)
    names = {v.name: a for v, a in zip(parts.forward.outputs, fwd)}
    args = {"x": x, "w": w, "ct.0": ct, **names}
    bwd = graphc.interpret(parts.backward, *[args[v.name] for v in parts.backward.inputs])
    np.testing.assert_array_equal(fwd[0], joint_out[0])
    for got, want in zip(bwd, joint_out[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_vjp_uses_the_split_and_matches_torch(data):
    x, w, ct = data
    out, back = graphc.vjp(mlp_block, x, w)
    gx, gw = back(ct)
    t_out, t_gx, t_gw = _torch_vjp(x, w, ct)
    np.testing.assert_allclose(out, t_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, t_gx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, t_gw, rtol=1e-10, atol=1e-10)
    assert back.saved_bytes < back.save_all_bytes
    # the backward can be run again with another cotangent
    gx2, _ = back(2.0 * ct)
    np.testing.assert_allclose(gx2, 2.0 * gx, rtol=1e-12, atol=1e-12)


def test_vjp_checks_the_cotangent_count(data):
    x, w, _ = data
    _, back = graphc.vjp(mlp_block, x, w)
    with pytest.raises(graphc.GraphcError, match="1 cotangents for 1 outputs|cotangents"):
        back((x, x))


def test_vjp_compiles_with_the_backend_it_is_given(monkeypatch):
    # both halves go through the named backend and its fusion policy, never a fixed one
    from graphc import backends
    seen = []
    numpy_backend = backends.get("numpy")
    real = numpy_backend.compile_graph
    monkeypatch.setattr(numpy_backend, "compile_graph",
                        lambda g, options=None: seen.append(g) or real(g, options))
    x = np.linspace(-1.0, 1.0, 7)
    out, back = graphc.vjp(lambda v: np.tanh(v) * v, x, backend="numpy")
    (g,) = back(np.ones(7))
    np.testing.assert_allclose(g, np.tanh(x) + x * (1 - np.tanh(x) ** 2), rtol=1e-12)
    assert len(seen) == 2 and all(s.groups is not None for s in seen)
    with pytest.raises(graphc.GraphcError, match="unknown backend"):
        graphc.vjp(lambda v: v, x, backend="nope")
