"""OpenBLAS's jobs on graphc's pool (backends/numpy/blas.py, blaspool.c): the same
products bit for bit, from many threads at once, after fork, and off when asked.

Installing is for the whole process, so each check runs in a fresh interpreter."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from graphc.backends import toolchain

pytestmark = pytest.mark.skipif(toolchain.compiler() is None, reason="no C compiler")

# products of the shapes the examples have (a conv's GEMM, an LSTM cell's, batched
# attention, a tall-skinny gradient), float32 and float64, before and after installing
PROLOGUE = textwrap.dedent("""
    import os, sys, threading
    import numpy as np
    from graphc.backends.numpy import blas, runtime
    rng = np.random.default_rng(0)
    SHAPES = [((64, 288), (288, 4096)), ((64, 128), (128, 512)), ((8, 128, 64), (8, 64, 128)),
              ((1000, 64), (64, 300)), ((300, 2000), (2000, 7))]
    PAIRS = [(rng.standard_normal(a).astype(t), rng.standard_normal(b).astype(t))
             for a, b in SHAPES for t in (np.float32, np.float64)]
    def products():
        return [np.matmul(a, b) for a, b in PAIRS]
""")


def _run(body: str, **env) -> str:
    code = PROLOGUE + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _openblas_with_callback() -> bool:
    out = _run("""
        from graphc.backends.numpy import blas
        c = blas._openblas()
        print(c is not None and blas._callback_setter(c) is not None)
    """)
    return out.strip() == "True"


needs_callback = pytest.mark.skipif(
    "not _openblas_with_callback()", reason="numpy's BLAS is not an OpenBLAS >= 0.3.27")


@needs_callback
def test_products_are_the_same_bit_for_bit_on_the_pool():
    out = _run("""
        before = products()
        runtime.set_num_threads(2)
        assert blas.install(2) and blas.installed()
        after = products()
        assert all(np.array_equal(x, y) for x, y in zip(before, after))
        print("ok")
    """, GRAPHC_BLAS_POOL="1", GRAPHC_NATIVE="1")
    assert out.strip() == "ok"


@needs_callback
def test_threads_calling_blas_at_once_take_turns_at_the_pool():
    out = _run("""
        assert blas.install(3)
        want = products()  # (a change of thread count may change OpenBLAS's split)
        errors = []
        def work():
            for _ in range(5):
                if not all(np.array_equal(x, y) for x, y in zip(products(), want)):
                    errors.append("differs")
        threads = [threading.Thread(target=work) for _ in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(errors or "ok")
    """, GRAPHC_BLAS_POOL="1", GRAPHC_NATIVE="1")
    assert out.strip() == "ok"


@needs_callback
def test_a_forked_child_starts_its_own_workers():
    out = _run("""
        want = products()
        assert blas.install(2)
        products()  # the workers run, then the fork
        pid = os.fork()
        if pid == 0:
            ok = all(np.array_equal(x, y) for x, y in zip(products(), want))
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """, GRAPHC_BLAS_POOL="1", GRAPHC_NATIVE="1")
    assert out.strip() == "0"


@needs_callback
def test_one_budget_set_num_threads_sets_openblas_too():
    out = _run("""
        from threadpoolctl import threadpool_info
        assert blas.install(2)
        runtime.set_num_threads(3)
        counts = [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]
        want = products()
        print(counts, all(np.array_equal(x, y) for x, y in zip(products(), want)))
    """, GRAPHC_BLAS_POOL="1", GRAPHC_NATIVE="1")
    assert out.strip() == "[3] True"


@pytest.mark.parametrize("env, installed", [
    ({"GRAPHC_BLAS_POOL": "0"}, "False"), ({"GRAPHC_NATIVE": "0"}, "False"),
    pytest.param({"GRAPHC_BLAS_POOL": "1", "GRAPHC_NATIVE": "1"}, "True",
                 marks=needs_callback)])
def test_a_compiled_program_installs_it_unless_turned_off(env, installed):
    out = _run("""
        import graphc
        f = graphc.compile(lambda a, b: np.tanh(a @ b))
        a, b = PAIRS[0]
        # the same GEMM; tanh within graphc's 2 ulp and numpy's own float32 tanh's 2
        np.testing.assert_allclose(f(a, b), np.tanh(a @ b), rtol=2.0 ** -21, atol=0)
        print(blas.installed())
    """, **env)
    assert out.strip() == installed
