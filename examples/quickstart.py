"""graphc in one page: compile GELU and softmax, look at every stage, time them.

    python examples/quickstart.py          (or: make demo)

Prints, for each function, the IR as traced, the IR after the pass pipeline, the
generated numpy source, and the median time of the compiled function against the
same Python function run eagerly on numpy, after checking that both agree.
"""
import time

import numpy as np

import graphc


@graphc.compile
def gelu(x):
    """tanh-approximation GELU, written as users write it."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


@graphc.compile
def softmax(x):
    """softmax over the last axis, with the usual max subtraction."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def median_ms(fns, x, repeats: int = 15) -> list[float]:
    """Median time of each function, calls interleaved so that noise hits all alike."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            start = time.perf_counter()
            fn(x)
            ts.append(time.perf_counter() - start)
    return [1e3 * float(np.median(ts)) for ts in times]


def show(compiled, x) -> None:
    title = f" {compiled.__name__} on float32{list(x.shape)} "
    print(f"\n{title:=^80}")
    low = compiled.lower(x)
    print("--- IR as traced ---")
    print(low.graph)
    print("--- IR after the pipeline (" + ", ".join(list(low.stages)[1:]) + ") ---")
    print(low.optimized)
    print("--- generated numpy source ---")
    print(low.source)
    eager = compiled.fn  # the undecorated Python function
    np.testing.assert_allclose(compiled(x), eager(x), rtol=1e-5, atol=1e-6)
    compiled(x), eager(x)  # warm up both
    t_eager, t_compiled = median_ms([eager, compiled], x)
    print(f"--- timing (median of 15 interleaved calls, compile {low.compile_seconds * 1e3:.1f} ms "
          "apart) ---")
    print(f"{'eager numpy':>14}: {t_eager:8.2f} ms")
    print(f"{'graphc numpy':>14}: {t_compiled:8.2f} ms   ({t_eager / t_compiled:.2f}x)")
    print(f"results agree; cache: {compiled.cache_info()}")


def main() -> None:
    rng = np.random.default_rng(0)
    show(gelu, rng.standard_normal((1024, 1024), dtype=np.float32))
    show(softmax, rng.standard_normal((1024, 1024), dtype=np.float32))


if __name__ == "__main__":
    main()
