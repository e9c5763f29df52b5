"""A compiled function shared by threads: each signature traced once, every result
right, and no two concurrent calls ever share an output or a buffer."""
import threading

import numpy as np

import graphc


def _layer(x, w):
    h = np.tanh(x @ w)
    e = np.exp(h - np.max(h, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True), h * 2.0


def test_eight_threads_with_different_shapes_trace_each_signature_once():
    f = graphc.compile(_layer, check=False)
    rng = np.random.default_rng(0)
    # 4 signatures, each called by 2 threads at once, many times, large enough that the
    # fused kernels run block by block on the thread pool too
    shapes = [(256, 64), (512, 64), (384, 32), (128, 128)]
    inputs = [(rng.standard_normal(s).astype(np.float32),
               rng.standard_normal((s[1], 96)).astype(np.float32) * 0.1) for s in shapes]
    expected = [_layer(*a) for a in inputs]
    barrier = threading.Barrier(8)
    errors, outputs = [], []

    def worker(k):
        x, w = inputs[k % 4]
        barrier.wait()  # start together so that first calls race to compile
        for _ in range(15):
            got = f(x, w)
            outputs.append(got)
            for g, e in zip(got, expected[k % 4]):
                if not np.allclose(g, e, rtol=1e-4, atol=1e-5):
                    errors.append(k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    info = f.cache_info()
    assert info.misses == 4 and info.entries == 4  # one trace per signature
    assert info.hits == 8 * 15 - 4
    # results handed out while they were alive never share memory
    live = outputs[-16:]
    for i, a in enumerate(live):
        for b in live[i + 1:]:
            assert not any(np.shares_memory(p, q) for p in a for q in b)


def test_hits_are_exact_while_threads_call_and_read_the_counts():
    f = graphc.compile(lambda x: x + 1.0, check=False)
    x = np.ones(16, np.float32)
    f(x)
    barrier = threading.Barrier(9)
    stop = threading.Event()
    seen = []

    def caller():
        barrier.wait()
        for _ in range(2000):
            f(x)

    def reader():
        barrier.wait()
        while not stop.is_set():
            seen.append(f.cache_info().hits)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    watcher = threading.Thread(target=reader)
    for t in threads + [watcher]:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert f.cache_info() == (8 * 2000, 1, 1)
    assert seen == sorted(seen) and all(0 <= h <= 8 * 2000 for h in seen)
