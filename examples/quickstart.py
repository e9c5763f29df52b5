"""graphc in one page: compile GELU and softmax, look at every stage, time them.

    python examples/quickstart.py          (or: make demo)

Prints, for each function, the IR as traced, the IR after the pass pipeline, the
generated numpy source, the fusion groups, and `graphc.benchmark`'s table: the
compiled function against the same Python function run eagerly on numpy (results
checked first, calls interleaved, medians).
"""
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
    print("--- fusion ---")
    print(low.fusion_report())
    print("--- fused against eager (graphc.benchmark) ---")
    print(graphc.benchmark(compiled, x, repeats=15))
    print(f"cache: {compiled.cache_info()}")


def main() -> None:
    rng = np.random.default_rng(0)
    show(gelu, rng.standard_normal((1024, 1024), dtype=np.float32))
    show(softmax, rng.standard_normal((1024, 1024), dtype=np.float32))


if __name__ == "__main__":
    main()
