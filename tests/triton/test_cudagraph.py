"""CUDA graph replay (backends/triton/cudagraph.py, `Options(cuda_graphs=True)`).

Off a GPU asking for it is a clear error at compile time. The capture and replay logic
runs on the CPU against a fake `torch.cuda`: its graph context records the launches made
inside it instead of running them (as a real capture does) and its `replay()` runs what
was recorded on the same buffers. So a missing copy-in shows as a stale result, a
missing clone-out as a result that changes under the caller, and a capture before the
warm-up as a tuning (or an unrecorded launch) inside the capture. On a GPU (not under
the interpreter) the real thing is compared with the program run without it.
"""
import contextlib
import doctest
import os

import numpy as np
import pytest

pytest.importorskip("triton")
os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")

import graphc  # noqa: E402
from graphc.backends.triton import cudagraph, runtime  # noqa: E402

N = 4096  # one block under the interpreter: one program per launch


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def gelu64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def close_to_gelu(got, x) -> None:
    # gelu is well conditioned away from its zero at 0 (|x f'/f| <= ~2 for |x| > 0.1):
    # a few float32 ulps of the result, plus an absolute floor near the zero
    want = gelu64(np.asarray(x))
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=16 * 2.0**-24,
                               atol=16 * 2.0**-24)


# ---- the fake torch.cuda -----------------------------------------------------------------

class FakeGraph:
    """Records launches while captured; `replay` runs them again on the same buffers."""

    def __init__(self, cuda: "FakeCuda"):
        self.cuda, self.launches = cuda, []

    def replay(self) -> None:
        self.cuda.log.append("replay")
        for launch in self.launches:
            launch()


class FakeStream:
    def __init__(self, cuda: "FakeCuda", name: str):
        self.cuda, self.name = cuda, name

    def wait_stream(self, other: "FakeStream") -> None:
        self.cuda.log.append(f"{self.name} waits for {other.name}")


class FakeCuda:
    """The part of torch.cuda that cudagraph.replayed uses, logging each call."""

    def __init__(self):
        self.log: list[str] = []
        self.capturing: FakeGraph | None = None
        self.on = FakeStream(self, "main")

    def Stream(self) -> FakeStream:  # noqa: N802  (torch's name)
        return FakeStream(self, "side")

    def current_stream(self) -> FakeStream:
        return self.on

    @contextlib.contextmanager
    def stream(self, s: FakeStream):
        before, self.on = self.on, s
        try:
            yield
        finally:
            self.on = before

    def CUDAGraph(self) -> FakeGraph:  # noqa: N802
        return FakeGraph(self)

    @contextlib.contextmanager
    def graph(self, g: FakeGraph):
        self.log.append("capture begins")
        self.capturing = g
        try:
            yield
        finally:
            self.capturing = None
            self.log.append("capture ends")


def recording(rt, cuda: FakeCuda) -> None:
    """Make `rt` launch as a GPU would under a capture: recorded, not run; and log the
    runs and the tunings, with the stream they happen on."""
    launch, tune = rt.launch, rt._tune

    def logged_launch(site, kernel, grid, args, kind, problem, written=()):
        if cuda.capturing is None:
            cuda.log.append(f"run {site} on {cuda.on.name}")
            return launch(site, kernel, grid, args, kind, problem, written)
        assert site in rt.configs, f"{site} would tune inside the capture"
        cuda.log.append(f"record {site}")
        cuda.capturing.launches.append(
            lambda: launch(site, kernel, grid, args, kind, problem, written))

    def logged_tune(site, *rest):
        cuda.log.append(f"tune {site} on {cuda.on.name}")
        return tune(site, *rest)
    rt.launch, rt._tune = logged_launch, logged_tune


@pytest.fixture
def fake_cuda(monkeypatch):
    """graphc.compile(..., options={"cuda_graphs": True}) on the CPU, through the real
    code generator and runtime, with the fake torch.cuda standing in."""
    cuda = FakeCuda()
    real = cudagraph.replayed

    def replayed(program, rt):
        recording(rt, cuda)
        return real(program, rt, cuda=cuda)
    monkeypatch.setattr(cudagraph, "replayed", replayed)
    return cuda


# ---- off a GPU ----------------------------------------------------------------------------

def test_off_a_gpu_asking_for_cuda_graphs_is_a_clear_error_at_compile_time():
    f = graphc.compile(gelu, backend="triton", options={"cuda_graphs": True})
    x = np.linspace(-3, 3, N, dtype=np.float32)
    with pytest.raises(graphc.GraphcError, match=r"cuda_graphs=True needs a CUDA GPU") as e:
        f.lower(x)  # compiling, before any call
    assert "TRITON_INTERPRET=1" in e.value.message
    assert "leave cuda_graphs off" in e.value.hint
    assert not isinstance(e.value, graphc.GraphcInternalError)


def test_the_option_is_off_by_default_and_checked():
    assert graphc.Options().cuda_graphs is False
    with pytest.raises(graphc.OptionError, match="option cuda_graphs='yes'.*True or False"):
        graphc.Options(cuda_graphs="yes")


# ---- the capture and replay logic, against the fake ------------------------------------

def test_first_call_copies_in_warms_up_captures_then_replays(fake_cuda):
    f = graphc.compile(gelu, backend="triton", options={"cuda_graphs": True})
    x = np.linspace(-3, 3, N, dtype=np.float32)
    close_to_gelu(f(x), x)
    log = fake_cuda.log
    (site,) = {entry.split()[1] for entry in log if entry.startswith(("run", "record"))}
    assert log == [
        "side waits for main",                 # the warm-up starts after the copy-in
        f"run {site} on side", f"tune {site} on side",  # the warm-up's launch tunes
        "main waits for side",
        "capture begins", f"record {site}", "capture ends",
        "replay"]


def test_later_calls_copy_in_replay_and_clone_out(fake_cuda):
    f = graphc.compile(gelu, backend="triton", options={"cuda_graphs": True})
    x1 = np.linspace(-3, 3, N, dtype=np.float32)
    x2 = np.linspace(-1, 5, N, dtype=np.float32)
    out1 = f(x1)
    kept = out1.copy()
    del fake_cuda.log[:]
    out2 = f(x2)
    assert fake_cuda.log == ["replay"]      # no second warm-up, tuning or capture
    close_to_gelu(out2, x2)                 # the new inputs were copied in
    np.testing.assert_array_equal(out1, kept)  # the caller's first result is its own
    assert not np.shares_memory(out1, out2)
    x1[:] = 7.0                             # the caller's arrays are read, not kept
    close_to_gelu(f(x2), x2)


def test_results_come_back_as_numpy_and_a_new_signature_captures_again(fake_cuda):
    f = graphc.compile(gelu, backend="triton", options={"cuda_graphs": True})
    x = np.linspace(-3, 3, N, dtype=np.float32)
    got = f(x)
    assert isinstance(got, np.ndarray)
    close_to_gelu(got, x)
    y = np.linspace(-2, 2, 2 * N, dtype=np.float32)  # a new signature: a new capture
    close_to_gelu(f(y), y)
    assert fake_cuda.log.count("capture begins") == 2
    close_to_gelu(f(x), x)
    assert fake_cuda.log.count("capture begins") == 2


def test_outputs_that_are_inputs_or_constants_come_back_as_copies(fake_cuda):
    def f(x):
        return x, np.float32(2.0) * np.ones(4, np.float32), x * 3.0
    g = graphc.compile(f, backend="triton", options={"cuda_graphs": True})
    x = np.arange(4, dtype=np.float32)
    same, const, tripled = g(x)
    np.testing.assert_array_equal(same, x)
    assert not np.shares_memory(same, x)
    np.testing.assert_array_equal(const, np.full(4, 2.0, np.float32))
    np.testing.assert_array_equal(tripled, x * 3.0)  # exact: small integers


def test_a_failed_capture_is_a_graphc_error_naming_the_cause():
    class Refusing(FakeCuda):
        @contextlib.contextmanager
        def graph(self, g):
            raise RuntimeError("operation not permitted when stream is capturing")
            yield

    rt = runtime.Runtime("cpu")
    run = cudagraph.replayed(lambda x: (x + 1,), rt, cuda=Refusing())
    with pytest.raises(graphc.GraphcError, match="could not be captured.*not permitted") as e:
        run(torch.ones(3))
    assert "without cuda_graphs" in e.value.hint


def test_the_docstring_examples_run():
    result = doctest.testmod(cudagraph)
    assert result.failed == 0 and result.attempted > 0


# ---- on a GPU -------------------------------------------------------------------------------

needs_gpu = pytest.mark.skipif(runtime.interpreting() or not torch.cuda.is_available(),
                               reason="needs a CUDA GPU, without TRITON_INTERPRET")


def small_step(x, w, b):
    """a small graph where launches dominate: matmul, bias, softmax over rows."""
    h = np.tanh(x @ w + b) * 2.0
    e = np.exp(h - np.max(h, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


@needs_gpu
def test_replayed_results_equal_the_program_run_without_cuda_graphs():
    rng = np.random.default_rng(0)
    shapes = [(64, 32), (32, 48), (48,)]
    fresh = [[torch.from_numpy(rng.standard_normal(s, dtype=np.float32)).cuda()
              for s in shapes] for _ in range(3)]
    eager = graphc.compile(small_step, backend="triton")
    replay = graphc.compile(small_step, backend="triton", options={"cuda_graphs": True})
    first = replay(*fresh[0])
    kept = first.clone()
    for args in fresh:
        got, want = replay(*args), eager(*args)
        assert got.is_cuda
        # the same kernels, configs and inputs: the same bits
        assert torch.equal(got, want)
        x, w, b = (a.double().cpu().numpy() for a in args)
        ref = small_step(x, w, b)
        # the logits' error: each product rounded to tf32 inputs (2 * 2**-11 relative,
        # the bound whether or not tl.dot uses tf32) plus float32 accumulation over K,
        # both relative to |x| @ |w|, then tanh' <= 1 and the factor 2; a softmax moves
        # by at most twice its logits' largest change (plus a few ulps of its own)
        dz = 2.0 * (2.0**-10 + x.shape[1] * 2.0**-24) * (np.abs(x) @ np.abs(w))
        atol = 2.0 * dz.max(axis=-1, keepdims=True) + 8 * 2.0**-24
        assert np.all(np.abs(got.cpu().numpy() - ref) <= atol)
    assert torch.equal(first, kept)
