"""Gradients of small models against torch.autograd, and the API of graphc.grad,
graphc.value_and_grad and graphc.vjp.

The models are written the way a user writes them: numpy code (and graphc.nn) over a
dict of parameters. torch computes the reference in float64 from the same numbers; a
float32 run must land within float32 rounding of it, a float64 run within ~1e-10.
The per-primitive rules are checked in tests/test_autodiff.py.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import graphc
import graphc.api
from graphc import nn

T = torch.from_numpy
FLOATS = ["float32", "float64"]


def randn(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def cast_tree(tree, dtype):
    if isinstance(tree, dict):
        return {k: cast_tree(v, dtype) for k, v in tree.items()}
    return tree.astype(dtype) if tree.dtype.kind == "f" else tree


def torch_value_and_grad(tf, params: dict, *consts):
    """Loss and the dict of gradients of tf(params, *consts), in float64 torch."""
    ts = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in params.items()}
    loss = tf(ts, *(T(c.astype(np.float64) if c.dtype.kind == "f" else c) for c in consts))
    loss.backward()
    return loss.item(), {k: t.grad.numpy() for k, t in ts.items()}


def assert_close(got, want, dtype):
    """`got` has graphc's promised dtype and torch's shape and values (the tolerance is
    relative to the largest value: gradients of O(1) models are O(1))."""
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, want {dtype}"
    assert got.shape == np.shape(want), f"shape {got.shape}, torch gives {np.shape(want)}"
    tol = {"float32": 1e-5, "float64": 1e-12}[dtype]
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1.0)
    np.testing.assert_allclose(got, want, rtol=10 * tol, atol=tol * scale)


def assert_tree_close(got: dict, want: dict, dtype):
    assert sorted(got) == sorted(want), f"gradient keys {sorted(got)}, want {sorted(want)}"
    for k in want:
        assert_close(got[k], want[k], dtype)


# ---- MLP: Linear-ReLU-Linear with an MSE loss, parameters in a dict ----------------------

def mlp_loss(p, x, y):
    h = np.maximum(x @ p["w1"].T + p["b1"], 0.0)
    pred = h @ p["w2"].T + p["b2"]
    return np.mean((pred - y) ** 2)


def torch_mlp_loss(p, x, y):
    return F.mse_loss(F.linear(F.relu(F.linear(x, p["w1"], p["b1"])), p["w2"], p["b2"]), y)


def mlp_data(dtype):
    rng = np.random.default_rng(10)
    params = {"w1": randn(rng, 16, 8, scale=0.4), "b1": randn(rng, 16, scale=0.1),
              "w2": randn(rng, 4, 16, scale=0.3), "b2": randn(rng, 4, scale=0.1)}
    return cast_tree(params, dtype), randn(rng, 10, 8).astype(dtype), \
        randn(rng, 10, 4).astype(dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_mlp_gradients_match_torch(dtype):
    params, x, y = mlp_data(dtype)
    loss, grads = graphc.value_and_grad(mlp_loss)(params, x, y)
    want_loss, want = torch_value_and_grad(torch_mlp_loss, params, x, y)
    assert_close(loss, want_loss, dtype)
    assert_tree_close(grads, want, dtype)


# ---- single-head attention ---------------------------------------------------------------

def attention(q, k, v, mask=None):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -1e9)
    return nn.softmax(scores, axis=-1) @ v


def torch_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = torch.where(T(mask), scores, torch.tensor(-1e9, dtype=scores.dtype))
    return torch.softmax(scores, dim=-1) @ v


CAUSAL = np.tril(np.ones((5, 5), bool))


@pytest.mark.parametrize("shape, mask", [((6, 8), None), ((2, 5, 4), CAUSAL)],
                         ids=["single-head", "batched-causal"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_attention_gradients_match_torch(shape, mask, dtype):
    rng = np.random.default_rng(11)
    qkv = [randn(rng, *shape).astype(dtype) for _ in range(3)]
    grads = graphc.grad(lambda q, k, v: np.sum(attention(q, k, v, mask)),
                        argnums=(0, 1, 2))(*qkv)
    _, want = torch_value_and_grad(
        lambda p: torch_attention(p["q"], p["k"], p["v"], mask).sum(),
        dict(zip("qkv", qkv)))
    for g, name in zip(grads, "qkv"):
        assert_close(g, want[name], dtype)


# ---- layer norm with weight and bias -----------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
def test_layer_norm_gradients_match_torch(dtype):
    rng = np.random.default_rng(12)
    x, w, b = randn(rng, 4, 6), 1 + randn(rng, 6, scale=0.2), randn(rng, 6, scale=0.2)
    weights = randn(rng, 4, 6)  # a weighted sum: the plain sum of a layer norm is ~flat
    x, w, b = (a.astype(dtype) for a in (x, w, b))
    grads = graphc.grad(lambda x, w, b: np.sum(nn.layer_norm(x, w, b) * weights),
                        argnums=(0, 1, 2))(x, w, b)
    _, want = torch_value_and_grad(
        lambda p: (F.layer_norm(p["x"], (6,), p["w"], p["b"], eps=1e-5) * T(weights)).sum(),
        {"x": x, "w": w, "b": b})
    for g, name in zip(grads, "xwb"):
        assert_close(g, want[name], dtype)


# ---- a small CNN: conv2d, relu, max_pool2d, linear, cross-entropy ------------------------

def cnn_loss(p, x, labels):
    h = np.maximum(nn.conv2d(x, p["conv_w"], p["conv_b"], padding=1), 0.0)
    h = nn.max_pool2d(h, 2)
    logits = nn.linear(h.reshape(h.shape[0], -1), p["fc_w"], p["fc_b"])
    return nn.cross_entropy(logits, labels)


def torch_cnn_loss(p, x, labels):
    h = F.max_pool2d(F.relu(F.conv2d(x, p["conv_w"], p["conv_b"], padding=1)), 2)
    return F.cross_entropy(F.linear(h.flatten(1), p["fc_w"], p["fc_b"]), labels)


@pytest.mark.parametrize("dtype", FLOATS)
def test_cnn_gradients_match_torch(dtype):
    rng = np.random.default_rng(13)
    params = cast_tree({"conv_w": randn(rng, 4, 2, 3, 3, scale=0.3),
                        "conv_b": randn(rng, 4, scale=0.1),
                        "fc_w": randn(rng, 3, 4 * 3 * 3, scale=0.2),
                        "fc_b": randn(rng, 3, scale=0.1)}, dtype)
    x, labels = randn(rng, 2, 2, 6, 6).astype(dtype), np.array([2, 0])
    loss, grads = graphc.value_and_grad(cnn_loss)(params, x, labels)
    want_loss, want = torch_value_and_grad(torch_cnn_loss, params, x, labels)
    assert_close(loss, want_loss, dtype)
    assert_tree_close(grads, want, dtype)


# ---- API: argnums ------------------------------------------------------------------------

def f3(x, y, z):
    return np.sum(x * y ** 2 * np.sin(z))


def torch_f3_grads(x, y, z):
    return torch_value_and_grad(lambda p: (p["x"] * p["y"] ** 2 * torch.sin(p["z"])).sum(),
                                {"x": x, "y": y, "z": z})[1]


XYZ = [np.random.default_rng(14).standard_normal((2, 3)) for _ in range(3)]


def test_argnums_int_gives_one_array():
    g = graphc.grad(f3, argnums=1)(*XYZ)
    assert isinstance(g, np.ndarray)
    assert_close(g, torch_f3_grads(*XYZ)["y"], "float64")
    # negative argnums count from the end, as for Python sequences
    assert_close(graphc.grad(f3, argnums=-1)(*XYZ), torch_f3_grads(*XYZ)["z"], "float64")


def test_argnums_tuple_gives_a_tuple_in_that_order():
    gz, gx = graphc.grad(f3, argnums=(2, 0))(*XYZ)
    want = torch_f3_grads(*XYZ)
    assert_close(gz, want["z"], "float64")
    assert_close(gx, want["x"], "float64")
    (gy,) = graphc.grad(f3, argnums=(1,))(*XYZ)  # a 1-tuple stays a tuple
    assert_close(gy, want["y"], "float64")


def test_pytree_argument_gets_a_gradient_of_the_same_structure():
    rng = np.random.default_rng(15)
    params = {"w": rng.standard_normal((3, 2)), "layers": [rng.standard_normal(2),
                                                           (rng.standard_normal(()),)]}

    def loss(p):
        return np.sum(np.tanh(p["w"] @ p["layers"][0]) * p["layers"][1][0])

    g = graphc.grad(loss)(params)
    assert isinstance(g, dict) and sorted(g) == ["layers", "w"]
    assert isinstance(g["layers"], list) and isinstance(g["layers"][1], tuple)
    flat = {"w": params["w"], "v": params["layers"][0], "s": params["layers"][1][0]}
    _, want = torch_value_and_grad(
        lambda p: (torch.tanh(p["w"] @ p["v"]) * p["s"]).sum(), flat)
    assert_close(g["w"], want["w"], "float64")
    assert_close(g["layers"][0], want["v"], "float64")
    assert_close(g["layers"][1][0], want["s"], "float64")


# ---- API: has_aux, value_and_grad, compile -----------------------------------------------

def loss_with_aux(x):
    # the aux holds a float scalar and a float array computed from x, and an int: none of
    # them may add to the gradient, which is that of the loss alone
    loss = np.sum(x * x)
    return loss, {"max": np.max(x), "pred": 2.0 * x, "arg": np.argmax(x)}


X3 = np.array([1.0, -2.0, 3.0])


def check_aux(aux):
    assert sorted(aux) == ["arg", "max", "pred"]
    np.testing.assert_array_equal(aux["max"], 3.0)
    np.testing.assert_array_equal(aux["pred"], 2.0 * X3)
    assert aux["arg"] == 2 and aux["arg"].dtype == np.int64


def test_grad_has_aux_returns_gradient_and_aux():
    g, aux = graphc.grad(loss_with_aux, has_aux=True)(X3)
    np.testing.assert_allclose(g, 2 * X3, rtol=1e-15)  # d/dx sum(x*x), nothing from aux
    check_aux(aux)


def test_value_and_grad_has_aux_returns_value_aux_and_gradient():
    (loss, aux), g = graphc.value_and_grad(loss_with_aux, has_aux=True)(X3)
    assert float(loss) == 14.0
    np.testing.assert_allclose(g, 2 * X3, rtol=1e-15)
    check_aux(aux)


def test_compiled_value_and_grad_matches_eager_and_torch():
    params, x, y = mlp_data("float64")
    compiled = graphc.compile(graphc.value_and_grad(mlp_loss))
    loss, grads = compiled(params, x, y)
    eager_loss, eager = graphc.value_and_grad(mlp_loss)(params, x, y)
    want_loss, want = torch_value_and_grad(torch_mlp_loss, params, x, y)
    np.testing.assert_allclose(loss, eager_loss, rtol=1e-14)
    for k in want:
        np.testing.assert_allclose(grads[k], eager[k], rtol=1e-12, atol=1e-15)
    assert_close(loss, want_loss, "float64")
    assert_tree_close(grads, want, "float64")


def test_compiled_grad_of_a_function_that_calls_grad():
    # a Hessian-vector product, compiled into one graph. v is an argument of the middle
    # function, not a closure: a nested grad traces its function in a trace of its own,
    # which refuses the values of the enclosing one (UnsupportedError, with a hint)
    def dz(z):
        return graphc.grad(f3, argnums=2)(XYZ[0], XYZ[1], z)

    def hvp(z, v):
        return graphc.grad(lambda z, v: np.sum(dz(z) * v))(z, v)

    x, v = XYZ[2], XYZ[0]
    got = graphc.compile(hvp)(x, v)
    np.testing.assert_allclose(got, hvp(x, v), rtol=1e-14)
    # f3 is separable in z: H v = -x y**2 sin(z) v
    np.testing.assert_allclose(got, -XYZ[0] * XYZ[1] ** 2 * np.sin(x) * v, rtol=1e-12)


# ---- API: errors -------------------------------------------------------------------------

def test_grad_of_an_int_argument_names_the_callers_line():
    n = np.arange(3)
    with pytest.raises(graphc.GraphcError) as info:
        line = inspect.currentframe().f_lineno + 1
        graphc.grad(f3, argnums=1)(X3, n, X3)
    text = str(info.value)
    assert text.startswith(f"{__file__}:{line}: "), text
    assert "int64" in text and "hint: " in text


def test_grad_of_a_bool_leaf_in_a_pytree_raises():
    with pytest.raises(graphc.GraphcError, match="bool"):
        graphc.grad(lambda p: np.sum(p["x"] * p["m"]))({"x": X3, "m": X3 > 0})


@pytest.mark.parametrize("fn, message", [
    pytest.param(lambda x: x * 2.0, r"f64\[3\]", id="vector"),
    pytest.param(lambda x: np.sum(x.astype(np.int64)), "i64", id="int-scalar"),
    pytest.param(lambda x: (np.sum(x), np.sum(x)), "returns 2 values", id="two-outputs"),
])
def test_grad_of_a_non_scalar_output_raises(fn, message):
    with pytest.raises(graphc.GraphcError, match=message):
        graphc.grad(fn)(X3)


# ---- API: what has no gradient -----------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
def test_gradient_of_an_unused_argument_is_zeros(dtype):
    x, unused = X3.astype(dtype), np.ones((2, 2), dtype)
    gx, gu = graphc.grad(lambda x, u: np.sum(x * x), argnums=(0, 1))(x, unused)
    assert gu.shape == (2, 2) and gu.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(gu, 0.0)
    np.testing.assert_allclose(gx, 2 * x)


def test_argmax_comparison_and_sign_paths_have_zero_gradient():
    x = np.random.default_rng(16).standard_normal((3, 4))

    def cut(x):  # every path from x to the loss goes through a non-differentiable op
        return (np.sum(np.argmax(x, axis=1) * 1.0) + np.sum((x > 0) * 1.0)
                + np.sum(np.sign(x)) + np.sum(np.where(x < 0.5, 1.0, -1.0)))

    np.testing.assert_array_equal(graphc.grad(cut)(x), np.zeros_like(x))


def test_argmax_as_an_index_passes_gradient_to_the_picked_values():
    # the index path is cut, the gathered values are not: d/dx sum(max_row ** 2)
    x = np.random.default_rng(17).standard_normal((3, 4))
    got = graphc.grad(lambda x: np.sum(x[np.arange(3), np.argmax(x, axis=1)] ** 2))(x)
    _, want = torch_value_and_grad(
        lambda p: (p["x"][torch.arange(3), p["x"].argmax(1)] ** 2).sum(), {"x": x})
    assert_close(got, want["x"], "float64")


# ---- API: vjp of non-scalar functions ----------------------------------------------------

def two_outputs(x, w):
    return np.tanh(x @ w), np.sum(x * x, axis=0)


def torch_two_outputs(x, w):
    return torch.tanh(x @ w), (x * x).sum(0)


VJP_ARGS = [np.random.default_rng(18).standard_normal(s) for s in [(4, 3), (3, 5)]]
COTANGENTS = (np.random.default_rng(19).standard_normal((4, 5)),
              np.random.default_rng(20).standard_normal(3))


def torch_vjp():
    out, back = torch.func.vjp(torch_two_outputs, *(T(a) for a in VJP_ARGS))
    return [o.numpy() for o in out], [g.numpy() for g in back(tuple(T(c) for c in COTANGENTS))]


def test_vjp_of_a_non_scalar_function_matches_torch():
    (y, s), back = graphc.vjp(two_outputs, *VJP_ARGS)
    grads = back(COTANGENTS)
    want_out, want_grads = torch_vjp()
    assert isinstance(grads, tuple) and len(grads) == 2  # one per primal
    assert_close(y, want_out[0], "float64")
    assert_close(s, want_out[1], "float64")
    for g, w in zip(grads, want_grads):
        assert_close(g, w, "float64")


def test_vjp_inside_a_compiled_function_matches_torch():
    def pullback(x, w, ct_y, ct_s):
        _, back = graphc.vjp(two_outputs, x, w)
        return back((ct_y, ct_s))

    grads = graphc.compile(pullback)(*VJP_ARGS, *COTANGENTS)
    for g, w in zip(grads, torch_vjp()[1]):
        assert_close(g, w, "float64")


def test_vjp_gives_none_for_an_int_primal():
    x = np.arange(3)
    _, back = graphc.vjp(lambda a, n: a * n, X3, x)
    ga, gn = back(np.ones(3))
    np.testing.assert_array_equal(ga, x)
    assert gn is None


# ---- several batch sizes: one compile for all of them (issue 14) -------------------------

def _batch(rng, n, dtype, *shape):
    return randn(rng, n, *shape).astype(dtype)


MODELS_AT_SIZES = {
    "mlp": (mlp_loss, torch_mlp_loss, lambda dtype: mlp_data(dtype)[0],
            lambda rng, n, dtype: (_batch(rng, n, dtype, 8), _batch(rng, n, dtype, 4))),
    "cnn": (cnn_loss, torch_cnn_loss,
            lambda dtype: cast_tree({"conv_w": randn(np.random.default_rng(1), 4, 2, 3, 3,
                                                     scale=0.3),
                                     "conv_b": randn(np.random.default_rng(2), 4, scale=0.1),
                                     "fc_w": randn(np.random.default_rng(3), 3, 36, scale=0.2),
                                     "fc_b": randn(np.random.default_rng(4), 3, scale=0.1)},
                                    dtype),
            lambda rng, n, dtype: (_batch(rng, n, dtype, 2, 6, 6), rng.integers(0, 3, n))),
}


@pytest.mark.parametrize("model", sorted(MODELS_AT_SIZES))
@pytest.mark.parametrize("dtype", FLOATS)
def test_a_training_step_at_several_batch_sizes_compiles_once(model, dtype):
    loss_fn, torch_fn, make_params, make_batch = MODELS_AT_SIZES[model]
    step = graphc.compile(graphc.value_and_grad(loss_fn))
    params, rng = make_params(dtype), np.random.default_rng(15)
    for n in (4, 7, 2, 16, 5):
        batch = make_batch(rng, n, dtype)
        loss, grads = step(params, *batch)
        want_loss, want = torch_value_and_grad(torch_fn, params, *batch)
        assert_close(loss, want_loss, dtype)
        assert_tree_close(grads, want, dtype)
    assert step.cache_info().misses == 2  # the first batch's size, then every size
    (entry, *_), = step._symbolic
    assert any("is dynamic now" in line for line in entry.lowered.retraces)
