"""What a compiled Triton program runs on: the device, tensors in and out, fresh
output buffers, and kernel launches with their tuned configs.

A program runs on one device, chosen when it is compiled: the GPU where torch sees
one (and Triton is not interpreting), else the CPU under `TRITON_INTERPRET=1`, where
Triton's interpreter runs the same kernels on CPU tensors (how CI tests them). With
neither, compiling for `backend="triton"` is an error that says what to do.

Data in and out: numpy arrays move to the device and the results come back as numpy
arrays; torch tensors stay torch tensors (CUDA tensors stay on the GPU). A call with
any numpy argument, or with none at all, returns numpy.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from graphc.errors import GraphcError

_TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64", "int32", "int64", "bool")


def interpreting() -> bool:
    """Whether Triton runs kernels in its interpreter (TRITON_INTERPRET set, as Triton
    reads it), where programs run one after another on the CPU.

    >>> isinstance(interpreting(), bool)
    True
    """
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def require_triton():
    """torch and triton, imported; a clear error where either is missing."""
    try:
        import torch
        import triton
    except ImportError as exc:
        raise GraphcError(f"backend='triton' needs torch and triton ({exc})",
                          hint="pip install 'graphc[torch]' triton, or use "
                               "backend='numpy'", loc=False) from None
    return torch, triton


def choose_device() -> str:
    """'cuda' on a GPU, 'cpu' under the interpreter; an error with neither."""
    torch, _ = require_triton()
    if interpreting():
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    raise GraphcError("backend='triton' found no GPU (torch.cuda.is_available() is False)",
                      hint="run on a machine with a CUDA GPU, set TRITON_INTERPRET=1 "
                           "before importing triton to run the kernels in Triton's "
                           "interpreter on the CPU (slow: for tests), or use "
                           "backend='numpy'", loc=False)


class Runtime:
    """One compiled program's device and launch state (bound as `_rt` in its module)."""

    def __init__(self, device: str, tuner=None):
        import torch
        self.torch = torch
        self.device = torch.device(device)
        self.dtypes = {name: getattr(torch, name) for name in _TORCH_DTYPES}
        self.tuner = tuner
        self.configs: dict[str, Any] = {}  # launch site -> its config (after tuning)
        self.interpreted = interpreting()

    # --- data in and out --------------------------------------------------------------

    def to_device(self, x: Any, dtype: str):
        """A graph input as a tensor on the device, of the IR's dtype."""
        torch = self.torch
        if isinstance(x, torch.Tensor):
            t = x
        else:
            a = np.asarray(x)
            if any(s < 0 for s in a.strides) or not a.flags.writeable:
                a = np.array(a)  # torch takes neither negative strides nor read-only data
            t = torch.from_numpy(a)
        if t.device != self.device:
            t = t.to(self.device)
        want = self.dtypes[dtype]
        return t if t.dtype == want else t.to(want)

    def from_device(self, t, as_numpy: bool):
        if not as_numpy:
            return t
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        return t.numpy() if t.dtype != self.torch.bfloat16 else t.float().numpy()

    def unaliased(self, outputs: tuple, inputs: list) -> tuple:
        """The outputs, each a copy where it is (a view of) an input: a result never
        shares memory with an argument, as the numpy backend's never do."""
        held = {t.untyped_storage().data_ptr() for t in inputs if t.numel()}
        if not held:
            return outputs
        return tuple(t.clone() if t.numel() and t.untyped_storage().data_ptr() in held
                     else t for t in outputs)

    def empty(self, shape: tuple[int, ...], dtype: str):
        return self.torch.empty(shape, dtype=self.dtypes[dtype], device=self.device)

    def iota(self, shape: tuple[int, ...], axis: int, dtype: str):
        """0, 1, 2, ... along `axis`, broadcast to `shape` (a view: stride 0 elsewhere)."""
        ramp = self.torch.arange(shape[axis], dtype=self.dtypes[dtype], device=self.device)
        return ramp.reshape([-1 if k == axis else 1 for k in range(len(shape))]).expand(shape)

    def scalar(self, value: int, dtype: str):
        """A 0-d tensor of `value` (a count of symbolic sizes, per call)."""
        return self.torch.full((), value, dtype=self.dtypes[dtype], device=self.device)

    def const(self, array: np.ndarray, dtype: str):
        return self.to_device(np.array(array), dtype)

    def check(self, t, shape: tuple[int, ...], dtype: str) -> None:
        """A kernel's input is what its plan says (a wrong one is a compiler bug)."""
        if tuple(t.shape) != shape or t.dtype != self.dtypes[dtype]:
            raise AssertionError(  # a compiler bug: graphc.internal reports it as one
                f"a Triton kernel got a {t.dtype} tensor of shape {tuple(t.shape)} where "
                f"its plan says {dtype}{list(shape)}")

    # --- launches -----------------------------------------------------------------------

    def launch(self, site: str, kernel, grid: Callable[[dict], tuple], args: tuple,
               kind: str, problem: dict, written: tuple = ()) -> None:
        """Run `kernel` over `grid(cfg)` with the config tuned for this launch site (and,
        for a kernel of symbolic sizes, `problem["bucket"]`, for this size bucket: the
        sizes' next powers of two, so that a new batch size tunes nothing new)."""
        if problem.get("bucket"):
            from graphc.backends.triton.autotune import next_pow2
            site = (site,) + tuple(next_pow2(v) for v in problem.values()
                                   if type(v) is int and v > 0)
        cfg = self.configs.get(site)
        if cfg is None:
            cfg = self.configs[site] = self._tune(site, kernel, grid, args, kind, problem,
                                                  written)
        if self.interpreted:
            # the interpreter computes masked-off lanes too (numpy on whatever `other`
            # filled them with): their overflows are not the program's
            with np.errstate(all="ignore"):
                kernel[grid(cfg.meta)](*args, **cfg.kwargs())
        else:
            kernel[grid(cfg.meta)](*args, **cfg.kwargs())

    def _tune(self, site, kernel, grid, args, kind, problem, written):
        from graphc.backends.triton import autotune
        configs = autotune.CONFIG_SPACES[kind](problem)

        def trial(cfg):
            with np.errstate(all="ignore"):
                kernel[grid(cfg.meta)](*args, **cfg.kwargs())
        key = autotune.key_for(kernel, configs, args, bucket=type(site) is tuple)
        return self.tuner.pick(key, configs, trial, written=[a for a in written])
