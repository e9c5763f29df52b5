"""The benchmark suite: `python -m graphc bench` (see WORKLOADS.md).

Each workload is written as a user writes it in plain numpy, float32 throughout
(`graphc/bench/workloads.py`), and runs as: eager numpy (the same Python function
called directly), graphc's numpy backend, and, where installed, torch eager,
`torch.compile` and `jax.jit`, each peer written idiomatically in its own library
(`graphc/bench/peers_torch.py`, `graphc/bench/peers_jax.py`).

    name          what                                                    full size (--quick)
    gelu          0.5*x*(1+tanh(0.7978845608*(x+0.044715*x**3)))          4,194,304 (4096)
    softmax       softmax over the last axis, keepdims=True reductions    (4096, 1024) ((64, 128))
    layernorm     layer norm over the last axis, with weight and bias     (4096, 1024) ((64, 128))
    chain         exp(tanh(x*1.5+0.5)*0.8+x)*0.5-1.0: 8 elementwise ops   4,194,304 (4096)
    mlp           gelu(x @ W1 + b1) @ W2 + b2: x (N, D), W1 (D, H),       N, D, H = 512, 1024, 4096
                  W2 (H, D)                                               (16, 32, 64)
    mlp_train     mlp, mean-squared loss and a hand-written backward:     as mlp
                  loss and grads of W1, b1, W2, b2 (peers: autodiff)
    attention     softmax(q k^T / sqrt(d)) v, single head, q, k, v of     (8, 512, 64) ((2, 16, 8))
    adam          one Adam update -> p, m, v; step t a static Python int  16,777,216 (4096)
    polyfit_step  the polyfit tutorial's loss and 4 hand-derived grads    2000 points (200)
    tiny          x + 1.0: what is left is the per-call overhead          16 (16)

How it measures (`graphc/bench/runner.py`, `graphc/bench/measure.py`): every
implementation's result is first checked against eager numpy over the whole result
pytree (a mismatch marks the row FAIL, and the implementation is not timed);
compile time is reported apart (graphc: a fresh lowering; torch.compile and jax.jit:
their first call, which includes one run); steady state is the median of `--repeats`
samples after warm-up, the implementations interleaved round-robin, a sample of a fast
call repeating it for about 2 ms. The memory floor of a memory-bound workload is the
bytes it must move (its input arrays read once, its outputs written once) over the
machine's copy bandwidth, measured once at the start with `np.copyto`. The floor of
a matmul workload (mlp, mlp_train) is its matmuls alone through numpy's
BLAS, timed in the same rounds as the implementations: fusion removes what lies
between the matmuls, never the matmuls themselves.
A peer that is not installed, or whose compile fails, shows as n/a with the reason.
"""
