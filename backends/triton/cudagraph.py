"""CUDA graph replay of a whole compiled program: `Options(cuda_graphs=True)`, off by
default (as torch.compile's mode="reduce-overhead").

On a small graph the time of a call is its launches (a few microseconds each, and
graphc's Python wrapper around each), not its kernels. A CUDA graph records every
launch of the program once and replays them all with one call. `replayed(program, rt)`
wraps a program so that, per input signature (the shapes and dtypes of its tensors):

1. static input buffers are made and the caller's tensors copied into them;
2. warm-up: the program runs once on them, on a side stream. This compiles and tunes
   every kernel (tuning times configs, which must not be recorded) and makes torch's
   lazy allocations (cuBLAS workspaces of extern calls) outside the capture;
3. capture: the program runs again under `torch.cuda.graph`, which records its kernels
   on the static buffers instead of running them; what it returns are the graph's
   static outputs, in the graph's own memory pool.

Every call then copies the caller's tensors into the static inputs, replays the graph
and returns clones of the static outputs: the next replay overwrites those, and what
the caller holds must not change under it.

Limits (as torch's): the program must not synchronise with the host (no `.item()`,
no data-dependent shapes); graphc's programs have static shapes, so that holds unless
an extern does, which is reported as a GraphcError at the capture.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from graphc.errors import GraphcError

WARMUP_RUNS = 1  # one run tunes and compiles every kernel: a launch site tunes once


def require_gpu(device: str) -> None:
    """Raise the error a CUDA graph asked for off a GPU gives (at compile time).

    >>> try:
    ...     require_gpu("cpu")
    ... except GraphcError as exc:
    ...     print(exc.message.split(" (")[0])
    cuda_graphs=True needs a CUDA GPU
    >>> require_gpu("cuda")
    """
    if device == "cuda":
        return
    where = ("this program runs in Triton's interpreter on the CPU (TRITON_INTERPRET=1)"
             if device == "cpu" else f"this program runs on {device!r}")
    raise GraphcError(f"cuda_graphs=True needs a CUDA GPU ({where})",
                      hint="leave cuda_graphs off (the default) here; CUDA graphs only "
                           "remove launch overhead on a GPU, results are the same "
                           "without them")


@dataclass
class _Captured:
    """One input signature's graph and the buffers its recorded kernels read and write."""

    graph: Any
    inputs: list
    outputs: tuple


def replayed(program: Callable[..., tuple], rt, cuda: Any = None) -> Callable[..., tuple]:
    """`program` (tensors in, a tuple of tensors out) as a CUDA graph replayed per call.

    `rt` is the program's `runtime.Runtime`; `cuda` stands in for `torch.cuda` (tests
    inject a fake one to check the order of copies, warm-up, capture and replay on the
    CPU); without it the device must be a GPU, else a GraphcError says so. On a GPU:

        fast = replayed(program, rt)
        out1 = fast(x)      # copy in, warm up (tunes), capture, replay, clone out
        out2 = fast(y)      # copy in, replay, clone out: out1 still holds f(x)
    """
    if cuda is None:
        require_gpu(rt.device.type)
        cuda = rt.torch.cuda
    torch = rt.torch
    captured: dict[tuple, _Captured] = {}
    lock = threading.Lock()  # one replay at a time: calls share the static buffers

    def run(*tensors):
        key = tuple((tuple(t.shape), t.dtype) for t in tensors)
        with lock:
            cap = captured.get(key)
            if cap is None:
                cap = captured[key] = _capture(program, tensors, torch, cuda)
            for buffer, t in zip(cap.inputs, tensors):
                buffer.copy_(t)
            cap.graph.replay()
            return tuple(out.clone() for out in cap.outputs)

    run.captured = captured  # for tests and debugging: the graphs per signature
    return run


def _capture(program: Callable[..., tuple], tensors: tuple, torch, cuda) -> _Captured:
    """Static inputs holding `tensors`, the warm-up runs, then the capture."""
    inputs = [torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in tensors]
    for buffer, t in zip(inputs, tensors):
        buffer.copy_(t)  # real values: an extern gather must not see garbage indices
    side = cuda.Stream()
    side.wait_stream(cuda.current_stream())
    with cuda.stream(side):  # as torch's docs ask: warm up off the capturing stream
        for _ in range(WARMUP_RUNS):
            program(*inputs)
    cuda.current_stream().wait_stream(side)
    graph = cuda.CUDAGraph()
    try:
        with cuda.graph(graph):
            outputs = tuple(program(*inputs))
    except GraphcError:
        raise
    except Exception as exc:
        raise GraphcError(f"the compiled program could not be captured into a CUDA graph "
                          f"({type(exc).__name__}: {str(exc).strip()[:200]})",
                          hint="an op that synchronises with the host cannot be "
                               "captured; compile without cuda_graphs=True",
                          loc=False) from exc
    return _Captured(graph, inputs, outputs)
