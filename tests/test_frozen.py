"""Nothing is frozen silently (issue 10, item 5): a call whose result changes from one
call to the next (np.random, a generator's draws, the clock) would run once while
tracing and be baked into the graph as a constant; graphc refuses it at the user's line.
Calls outside traces, from other threads, or from a generator seeded inside the trace
behave as in numpy."""
import random
import threading
import time

import numpy as np
import pytest

import graphc
from test_errors import marked_line

X = np.ones((2, 3), np.float32)
RNG = np.random.default_rng(0)


class Layer:
    def __init__(self):
        self.rng = np.random.default_rng(1)

    def __call__(self, x):
        return x * (self.rng.random(x.shape) < 0.5)  # <- error here


LAYER = Layer()


def module_rand(x):
    return x * (np.random.rand(*x.shape) < 0.5)  # <- error here


def module_randn(x):
    return x + np.random.randn(2, 3)  # <- error here


def module_normal(x):
    return x + np.random.normal(size=x.shape)  # <- error here


def module_uniform(x):
    return x + np.random.uniform(size=x.shape)  # <- error here


def module_random(x):
    return x + np.random.random(x.shape)  # <- error here


def module_choice(x):
    return x[np.random.choice(2, 2)]  # <- error here


def module_permutation(x):
    return x[np.random.permutation(2)]  # <- error here


def module_shuffle(x):
    order = [0, 1]
    np.random.shuffle(order)  # <- error here
    return x[order]


def module_seed(x):
    np.random.seed(0)  # <- error here
    return x


def unseeded_generator(x):
    return x + np.random.default_rng().normal(size=x.shape)  # <- error here


def global_generator(x):
    return x * (RNG.random(x.shape) < 0.5)  # <- error here


def global_generator_integers(x):
    return x[RNG.integers(0, 2, 2)]  # <- error here


def closed_over_generator():
    rng = np.random.default_rng(2)

    def f(x):
        return x + rng.normal(size=x.shape)  # <- error here
    return f


def generator_attribute(x):
    return x * LAYER.rng.random(x.shape)  # <- error here


def python_random(x):
    return x * random.random()  # <- error here


def clock_value(x):
    return x * time.time()  # <- error here


def clock_perf_counter(x):
    return x + time.perf_counter()  # <- error here


CASES = [module_rand, module_randn, module_normal, module_uniform, module_random,
         module_choice, module_permutation, module_shuffle, module_seed, unseeded_generator,
         global_generator, global_generator_integers, closed_over_generator(),
         generator_attribute, LAYER.__call__, python_random, clock_value, clock_perf_counter]
IDS = ["module_rand", "module_randn", "module_normal", "module_uniform", "module_random",
       "module_choice", "module_permutation", "module_shuffle", "module_seed",
       "unseeded_generator", "global_generator", "global_generator_integers",
       "closed_over_generator", "generator_attribute", "bound_method_generator",
       "python_random", "clock_value", "clock_perf_counter"]


def _marked(fn):
    return marked_line(getattr(fn, "__func__", fn))


@pytest.mark.parametrize("fn", CASES, ids=IDS)
def test_call_that_changes_per_call_is_refused_at_its_line(fn):
    with pytest.raises(graphc.UnsupportedError) as info:
        graphc.compile(fn)(X)
    text = str(info.value)
    assert text.startswith(f"{__file__}:{_marked(fn)}: "), text
    assert "frozen into the compiled function" in text
    assert "pass" in text.split("\n  hint: ")[1] and "argument" in text


def test_a_draw_that_only_shapes_the_graph_is_refused_at_the_function():
    def f(x):  # the drawn number picks a branch: no constant carries it into the graph
        if RNG.random() < 2.0:
            return x + x
        return x

    with pytest.raises(graphc.UnsupportedError, match="`RNG` .* was drawn from") as info:
        graphc.compile(f)(X)
    assert str(info.value).startswith(f"{__file__}:{f.__code__.co_firstlineno}: ")


def test_numbers_drawn_outside_and_passed_in_are_fresh_each_call():
    @graphc.compile
    def dropout(x, mask):
        return np.where(mask, x / 0.5, 0.0)

    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 8))
    masks = [rng.random(x.shape) < 0.5 for _ in range(2)]
    outs = [dropout(x, m) for m in masks]
    for out, m in zip(outs, masks):
        np.testing.assert_array_equal(out, np.where(m, x / 0.5, 0.0))
    assert not np.array_equal(outs[0], outs[1])


def test_generator_seeded_inside_the_trace_is_a_constant_as_in_numpy():
    # default_rng(0) inside the function gives the same numbers on every eager call too
    def f(x):
        return x + np.random.default_rng(0).normal(size=x.shape)

    np.testing.assert_allclose(graphc.compile(f)(X), f(X), rtol=1e-6)


def test_printing_the_clock_is_left_alone(capsys):
    def f(x):
        print("tracing at", time.perf_counter() > 0)
        return x * 2.0

    np.testing.assert_array_equal(graphc.compile(f)(X), X * 2.0)
    assert "tracing at True" in capsys.readouterr().out


def test_numpy_random_is_restored_after_a_trace_and_after_a_refusal():
    before = {name: np.random.__dict__[name] for name in ("rand", "normal", "default_rng")}
    clock = time.time
    graphc.compile(lambda x: x * 2.0)(X)
    with pytest.raises(graphc.UnsupportedError):
        graphc.compile(module_rand)(X)
    assert {name: np.random.__dict__[name] for name in before} == before
    assert time.time is clock
    assert np.random.rand(3).shape == (3,)


def test_a_thread_that_is_not_tracing_draws_as_usual():
    # while one thread traces (and np.random's functions are wrapped), another thread's
    # np.random.rand and time.time calls are numpy's and the clock's, unchanged
    inside, drawn = threading.Event(), threading.Event()
    got = {}

    def traced(x):
        inside.set()
        assert drawn.wait(10)
        return x * 2.0

    def other():
        assert inside.wait(10)
        got["wrapped"] = np.random.__dict__["rand"] is not before
        got["numbers"] = np.random.default_rng(5).random(3), np.random.rand(4)
        got["time"] = time.time()
        drawn.set()

    before = np.random.__dict__["rand"]
    t = threading.Thread(target=other)
    t.start()
    np.testing.assert_array_equal(graphc.compile(traced)(X), X * 2.0)
    t.join()
    assert got["wrapped"]  # the check ran while the wrappers stood in
    np.testing.assert_array_equal(got["numbers"][0], np.random.default_rng(5).random(3))
    assert got["numbers"][1].shape == (4,) and isinstance(got["time"], float)
