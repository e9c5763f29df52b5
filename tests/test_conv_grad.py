"""Gradients of conv2d, max_pool2d and avg_pool2d through `graphc.grad`.

The gradient primitives themselves (conv2d_grad_input, conv2d_grad_weight,
max_pool2d_grad, max_pool2d_gather, avg_pool2d_grad) are checked one node at a time
against torch in tests/op_samples.py. Here they are checked as gradients:

* against torch.autograd (float64 reference) over a grid of stride, padding,
  dilation and groups on odd input sizes, in float64 and float32;
* against central finite differences of the numpy forward, in float64;
* as adjoint pairs (the VJP rules rely on <grad_op(g), h> = <g, forward_op(h)>);
* second and third derivatives against torch's double and triple backward;
* the CNN of WORKLOADS.md, written with graphc.nn, against the same model in torch.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import graphc
from graphc import nn
from graphc.ops import OPS

RNG = np.random.default_rng(20240612)
T = torch.from_numpy


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """torch's small float64 convolutions take ~100 ms each on a thread pool, 0.1 ms on
    one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def normal(*shape) -> np.ndarray:
    return RNG.standard_normal(shape)


def torch_grads(tf, xs) -> list[np.ndarray]:
    """Gradients of the scalar tf(*xs) in float64 torch, one per input."""
    ts = [torch.tensor(np.asarray(x, np.float64), requires_grad=True) for x in xs]
    tf(*ts).backward()
    return [t.grad.numpy() for t in ts]


def assert_close(got, want, dtype) -> None:
    """float64: a few ulps of the largest value; float32: against a float64 reference."""
    assert got.shape == want.shape and got.dtype == np.dtype(dtype), (got.dtype, got.shape)
    tol = 1e-12 if dtype == "float64" else 1e-5
    scale = max(float(np.abs(want).max()), 1.0)
    np.testing.assert_allclose(got, want, rtol=10 * tol, atol=tol * scale)


# ---- conv2d over a grid ----------------------------------------------------------------

X_SHAPE = (2, 4, 9, 7)                                  # odd H and W
WEIGHTS = {"g1": ((3, 4, 3, 2), 1), "g2": ((4, 2, 3, 2), 2), "depthwise": ((8, 1, 3, 2), 4)}
CONV_GRID = [pytest.param(s, p, d, g, dt, id=f"s{s}-p{p}-d{d}-{g}-{dt}")
             for s, p, d, g, dt in itertools.product((1, 2, 3), (0, 1, 2), (1, 2), WEIGHTS,
                                                     ("float64", "float32"))]


def conv_case(stride, padding, dilation, groups_id, dtype):
    w_shape, groups = WEIGHTS[groups_id]
    x, w = normal(*X_SHAPE).astype(dtype), normal(*w_shape).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out = F.conv2d(T(x.astype(np.float64)), T(w.astype(np.float64)), **kw)
    r = normal(*out.shape).astype(dtype)  # a random cotangent, not all ones
    return x, w, r, kw


@pytest.mark.parametrize("stride, padding, dilation, groups_id, dtype", CONV_GRID)
def test_conv2d_gradients_match_torch(stride, padding, dilation, groups_id, dtype):
    x, w, r, kw = conv_case(stride, padding, dilation, groups_id, dtype)
    gx, gw = graphc.grad(lambda x, w: np.sum(nn.conv2d(x, w, **kw) * r), argnums=(0, 1))(x, w)
    want_x, want_w = torch_grads(lambda x, w: (F.conv2d(x, w, **kw) * T(r.astype(np.float64)))
                                 .sum(), [x, w])
    assert_close(gx, want_x.astype(dtype), dtype)
    assert_close(gw, want_w.astype(dtype), dtype)


@pytest.mark.parametrize("stride, padding, dilation, groups", [
    ((2, 3), (1, 0), (1, 2), 1),   # a different stride, padding and dilation per axis
    ((3, 1), (2, 1), (2, 1), 2)])
def test_conv2d_gradients_with_per_axis_attributes(stride, padding, dilation, groups):
    x, w = normal(1, 4, 11, 8), normal(6, 4 // groups, 2, 3)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    f = lambda x, w: np.sum(np.tanh(nn.conv2d(x, w, **kw)))  # noqa: E731
    got = graphc.grad(f, argnums=(0, 1))(x, w)
    want = torch_grads(lambda x, w: torch.tanh(F.conv2d(x, w, **kw)).sum(), [x, w])
    for g, t in zip(got, want):
        assert_close(g, t, "float64")


def test_input_rows_a_stride_skips_get_zero_gradient():
    # 9 rows, kernel 2, stride 3: the windows read rows 0-1, 3-4 and 6-7 only
    x, w = normal(1, 1, 9, 9), normal(1, 1, 2, 2)
    gx = graphc.grad(lambda x: np.sum(nn.conv2d(x, w, stride=3) ** 2))(x)
    assert not np.any(gx[:, :, 2::3]) and not np.any(gx[:, :, :, 2::3])
    (want,) = torch_grads(lambda x: (F.conv2d(x, T(w), stride=3) ** 2).sum(), [x])
    assert_close(gx, want, "float64")
    gp = graphc.grad(lambda x: np.sum(nn.max_pool2d(x, 2, stride=3) ** 2))(x)
    assert not np.any(gp[:, :, 2::3]) and not np.any(gp[:, :, :, 2::3])


# ---- pooling over a grid ----------------------------------------------------------------

POOLS = {"max": (nn.max_pool2d, F.max_pool2d),
         "avg": (nn.avg_pool2d, lambda t, k, s, p: F.avg_pool2d(t, k, s, p))}
POOL_GRID = [pytest.param(op, k, s, p, dt, id=f"{op}-k{k[0]}x{k[1]}-s{s}-p{p}-{dt}")
             for op, k, s, p, dt in itertools.product(
                 POOLS, ((2, 2), (3, 3), (3, 2)), (1, 2, 3), (0, 1), ("float64", "float32"))]


@pytest.mark.parametrize("op, kernel, stride, padding, dtype", POOL_GRID)
def test_pool_gradients_match_torch(op, kernel, stride, padding, dtype):
    ours, theirs = POOLS[op]
    x = normal(2, 3, 9, 7).astype(dtype)
    out = theirs(T(x.astype(np.float64)), kernel, stride, padding)
    r = normal(*out.shape).astype(dtype)
    got = graphc.grad(lambda x: np.sum(ours(x, kernel, stride, padding) * r))(x)
    (want,) = torch_grads(lambda x: (theirs(x, kernel, stride, padding)
                                     * T(r.astype(np.float64))).sum(), [x])
    assert_close(got, want.astype(dtype), dtype)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 1)])
def test_max_pool2d_ties_go_to_the_first_max_as_in_torch(kernel, stride, padding):
    x = RNG.integers(-1, 2, (2, 2, 7, 6)).astype(np.float64)  # ties in most windows
    r = normal(*F.max_pool2d(T(x), kernel, stride, padding).shape)
    got = graphc.grad(lambda x: np.sum(nn.max_pool2d(x, kernel, stride, padding) * r))(x)
    (want,) = torch_grads(lambda x: (F.max_pool2d(x, kernel, stride, padding) * T(r)).sum(),
                          [x])
    assert_close(got, want, "float64")  # a wrong choice would be off by O(1)


# ---- finite differences (float64) -------------------------------------------------------

EPS = 1e-6


def conv_net(stride, padding, dilation, groups, pool):
    """x, w -> sum(tanh(pool(conv(x, w))) * r): plain numpy code, so it also runs eagerly."""
    r_shape = {}

    def f(x, w):
        y = np.tanh(nn.conv2d(x, w, stride=stride, padding=padding, dilation=dilation,
                              groups=groups))
        y = pool(y, 2, 1, 1)
        if "r" not in r_shape:
            r_shape["r"] = normal(*y.shape)
        return np.sum(y * r_shape["r"])
    return f


@pytest.mark.parametrize("stride, padding, dilation, groups, pool", [
    (1, 0, 1, 1, nn.max_pool2d), (2, 1, 1, 2, nn.avg_pool2d), (3, 2, 2, 4, nn.max_pool2d),
    (2, 2, 2, 1, nn.avg_pool2d)])
def test_gradients_match_central_finite_differences(stride, padding, dilation, groups, pool):
    x, w = normal(2, 4, 9, 7), normal(4, 4 // groups, 3, 3)
    f = conv_net(stride, padding, dilation, groups, pool)
    f(x, w)  # fixes r's shape before tracing
    gx, gw = graphc.grad(f, argnums=(0, 1))(x, w)
    dx, dw = normal(*x.shape), normal(*w.shape)
    numeric = (f(x + EPS * dx, w + EPS * dw) - f(x - EPS * dx, w - EPS * dw)) / (2 * EPS)
    analytic = np.vdot(gx, dx) + np.vdot(gw, dw)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-8)


# ---- the gradient ops are adjoint pairs ---------------------------------------------------

@pytest.mark.parametrize("stride, padding, dilation, groups", [
    ((1, 1), (0, 0), (1, 1), 1), ((2, 3), (1, 2), (2, 1), 2), ((3, 2), (2, 0), (1, 2), 4)])
def test_conv_gradient_ops_are_adjoints(stride, padding, dilation, groups):
    at = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x, w = normal(2, 4, 9, 8), normal(4, 4 // groups, 3, 2)
    g = normal(*OPS["conv2d"](x, w, **at).shape)
    h, k = normal(*x.shape), normal(*w.shape)
    dx = OPS["conv2d_grad_input"](g, w, input_shape=x.shape, **at)
    dw = OPS["conv2d_grad_weight"](x, g, weight_shape=w.shape, **at)
    np.testing.assert_allclose(np.vdot(dx, h), np.vdot(g, OPS["conv2d"](h, w, **at)),
                               rtol=1e-12)
    np.testing.assert_allclose(np.vdot(dw, k), np.vdot(g, OPS["conv2d"](x, k, **at)),
                               rtol=1e-12)


@pytest.mark.parametrize("kernel, stride, padding", [
    ((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 1), (1, 1)), ((3, 2), (3, 3), (1, 0))])
def test_pool_gradient_ops_are_adjoints(kernel, stride, padding):
    at = dict(kernel=kernel, stride=stride, padding=padding)
    x = RNG.integers(-1, 2, (2, 3, 9, 7)).astype(np.float64)  # ties: the choice must agree
    g, h = normal(*OPS["max_pool2d"](x, **at).shape), normal(*x.shape)
    np.testing.assert_allclose(np.vdot(OPS["max_pool2d_grad"](x, g, **at), h),
                               np.vdot(g, OPS["max_pool2d_gather"](x, h, **at)), rtol=1e-12)
    np.testing.assert_allclose(
        np.vdot(OPS["avg_pool2d_grad"](g, input_shape=x.shape, **at), h),
        np.vdot(g, OPS["avg_pool2d"](h, **at)), rtol=1e-12)


# ---- higher derivatives -----------------------------------------------------------------

R_NET = normal(2, 4, 4, 4)


def small_net(x, w1, w2, xp=np):
    """conv (stride 2) -> tanh -> max pool -> grouped dilated conv -> tanh -> avg pool."""
    conv, mp, ap = (nn.conv2d, nn.max_pool2d, nn.avg_pool2d) if xp is np else (
        F.conv2d, F.max_pool2d, F.avg_pool2d)
    h = xp.tanh(conv(x, w1, stride=2, padding=1))          # (2, 4, 5, 5)
    h = conv(mp(h, 2, 1, 1), w2, groups=2, dilation=2)      # (2, 4, 4, 4)
    r = R_NET if xp is np else T(R_NET)
    return (xp.tanh(ap(xp.tanh(h), 3, 1, 1)) * r).sum()


def test_hessian_vector_product_of_a_conv_net_matches_torch():
    xs = [normal(2, 3, 9, 9), normal(4, 3, 3, 3), normal(4, 2, 2, 2)]
    vs = [normal(*x.shape) for x in xs]

    def grad_dot_v(*xs):
        gs = graphc.grad(small_net, argnums=(0, 1, 2))(*xs)
        return sum(np.sum(g * v) for g, v in zip(gs, vs))
    got = graphc.grad(grad_dot_v, argnums=(0, 1, 2))(*xs)

    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    gs = torch.autograd.grad(small_net(*ts, xp=torch), ts, create_graph=True)
    want = torch.autograd.grad(sum((g * T(v)).sum() for g, v in zip(gs, vs)), ts)
    for g, t in zip(got, want):
        assert_close(g, t.numpy(), "float64")


def test_third_derivative_matches_torch_triple_backward():
    # along a scaling s of both weights; the third derivative reaches the VJPs of the
    # gradient ops' VJPs (max_pool2d_gather -> max_pool2d_grad, conv2d <-> grad ops)
    x, w1, w2 = normal(2, 3, 9, 9), normal(4, 3, 3, 3), normal(4, 2, 2, 2)

    def f(s):
        return small_net(x, w1 * s, w2 * s)
    d3 = graphc.grad(graphc.grad(graphc.grad(f)))(np.float64(0.7))
    s = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    d = small_net(T(x), T(w1) * s, T(w2) * s, xp=torch)
    for _ in range(3):
        (d,) = torch.autograd.grad(d, s, create_graph=True)
    np.testing.assert_allclose(d3, d.item(), rtol=1e-10)


# ---- the CNN of WORKLOADS.md --------------------------------------------------------------

def cnn_loss(p, x, labels):
    h = nn.max_pool2d(nn.relu(nn.conv2d(x, p["c1.w"], p["c1.b"], padding=1)), 2)
    h = nn.max_pool2d(nn.relu(nn.conv2d(h, p["c2.w"], p["c2.b"], padding=1)), 2)
    h = np.reshape(h, (h.shape[0], -1))
    h = nn.relu(nn.linear(h, p["fc1.w"], p["fc1.b"]))
    return nn.cross_entropy(nn.linear(h, p["fc2.w"], p["fc2.b"]), labels)


def cnn_params(dtype):
    """torch's default init: uniform in +-1/sqrt(fan_in)."""
    def uniform(fan_in, *shape):
        return RNG.uniform(-1, 1, shape).astype(dtype) / np.sqrt(fan_in).astype(dtype)
    return {"c1.w": uniform(27, 32, 3, 3, 3), "c1.b": uniform(27, 32),
            "c2.w": uniform(288, 64, 32, 3, 3), "c2.b": uniform(288, 64),
            "fc1.w": uniform(4096, 128, 4096), "fc1.b": uniform(4096, 128),
            "fc2.w": uniform(128, 10, 128), "fc2.b": uniform(128, 10)}


def torch_cnn(p):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 8 * 8, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10)).double()
    layers = {"c1": model[0], "c2": model[3], "fc1": model[7], "fc2": model[9]}
    with torch.no_grad():
        for key, value in p.items():
            layer, field = key.split(".")
            attr = "weight" if field == "w" else "bias"
            getattr(layers[layer], attr).copy_(T(value.astype(np.float64)))
    return model, {k: getattr(layers[k.split(".")[0]], "weight" if k.endswith("w") else "bias")
                   for k in p}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cnn_gradient_matches_torch(dtype):
    p = cnn_params(dtype)
    x = normal(4, 3, 32, 32).astype(dtype)
    labels = np.array([3, 0, 9, 3])
    loss, grads = graphc.value_and_grad(cnn_loss)(p, x, labels)

    model, tparams = torch_cnn(p)
    want = F.cross_entropy(model(T(x.astype(np.float64))), T(labels))
    want.backward()
    np.testing.assert_allclose(loss, want.item(), rtol=1e-12 if dtype == "float64" else 1e-5)
    assert grads.keys() == p.keys()
    for key, g in grads.items():
        assert_close(g, tparams[key].grad.numpy().astype(dtype), dtype)


def test_no_input_gradient_is_computed_for_the_images():
    # only the second conv needs conv2d_grad_input: the first conv's input is data
    p, x, labels = cnn_params("float32"), normal(2, 3, 32, 32).astype("float32"), np.array([1, 2])
    graph = graphc.grad(cnn_loss).lower(p, x, labels).graph
    ops = [n.op for n in graph.nodes]
    assert ops.count("conv2d_grad_input") == 1 and ops.count("conv2d_grad_weight") == 2
    assert ops.count("max_pool2d_grad") == 2
