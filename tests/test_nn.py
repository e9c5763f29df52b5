"""graphc.nn against torch.nn.functional.

Every function runs twice, eagerly on numpy arrays and compiled, and both results are
compared with torch computing in float64 from the same numpy inputs. A float32 input
must give a float32 result within float32 rounding of the float64 reference; a float64
input must match it to ~1e-10.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import graphc
from graphc import nn

FLOATS = ["float32", "float64"]
# (rtol, atol) against a float64 reference; the inputs are O(1), so outputs are O(1)
# to O(10) (conv sums) and float32 rounding stays far below these
TOL = {"float32": (1e-5, 1e-5), "float64": (1e-10, 1e-10)}


# ---- helpers ------------------------------------------------------------------------

def randn(shape, dtype, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def t64(x):
    """The torch float64 (or int64, for labels) tensor of a numpy array."""
    x = np.asarray(x)
    return torch.from_numpy(x.astype(np.float64 if x.dtype.kind == "f" else np.int64))


def close(got, want, dtype):
    """`got` (graphc) has the input dtype, `want`'s shape, and its values."""
    got = np.asarray(got)
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, want {dtype}"
    assert got.shape == want.shape, f"shape {got.shape}, torch gives {want.shape}"
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def eager_and_compiled(fn, *args):
    """Run `fn` eagerly on numpy arrays and compiled; both results, eager first."""
    eager = fn(*args)
    assert isinstance(eager, (np.ndarray, np.generic)), type(eager)
    compiled = graphc.compile(fn)(*args)
    return eager, compiled


def check(fn, args, want, dtype):
    """graphc's `fn(*args)`, eager and compiled, against torch's `want`."""
    for got in eager_and_compiled(fn, *args):
        close(got, want, dtype)


def ops_of(fn, *args):
    """The primitive ops in the traced graph of `fn`."""
    graph = graphc.trace(fn, *args)
    assert all(node.op in graphc.ops.OPS for node in graph.nodes)
    return {node.op for node in graph.nodes}


# ---- activations --------------------------------------------------------------------

# wide inputs (|x| up to 30) reach the saturated ends of sigmoid, tanh and erf
ACTIVATIONS = [
    ("relu", nn.relu, F.relu),
    ("gelu-tanh", lambda x: nn.gelu(x, approximate="tanh"),
     lambda t: F.gelu(t, approximate="tanh")),
    ("gelu-default-is-tanh", nn.gelu, lambda t: F.gelu(t, approximate="tanh")),
    ("gelu-none", lambda x: nn.gelu(x, approximate="none"),
     lambda t: F.gelu(t, approximate="none")),
    ("silu", nn.silu, F.silu),
    ("sigmoid", nn.sigmoid, torch.sigmoid),
    ("erf", nn.erf, torch.erf),
]


@pytest.mark.parametrize("scale", [1.0, 10.0], ids=["unit", "wide"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("ours,theirs", [a[1:] for a in ACTIVATIONS],
                         ids=[a[0] for a in ACTIVATIONS])
def test_activations(ours, theirs, dtype, scale):
    x = randn((4, 7), dtype, scale=scale)
    check(ours, (x,), theirs(t64(x)), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_sigmoid_does_not_overflow(dtype):
    # exp(-x) overflows float32 at x < -89: the primitive must stay finite and exact
    x = np.array([-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0], dtype)
    with np.errstate(over="raise"):
        check(nn.sigmoid, (x,), torch.sigmoid(t64(x)), dtype)
        check(nn.silu, (x,), F.silu(t64(x)), dtype)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError):
        nn.gelu(np.ones(3), approximate="fast")


# ---- softmax family -----------------------------------------------------------------

@pytest.mark.parametrize("axis", [-1, 0, 1], ids=lambda a: f"axis{a}")
@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_and_log_softmax(dtype, axis):
    x = randn((3, 5, 4), dtype, scale=5.0)
    check(lambda a: nn.softmax(a, axis=axis), (x,), F.softmax(t64(x), dim=axis), dtype)
    check(lambda a: nn.log_softmax(a, axis=axis), (x,), F.log_softmax(t64(x), dim=axis),
          dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_is_stable_for_large_logits(dtype):
    # naive exp(1000) overflows; subtracting the row max keeps it exact
    x = np.array([[1000.0, 999.0, -1000.0], [-1e4, -1e4 + 1, -1e4 + 2]], dtype)
    with np.errstate(over="raise"):
        check(nn.softmax, (x,), F.softmax(t64(x), dim=-1), dtype)
        check(nn.log_softmax, (x,), F.log_softmax(t64(x), dim=-1), dtype)


@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keepdims"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp(dtype, axis, keepdims):
    x = randn((3, 4, 5), dtype, scale=10.0)
    t = t64(x)
    if axis is None:  # torch has no dim=None: reduce the flattened tensor
        want = torch.logsumexp(t.reshape(-1), 0)
        want = want.reshape((1,) * x.ndim) if keepdims else want
    else:
        want = torch.logsumexp(t, dim=axis, keepdim=keepdims)
    check(lambda a: nn.logsumexp(a, axis=axis, keepdims=keepdims), (x,), want, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp_infinite_rows(dtype):
    # a row of all -inf gives -inf (not nan from -inf - -inf), +inf gives +inf,
    # and huge finite values do not overflow, as in torch.logsumexp
    x = np.array([[-np.inf, -np.inf, -np.inf],
                  [-np.inf, 0.0, 1.0],
                  [np.inf, 0.0, 1.0],
                  [1e4, 1e4, -np.inf]], dtype)
    want = torch.logsumexp(t64(x), dim=-1)
    assert want[0] == -np.inf
    with np.errstate(divide="ignore"):  # log(0) for the all -inf row, as torch
        check(lambda a: nn.logsumexp(a, axis=-1), (x,), want, dtype)


# ---- normalization, linear, losses --------------------------------------------------

@pytest.mark.parametrize("affine", ["weight-bias", "weight-only", "none"])
@pytest.mark.parametrize("axis", [-1, (-2, -1)], ids=["last", "last-two"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_layer_norm(dtype, axis, affine):
    x = randn((2, 3, 6), dtype, scale=3.0) + np.asarray(2.0, dtype)  # a non-zero mean
    norm_shape = x.shape[-1:] if axis == -1 else x.shape[-2:]
    w = randn(norm_shape, dtype, seed=1) if affine != "none" else None
    b = randn(norm_shape, dtype, seed=2) if affine == "weight-bias" else None
    want = F.layer_norm(t64(x), norm_shape, None if w is None else t64(w),
                        None if b is None else t64(b), eps=1e-5)
    if b is None:
        check(lambda a, ww: nn.layer_norm(a, ww, axis=axis), (x, w), want, dtype)
    else:
        check(lambda a, ww, bb: nn.layer_norm(a, ww, bb, axis=axis), (x, w, b), want, dtype)


@pytest.mark.parametrize("eps", [1e-5, 1e-2])
@pytest.mark.parametrize("dtype", FLOATS)
def test_layer_norm_eps_matters_for_small_variance(dtype, eps):
    # variance ~1e-6, below or near eps: the result depends on eps, as torch's does
    # (centred on 0: an offset would measure float32 cancellation, not eps)
    x = randn((2, 8), dtype, scale=1e-3)
    want = F.layer_norm(t64(x), (8,), eps=eps)
    check(lambda a: nn.layer_norm(a, eps=eps), (x,), want, dtype)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("xshape", [(5,), (4, 5), (2, 3, 5)], ids=str)
@pytest.mark.parametrize("dtype", FLOATS)
def test_linear(dtype, xshape, bias):
    x, w = randn(xshape, dtype), randn((3, 5), dtype, seed=1)  # weight is (out, in)
    b = randn((3,), dtype, seed=2)
    if bias:
        check(nn.linear, (x, w, b), F.linear(t64(x), t64(w), t64(b)), dtype)
    else:
        check(nn.linear, (x, w), F.linear(t64(x), t64(w)), dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_mse_loss(dtype, reduction):
    p, y = randn((4, 3), dtype), randn((4, 3), dtype, seed=1)
    check(lambda a, b: nn.mse_loss(a, b, reduction=reduction), (p, y),
          F.mse_loss(t64(p), t64(y), reduction=reduction), dtype)


@pytest.mark.parametrize("label_dtype", ["int64", "int32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_cross_entropy(dtype, reduction, label_dtype):
    logits = randn((6, 5), dtype, scale=4.0)
    labels = np.array([0, 4, 2, 2, 1, 3], label_dtype)
    want = F.cross_entropy(t64(logits), t64(labels), reduction=reduction)
    check(lambda z, y: nn.cross_entropy(z, y, reduction=reduction), (logits, labels),
          want, dtype)


def test_cross_entropy_with_constant_labels_compiled():
    # labels captured from the enclosing scope become a constant of the graph
    logits, labels = randn((3, 4), "float64"), np.array([3, 0, 1])
    got = graphc.compile(lambda z: nn.cross_entropy(z, labels))(logits)
    close(got, F.cross_entropy(t64(logits), t64(labels)), "float64")


def test_loss_rejects_unknown_reduction():
    with pytest.raises(ValueError):
        nn.mse_loss(np.ones(3), np.ones(3), reduction="max")


# ---- convolution and pooling --------------------------------------------------------

CONV = [  # (x shape, weight shape, keyword arguments)
    ("plain", (2, 3, 7, 7), (4, 3, 3, 3), {}),
    ("stride2", (2, 3, 8, 7), (4, 3, 3, 3), {"stride": 2}),
    ("padding1", (1, 3, 5, 5), (2, 3, 3, 3), {"padding": 1}),
    ("stride-pad-tuples", (1, 2, 9, 8), (3, 2, 3, 2), {"stride": (2, 1), "padding": (1, 0)}),
    ("dilation2", (1, 2, 9, 9), (3, 2, 3, 3), {"dilation": 2, "padding": 2}),
    ("groups2", (2, 4, 6, 6), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    ("depthwise", (1, 3, 6, 6), (3, 1, 3, 3), {"groups": 3, "stride": 2, "padding": 1}),
    ("1x1", (2, 5, 4, 4), (3, 5, 1, 1), {}),
    ("everything", (2, 4, 11, 10), (4, 2, 3, 3),
     {"stride": 2, "padding": (2, 1), "dilation": (2, 1), "groups": 2}),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("xs,ws,kw", [c[1:] for c in CONV], ids=[c[0] for c in CONV])
def test_conv2d(xs, ws, kw, dtype, bias):
    x, w = randn(xs, dtype), randn(ws, dtype, seed=1)
    b = randn((ws[0],), dtype, seed=2) if bias else None
    want = F.conv2d(t64(x), t64(w), None if b is None else t64(b), **kw)
    if bias:
        check(lambda a, ww, bb: nn.conv2d(a, ww, bb, **kw), (x, w, b), want, dtype)
    else:
        check(lambda a, ww: nn.conv2d(a, ww, **kw), (x, w), want, dtype)


def test_conv2d_shape_errors():
    x = np.ones((1, 3, 5, 5))
    with pytest.raises(graphc.ShapeError):  # 4 channels do not split into 3 groups
        nn.conv2d(np.ones((1, 4, 5, 5)), np.ones((3, 1, 3, 3)), groups=3)
    with pytest.raises(graphc.ShapeError):  # the kernel is larger than the input
        graphc.compile(lambda a, w: nn.conv2d(a, w))(x, np.ones((2, 3, 7, 7)))


POOL = [  # (x shape, kernel_size, stride, padding)
    ("k2", (2, 3, 6, 6), 2, None, 0),
    ("k3-s1", (1, 2, 5, 7), 3, 1, 0),
    ("k3-s2-p1", (2, 2, 7, 7), 3, 2, 1),
    ("k2-s1-p1", (1, 1, 4, 4), 2, 1, 1),
    ("rect", (1, 2, 8, 9), (2, 3), (2, 1), (1, 1)),
    ("odd-tail", (1, 1, 7, 5), 2, None, 0),  # floor mode drops the last row/column
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("xs,k,s,p", [c[1:] for c in POOL], ids=[c[0] for c in POOL])
def test_pooling(xs, k, s, p, dtype):
    # shifted so that padded windows see negative values only: max pooling must
    # pad with -inf (not 0), and average pooling counts the padded zeros (torch's
    # count_include_pad=True)
    x = randn(xs, dtype) - np.asarray(3.0, dtype)
    t = t64(x)
    check(lambda a: nn.max_pool2d(a, k, stride=s, padding=p), (x,),
          F.max_pool2d(t, k, stride=s, padding=p), dtype)
    check(lambda a: nn.avg_pool2d(a, k, stride=s, padding=p), (x,),
          F.avg_pool2d(t, k, stride=s, padding=p), dtype)


# ---- a small network: the pieces together -------------------------------------------

def small_cnn(params, x):
    h = nn.relu(nn.conv2d(x, params["conv_w"], params["conv_b"], padding=1))
    h = nn.max_pool2d(h, 2)
    h = nn.avg_pool2d(h, 2).reshape(x.shape[0], -1)
    h = nn.layer_norm(h, params["ln_w"], params["ln_b"])
    return nn.log_softmax(nn.gelu(nn.linear(h, params["fc_w"], params["fc_b"])))


def torch_small_cnn(params, x):
    p = {k: t64(v) for k, v in params.items()}
    h = F.relu(F.conv2d(t64(x), p["conv_w"], p["conv_b"], padding=1))
    h = F.avg_pool2d(F.max_pool2d(h, 2), 2).reshape(x.shape[0], -1)
    h = F.layer_norm(h, h.shape[-1:], p["ln_w"], p["ln_b"])
    return F.log_softmax(F.gelu(F.linear(h, p["fc_w"], p["fc_b"]), approximate="tanh"), -1)


@pytest.mark.parametrize("dtype", FLOATS)
def test_small_cnn_matches_torch(dtype):
    params = {"conv_w": randn((4, 3, 3, 3), dtype, 1), "conv_b": randn((4,), dtype, 2),
              "ln_w": randn((16,), dtype, 3), "ln_b": randn((16,), dtype, 4),
              "fc_w": randn((5, 16), dtype, 5), "fc_b": randn((5,), dtype, 6)}
    x = randn((2, 3, 8, 8), dtype)
    check(small_cnn, (params, x), torch_small_cnn(params, x), dtype)


# ---- what the compiled graphs are made of -------------------------------------------

def test_softmax_decomposes_into_primitives():
    x = randn((3, 4), "float32")
    assert {"max", "sub", "exp", "sum", "div"} <= ops_of(nn.softmax, x)
    assert {"max", "sub", "exp", "sum", "log"} <= ops_of(nn.log_softmax, x)


def test_layer_norm_decomposes_into_primitives():
    x, w, b = randn((3, 4), "float32"), randn((4,), "float32"), randn((4,), "float32")
    found = ops_of(nn.layer_norm, x, w, b)
    # mean and variance are sums divided by the count; then (x - mean) / sqrt(var + eps)
    assert {"sum", "div", "sub", "mul", "add", "sqrt"} <= found
    assert "layer_norm" not in found


@pytest.mark.parametrize("fn,want", [
    (lambda x: nn.gelu(x, approximate="none"), {"erf", "mul", "add"}),
    (lambda x: nn.gelu(x, approximate="tanh"), {"tanh", "mul", "add"}),
    (nn.sigmoid, {"sigmoid"}),
    (nn.silu, {"sigmoid", "mul"}),
    (nn.relu, {"gt", "where"}),  # where, not maximum: the gradient at 0 is 0
    (lambda x: nn.logsumexp(x, axis=-1), {"max", "exp", "sum", "log", "where"}),
], ids=["gelu-none", "gelu-tanh", "sigmoid", "silu", "relu", "logsumexp"])
def test_activation_primitives(fn, want):
    assert want <= ops_of(fn, randn((3, 4), "float32"))


def test_conv_pool_and_cross_entropy_primitives():
    x, w, b = randn((1, 2, 6, 6), "float32"), randn((3, 2, 3, 3), "float32"), \
        randn((3,), "float32")
    assert {"conv2d", "reshape", "add"} <= ops_of(nn.conv2d, x, w, b)
    assert ops_of(lambda a: nn.max_pool2d(a, 2), x) == {"max_pool2d"}
    assert ops_of(lambda a: nn.avg_pool2d(a, 2), x) == {"avg_pool2d"}
    # the label pick is one gather (logp[np.arange(n), labels])
    assert "gather" in ops_of(nn.cross_entropy, randn((3, 4), "float32"),
                              np.array([0, 1, 3]))


F32_GRAPHS = [
    ("softmax", nn.softmax, [(3, 4)]), ("log_softmax", nn.log_softmax, [(3, 4)]),
    ("logsumexp", lambda x: nn.logsumexp(x, axis=-1), [(3, 4)]),
    ("layer_norm", nn.layer_norm, [(3, 4)]),
    ("gelu-tanh", nn.gelu, [(3, 4)]), ("gelu-none", lambda x: nn.gelu(x, "none"), [(3, 4)]),
    ("silu", nn.silu, [(3, 4)]), ("mse_loss", nn.mse_loss, [(3, 4), (3, 4)]),
    ("linear", nn.linear, [(3, 4), (2, 4), (2,)]),
    ("conv2d", nn.conv2d, [(1, 2, 5, 5), (3, 2, 3, 3), (3,)]),
    ("avg_pool2d", lambda x: nn.avg_pool2d(x, 3, padding=1), [(1, 2, 5, 5)]),
]


@pytest.mark.parametrize("fn,shapes", [g[1:] for g in F32_GRAPHS], ids=[g[0] for g in F32_GRAPHS])
def test_float32_stays_float32_inside_the_graph(fn, shapes):
    # no float64 (or float16) intermediate sneaks in through a Python constant: the
    # constants in these functions are weak scalars, so float32 math stays float32
    graph = graphc.trace(fn, *[randn(s, "float32", seed=i) for i, s in enumerate(shapes)])
    floats = {n.output.type.dtype for n in graph.nodes} & graphc.dtypes.FLOATS
    assert floats == {"float32"}
