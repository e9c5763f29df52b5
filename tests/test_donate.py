"""donate_argnums: outputs written into the arrays a caller hands over (jax.jit's
donation), only where that changes nothing the call still reads.

The reference is the same function compiled without donation, bit for bit (donation
moves where an output is stored, not how it is computed), and for an SGD step float64
eager numpy within the documented bounds of its two roundings."""
import numpy as np
import pytest

import graphc
from graphc.errors import ArgumentError

from tolerances import assert_within_bounds


def adam(p, g, m, v, t):
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * (g * g)
    m_hat = m / (1.0 - 0.9**t)
    v_hat = v / (1.0 - 0.999**t)
    return p - 1e-3 * m_hat / (np.sqrt(v_hat) + 1e-8), m, v


def _state(n=1 << 16, seed=0):
    rng = np.random.default_rng(seed)
    p, g, m = (rng.standard_normal(n, dtype=np.float32) for _ in range(3))
    return p, g, m, np.abs(rng.standard_normal(n, dtype=np.float32))


@pytest.mark.parametrize("native", [True, False])
def test_adam_steps_update_the_donated_state_in_place(native):
    step = graphc.compile(adam, donate_argnums=(0, 2, 3), options={"native": native})
    plain = graphc.compile(adam, options={"native": native})
    p, g, m, v = _state()
    want = tuple(a.copy() for a in (p, m, v))
    g0 = g.copy()
    for t in (1, 2, 3):
        want = plain(want[0], g, want[1], want[2], t)
        out = step(p, g, m, v, t)
        assert all(o is a for o, a in zip(out, (p, m, v)))
        p, m, v = out
        for got, ref in zip(out, want):
            np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(g, g0)  # not donated: untouched


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("case", ["read-only", "strided", "shared"])
def test_an_array_unfit_to_donate_is_left_alone(case):
    step = graphc.compile(adam, donate_argnums=(0, 2, 3))
    plain = graphc.compile(adam)
    p, g, m, v = _state(seed=1)
    if case == "read-only":
        p = _readonly(p)
    elif case == "strided":
        p = np.repeat(p, 2)[::2]
    else:
        m = p  # the same array twice: writing one would change the other's reads
    before = p.copy()
    want = plain(p, g, m.copy(), v.copy(), 1)
    out = step(p, g, m, v, 1)
    for got, ref in zip(out, want):
        np.testing.assert_array_equal(got, ref)
    assert out[0] is not p and out[2] is v  # v, fit, is still taken
    np.testing.assert_array_equal(p, before)
    if case == "shared":
        assert out[1] is not m


def test_an_input_still_read_or_returned_keeps_its_buffer():
    def f(x, y):
        z = np.exp(x) + y
        return z, np.sum(x * z)  # x read again after z is made

    def g(x):
        return x * 2.0, x  # x itself is an output

    x = np.linspace(-1, 1, 4096, dtype=np.float32)
    y = np.ones_like(x)
    for fn, args in ((f, (x, y)), (g, (x,))):
        donated = graphc.compile(fn, donate_argnums=0)
        plain = graphc.compile(fn)
        kept = [a.copy() for a in args]
        want = plain(*kept)
        got = donated(*[a.copy() for a in args])
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    out = graphc.compile(g, donate_argnums=0)(x)
    assert out[0] is not x and np.array_equal(out[1], x)


def test_a_donated_pytree_gives_every_array():
    def sgd(params, grads):
        return {k: params[k] - 0.1 * grads[k] for k in params}

    rng = np.random.default_rng(2)
    params = {k: rng.standard_normal((512, 256), dtype=np.float32) for k in "ab"}
    grads = {k: rng.standard_normal((512, 256), dtype=np.float32) for k in "ab"}
    kept = {k: a.copy() for k, a in params.items()}
    want = graphc.compile(sgd)(kept, grads)
    out = graphc.compile(sgd, donate_argnums=0)(params, grads)
    for k in "ab":
        assert out[k] is params[k]
        np.testing.assert_array_equal(out[k], want[k])
        step = 0.1 * grads[k].astype(np.float64)
        exact = kept[k].astype(np.float64) - step
        # 0.1 rounded to float32 (under half an ulp of the product), the product, the
        # difference
        assert_within_bounds(out[k], exact, np.float32, ("mul", step), ("mul", step),
                             ("sub", exact))


def test_check_mode_compares_against_the_inputs_before_they_are_written():
    step = graphc.compile(adam, donate_argnums=(0, 2, 3), check=True)
    p, g, m, v = _state(seed=3)
    out = step(p, g, m, v, 1)
    assert out[0] is p


@pytest.mark.parametrize("bad", ["0", (-1,), (0, 0), 1.0])
def test_bad_donate_argnums_are_refused_at_the_compile_call(bad):
    with pytest.raises(ArgumentError, match="donate_argnums"):
        graphc.compile(adam, donate_argnums=bad)


def test_donating_an_argument_the_call_does_not_pass_names_it():
    f = graphc.compile(lambda x: x * 2.0, donate_argnums=3)
    with pytest.raises(ArgumentError, match="names argument 3"):
        f(np.ones(4, np.float32))


def test_the_donation_is_in_the_generated_code_and_its_options():
    step = graphc.compile(adam, donate_argnums=(0, 2, 3))
    low = step.lower(*_state(), 1)
    assert low.options.donate == (0, 2, 3)
    assert "_donatable(p, (g, m, v, ))" in low.source
