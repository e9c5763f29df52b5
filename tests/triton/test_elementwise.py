"""The Triton elementwise forms and device library, run under TRITON_INTERPRET=1.

Each case builds one small kernel from source text (a form's expression pasted into
a load-compute-store body), launches it once over one block of up to 2**16
elements, and compares with numpy: `OPS[op].impl` on the same inputs for the forms,
numpy in float64 for the library's accuracy table (`library` module docstring).
"""
import linecache
import os
import zlib

import numpy as np
import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported
pytest.importorskip("triton")
torch = pytest.importorskip("torch")

from graphc.backends.triton.elementwise import COMPUTE, ELEMENTWISE, STORAGE  # noqa: E402
from graphc.ir.types import TensorType  # noqa: E402
from graphc.ops import OPS, Kind, Rounding  # noqa: E402

# the interpreter computes with numpy, which warns about the nans and infs it is fed
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

TESTED = ("float16", "float32", "float64", "int32", "int64", "bool")
BLOCK = 2**16
# precision (p) and smallest normal exponent of the float dtypes, for ulps
FLOAT_FORMAT = {"float16": (11, -14), "float32": (24, -126), "float64": (53, -1022)}

# ---- the harness: a kernel per expression ---------------------------------------------

_KERNEL = '''\
import triton
import triton.language as tl
from graphc.backends.triton import library as lib


@triton.jit
def kernel({pointers}, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
{loads}
    result = {expr}
    tl.store(out_ptr + offs, result.to({store}), mask=mask)
'''
_made = {"count": 0}


def make_kernel(expr: str, ins: list[str], out: str, scalar: tuple[bool, ...]):
    """A @triton.jit kernel computing `expr` of a0, a1, ... (inputs of dtypes `ins`,
    a 0-d load where `scalar` says so) into an `out` array."""
    loads = []
    for i, dt in enumerate(ins):
        at = f"x{i}" if scalar[i] else f"x{i} + offs, mask=mask"
        loads.append(f"    a{i} = tl.load({at}).to({COMPUTE[dt]})")
    src = _KERNEL.format(pointers=", ".join(f"x{i}" for i in range(len(ins))),
                         loads="\n".join(loads), expr=expr, store=STORAGE[out])
    _made["count"] += 1
    fname = f"<graphc-triton-test-{_made['count']}>"
    # Triton reads a kernel's source with inspect, which asks linecache
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    ns: dict = {}
    exec(compile(src, fname, "exec"), ns)
    return ns["kernel"]


def run(expr: str, arrays: list[np.ndarray], out: str,
        scalar: tuple[bool, ...] | None = None) -> np.ndarray:
    """Launch the kernel of `expr` once (one program, one block) on `arrays`."""
    scalar = scalar or (False,) * len(arrays)
    ins = [a.dtype.name for a in arrays]
    n = max(a.size for a in arrays)
    assert n <= BLOCK
    kernel = make_kernel(expr, ins, out, scalar)
    tensors = [torch.from_numpy(np.ascontiguousarray(a).reshape(-1)) for a in arrays]
    result = torch.empty(n, dtype=getattr(torch, out))
    kernel[(1,)](*tensors, result, n, BLOCK=BLOCK)
    return result.numpy()


# ---- ulps ------------------------------------------------------------------------------

def ulps(got: np.ndarray, want: np.ndarray, dtype: str) -> np.ndarray:
    """|got - want| in ulps of `dtype` at `want` (float64, or numpy's value); equal
    values (infinities too) and nan against nan are 0, a nan against a number inf."""
    p, emin = FLOAT_FORMAT[dtype]
    got, want = got.astype(np.float64), want.astype(np.float64)
    with np.errstate(all="ignore"):
        _, e = np.frexp(want)
        ulp = np.ldexp(1.0, np.maximum(e - 1, emin) - (p - 1))
        err = np.abs(got - want) / ulp
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    return np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))


# ---- inputs ----------------------------------------------------------------------------

SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0,
                    1.5, -1.5, 2.5, -2.5, 3.0, 1e-3, -1e-3])
_INT_EDGES = {"int32": [0, 1, -1, 2, -2, 7, -7, 2**31 - 1, -2**31],
              "int64": [0, 1, -1, 2, -2, 7, -7, 2**63 - 1, -2**63]}


def float_sample(rng, op, i: int, dtype: str, n: int) -> np.ndarray:
    dom = op.domain_of(i)
    x = dom.sample(rng, (n,))
    x[:len(SPECIAL)] = SPECIAL
    x[len(SPECIAL):len(SPECIAL) + 64] = np.round(x[len(SPECIAL):len(SPECIAL) + 64] * 4) / 4
    return x.astype(dtype)


def int_sample(rng, name: str, i: int, dtype: str, n: int) -> np.ndarray:
    if name == "pow":  # numpy refuses negative exponents; small ones keep it interesting
        x = rng.integers(-6, 7, n) if i == 0 else rng.integers(0, 70, n)
    else:
        x = rng.integers(-50, 51, n)
        x[: n // 4] = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, n // 4,
                                   dtype=dtype)
    x = x.astype(dtype)
    if name != "pow":
        edges = np.array(_INT_EDGES[dtype], dtype=dtype)
        x[:len(edges) ** 2] = np.repeat(edges, len(edges)) if i == 0 else \
            np.tile(edges, len(edges))
    return x


def op_inputs(name: str, dtype: str, n: int = 4096) -> list[np.ndarray]:
    op = OPS[name]
    # crc32, not hash(): str hashes change per process, and so would the samples
    rng = np.random.default_rng(zlib.crc32(f"{name}/{dtype}".encode()))
    if name == "where":
        return [rng.random(n) < 0.5] + [float_sample(rng, op, 0, dtype, n)
                                        if dtype in FLOAT_FORMAT else
                                        int_sample(rng, name, 0, dtype, n)
                                        if dtype != "bool" else rng.random(n) < 0.5
                                        for _ in range(2)]
    arrays = []
    for i in range(op.num_inputs):
        if dtype == "bool":
            arrays.append(rng.random(n) < 0.5)
        elif dtype in FLOAT_FORMAT:
            arrays.append(float_sample(rng, op, i, dtype, n))
        else:
            arrays.append(int_sample(rng, name, i, dtype, n))
    if op.num_inputs == 2 and dtype in FLOAT_FORMAT:
        arrays[1][len(SPECIAL):2 * len(SPECIAL)] = SPECIAL  # specials meet numbers
        arrays[1][: len(SPECIAL)] = np.roll(SPECIAL, 3)     # and each other
    return arrays


# ---- the forms against OPS[op].impl ----------------------------------------------------

# ulp bound of a TRANSCENDENTAL op against numpy (numpy's own result is within an
# ulp of the exact one): the library's bound plus numpy's ulp; the tl functions are
# numpy's under the interpreter
LIB_BOUND = {"exp": 1.5, "log": 1.5, "expm1": 2, "log1p": 2, "tanh": 3, "sigmoid": 2.5,
             # two correctly rounded steps (1 / sqrt)
             "rsqrt": 1.5}
# tl.sin, tl.cos, tl.erf in float32: numpy's float32 functions under the interpreter (4
# ulp, as tests/tolerances.py allows them), the GPU's on a GPU; float64's are libm's
TL_FLOAT32 = {"sin": 4, "cos": 4, "erf": 4}
CASTS = ("bool", "int32", "int64", "float16", "float32", "float64")


def _bound(name: str, dtype: str, arrays: list[np.ndarray]) -> np.ndarray | float:
    if OPS[name].rounding is not Rounding.TRANSCENDENTAL:
        return 0.0
    if dtype == "float16":
        # a float32 result within a few float32 ulps, rounded once more: one float16
        # ulp; sigmoid's reference takes three float16 roundings (exp, 1 + e, the
        # division), each up to half an ulp, the first two amplified by at most 2
        return 3.0 if name == "sigmoid" else 1.0
    if name == "pow":
        # exp(y log x): the error grows with the condition number abs(y log x);
        # float32 is computed in float64
        if dtype == "float32":
            return 1.0
        with np.errstate(all="ignore"):
            cond = np.abs(arrays[1].astype(np.float64) * np.log(np.abs(arrays[0])))
        return 2.0 + np.nan_to_num(cond, nan=0.0, posinf=0.0)
    if dtype == "float32":  # against float64 rounded to float32: half an ulp more
        return 0.5 + LIB_BOUND.get(name, TL_FLOAT32.get(name, 0))
    return 1.0 + LIB_BOUND.get(name, 0)


def _cases():
    for name in sorted(ELEMENTWISE):
        op = OPS[name]
        for dtype in TESTED:
            if dtype in op.dtypes or (name == "where"):
                if name == "cast":
                    yield from ((name, dtype, to) for to in CASTS)
                elif name == "round":
                    yield from ((name, dtype, d) for d in (0, 2, -1, 5) if dtype != "bool")
                else:
                    yield name, dtype, None


@pytest.mark.parametrize("name,dtype,extra", list(_cases()))
def test_form_matches_reference(name, dtype, extra):
    if name == "cast":
        attrs = {"dtype": extra}
    elif name == "round":
        attrs = {"decimals": extra}
    else:
        attrs = {}
    arrays = op_inputs(name, dtype)
    ins = [TensorType(a.shape, a.dtype.name) for a in arrays]
    out = OPS[name].infer(tuple(ins), attrs)[0]
    expr = ELEMENTWISE[name]([f"a{i}" for i in range(len(arrays))], attrs, ins, out)
    got = run(expr, arrays, out.dtype)
    exact = dtype == "float32" and OPS[name].rounding is Rounding.TRANSCENDENTAL
    with np.errstate(all="ignore"):
        if exact:  # against float64, rounded once: numpy's float32 functions are a
            # few ulps off themselves (its SIMD log gave 3.4 at 0.8039123)
            wide = [a.astype(np.float64) if a.dtype == np.float32 else a for a in arrays]
            want = np.asarray(OPS[name].impl(*wide, **attrs)).astype(np.float32)
        else:
            want = np.asarray(OPS[name].impl(*arrays, **attrs))
    if out.dtype not in FLOAT_FORMAT:
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, _shown(expr, arrays, got, want, bad)
        return
    err = ulps(got, want, out.dtype)
    bound = _bound(name, dtype, arrays)
    bad = np.flatnonzero(err > bound)
    assert bad.size == 0, _shown(expr, arrays, got, want, bad)
    if OPS[name].rounding is not Rounding.TRANSCENDENTAL and name not in ("maximum", "minimum"):
        # exact ops keep the sign of a zero too (IEEE's max and min of +-0 are
        # numpy's only on some of its SIMD paths: see elementwise's docstring)
        sign = (got == 0) & (np.signbit(got) != np.signbit(want))
        assert not sign.any(), _shown(expr, arrays, got, want, np.flatnonzero(sign))


def _shown(expr, arrays, got, want, bad) -> str:
    i = bad[:5]
    ins = ", ".join(f"{a[i]!r}" for a in arrays)
    return f"{expr}: {bad.size} mismatches, inputs {ins}: got {got[i]!r}, numpy {want[i]!r}"


def test_scalar_argument_broadcasts():
    # a 0-d value meets a block: the forms leave broadcasting to Triton
    x = np.linspace(-3, 3, 1000).astype(np.float32)
    two = np.array([2.0], np.float32)
    f32 = TensorType((), "float32")
    for name in ("pow", "maximum", "floor_divide", "remainder", "add"):
        expr = ELEMENTWISE[name](["a0", "a1"], {}, [f32, f32], f32)
        got = run(expr, [x, two], "float32", scalar=(False, True))
        with np.errstate(all="ignore"):
            want = OPS[name].impl(x, np.float32(2.0))
        assert np.all(ulps(got, want, "float32") <= _bound(name, "float32", [x, two])), name


def test_every_elementwise_op_has_a_form():
    missing = sorted(n for n, o in OPS.items()
                     if o.kind is Kind.ELEMENTWISE and n not in ELEMENTWISE)
    assert not missing, f"ELEMENTWISE has no Triton form for {missing}"


def test_every_form_is_an_elementwise_op():
    assert all(OPS[n].kind is Kind.ELEMENTWISE for n in ELEMENTWISE)


# ---- the library over the float32 range ------------------------------------------------

def float32_range(n: int = BLOCK) -> np.ndarray:
    """Dense float32 samples: bit patterns spread over all finite values of both
    signs (denormals included), values near 0 and near 1, the thresholds where the
    library switches branches or results overflow, and the specials."""
    rng = np.random.default_rng(13)
    pos = np.linspace(0, 0x7F7FFFFF, n // 4, dtype=np.int64).astype(np.uint32)
    spread = pos.view(np.float32)
    near0 = rng.uniform(-2, 2, n // 4).astype(np.float32)
    tiny = (rng.uniform(-1, 1, n // 8) * 2.0 ** rng.integers(-40, 0, n // 8)).astype(np.float32)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 3.4028235e38, -3.4028235e38,
                      1.1754944e-38, 1e-45, -1e-45, 88.72283, 88.72284, -87.33655,
                      -103.97208, -103.97209, -88.72284, 1.0, -1.0, 0.5, -0.5,
                      0.41421356, -0.29289323, 9.0, -9.0, 20.0, -20.0, 0.99999994],
                     np.float32)
    steps = []
    for t in (1.0, 0.41421356, -0.29289323, 88.72283, -87.33655, -103.97208):
        steps.append(np.float32(t) + np.arange(-20, 21, dtype=np.float32)
                     * np.spacing(np.float32(t)))
    x = np.concatenate([spread, -spread, near0, tiny, edges, *steps])
    return x[:n].astype(np.float32)


def _measure(fn: str, reference, x: np.ndarray, *more: np.ndarray) -> float:
    got = run(f"lib.{fn}({', '.join(f'a{i}' for i in range(1 + len(more)))})",
              [x, *more], "float32")
    with np.errstate(all="ignore"):
        want = reference(x.astype(np.float64), *(m.astype(np.float64) for m in more))
    want32 = want.astype(np.float32)
    # where float64's exact value rounds to +-inf in float32, only inf is right
    err = np.where(np.isinf(want32) & ~np.isinf(want), ulps(got, want32, "float32"),
                   ulps(got, want, "float32"))
    return float(err.max())


def _sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# function -> (numpy float64 reference, the bound stated in library's docstring)
LIBRARY = {"exp": (np.exp, 1.5), "log": (np.log, 1.5), "expm1": (np.expm1, 2.0),
           "log1p": (np.log1p, 2.0), "tanh": (np.tanh, 3.0), "sigmoid": (_sigmoid64, 2.5)}


@pytest.mark.parametrize("fn", sorted(LIBRARY))
def test_library_accuracy_over_float32(fn):
    reference, bound = LIBRARY[fn]
    err = _measure(fn, reference, float32_range())
    assert err <= bound, f"lib.{fn}: {err:.2f} ulp over the float32 range (bound {bound})"


def pow_samples() -> tuple[np.ndarray, np.ndarray]:
    """Bases over the float32 range against exponents that are small integers,
    halves, general values and specials, so results span denormals to overflow."""
    rng = np.random.default_rng(7)
    x = float32_range()
    n = x.size
    y = np.concatenate([rng.integers(-8, 9, n // 4).astype(np.float32),
                        (rng.integers(-16, 17, n // 4) / 2).astype(np.float32),
                        rng.uniform(-4, 4, n // 4).astype(np.float32),
                        rng.permutation(x)[: n - 3 * (n // 4)]])
    y = rng.permutation(y)
    # bases near 1 with large exponents: the results that need float64's digits
    k = 4096
    x[:k] = (1 + rng.uniform(-1e-2, 1e-2, k)).astype(np.float32)
    y[:k] = rng.uniform(-8000, 8000, k).astype(np.float32)
    return x, y


def test_library_pow_over_float32():
    x, y = pow_samples()
    err = _measure("pow", np.power, x, y)
    assert err <= 1.0, f"lib.pow: {err:.2f} ulp (bound 1)"
    # numpy's special cases, exactly: compare with numpy's own float32 power
    got = run("lib.pow(a0, a1)", [x, y], "float32")
    with np.errstate(all="ignore"):
        want = np.power(x, y)
    special = ~np.isfinite(want) | (want == 0) | ~np.isfinite(x) | ~np.isfinite(y) | (x == 0)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert np.all(same[special]), "lib.pow differs from numpy's special cases"
    zeros = special & (want == 0)
    assert np.all(np.signbit(got[zeros]) == np.signbit(want[zeros]))


@pytest.mark.parametrize("fn", ["rint", "sign"])
def test_library_exact_unary(fn):
    x = np.concatenate([float32_range(BLOCK - 4096),
                        (np.arange(-2048, 2048) / 4).astype(np.float32)])
    got = run(f"lib.{fn}(a0)", [x], "float32")
    want = np.rint(x) if fn == "rint" else np.sign(x)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("fn", ["floor_divide", "remainder"])
def test_library_floored_division_float32(fn):
    rng = np.random.default_rng(3)
    x = float32_range()
    y = rng.permutation(x)
    y[: 8192] = rng.integers(-9, 10, 8192)
    x[8192:16384] = rng.integers(-100, 101, 8192)
    got = run(f"lib.{fn}(a0, a1)", [x, y], "float32")
    with np.errstate(all="ignore"):
        want = getattr(np, fn)(x, y)
    assert np.array_equal(got, want, equal_nan=True), fn
    assert np.array_equal(np.signbit(got), np.signbit(want)), fn
