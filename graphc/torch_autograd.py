"""Running a compiled torch capture: torch tensors in, torch tensors out, graphc's own
backward.

A `Program` is one capture compiled for one pattern of inputs needing a gradient
(graphc/torch_compile.py builds it). `run_program` hands the numpy backend zero-copy
views of contiguous CPU tensors and wraps its results with `torch.from_numpy`. When any
input needs a gradient, the call goes through `GraphcFunction`, a
`torch.autograd.Function` whose forward runs the compiled forward and saves what
rematerialization chose (`ctx.save_for_backward`), and whose backward runs graphc's
compiled backward: `loss.backward()` fills each parameter's `.grad`, and torch's version
counters catch an input changed in place between the two (an optimizer step too early).

>>> import torch, graphc
>>> f = graphc.compile(lambda x: torch.tanh(x).sum())
>>> x = torch.zeros(3, requires_grad=True)
>>> f(x).backward()
>>> x.grad
tensor([1., 1., 1.])
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from graphc.errors import GraphcError

# torch dtypes numpy has no view of: computed in float32, given back in their own dtype
_WIDENED = {torch.bfloat16: torch.float32}


@dataclass
class Program:
    """One capture compiled for one pattern of gradients.

    `forward(*arrays)` takes the graph's inputs and returns its `n_outputs` outputs,
    then the `n_buffers` buffers' new values, then the values saved for the backward;
    `backward(*[arrays[i] for i in takes], *saved, *cotangents)` returns the gradient of
    each input in `wrt`. `backward` is None where no input needs a gradient.
    """

    name: str
    forward: Callable[..., tuple]
    backward: Callable[..., tuple] | None
    in_dtypes: list[np.dtype]
    out_types: list[tuple[tuple[int, ...], np.dtype]]  # shape, dtype of each flat output
    n_outputs: int
    n_buffers: int
    wrt: list[int]
    takes: list[int]
    # the backend takes and returns torch tensors itself (the Triton backend: CUDA
    # tensors stay on the GPU), so no numpy views in between
    tensors: bool = False

    @property
    def differentiable(self) -> list[bool]:
        return [dt.kind == "f" for _, dt in self.out_types]


def as_array(t: torch.Tensor, dtype: np.dtype | None = None) -> np.ndarray:
    """A numpy view of `t` (on the CPU, a dtype numpy has: any strides, since numpy and
    BLAS take strided arrays and native kernels copy what is not contiguous
    themselves), else a converted copy; read-only either way, so that no kernel can
    write into the user's tensor. (A saved transpose, as the backward reads many, was
    copied here on every step: 22 ms of a 355 ms encoder step.)"""
    t = t.detach()
    if t.device.type != "cpu" or t.dtype in _WIDENED:
        t = t.to("cpu", _WIDENED.get(t.dtype, t.dtype)).contiguous()
    a = t.numpy()
    if dtype is not None and a.dtype != dtype:
        a = a.astype(dtype)
    a = a.view()  # a view of our own: the flag below leaves the tensor writable
    a.flags.writeable = False
    return a


def as_tensor(a, inputs: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """A torch tensor over the backend's result `a`, on `device`: a copy only where
    torch cannot view it (read-only, negative strides) or it shares an input's memory
    (the user's output must not alias the user's input)."""
    if isinstance(a, torch.Tensor):  # the backend's own tensor, fresh (never an input)
        return a if a.device == device else a.to(device)
    a = np.asarray(a)
    if not a.flags.writeable or any(s < 0 for s in a.strides) or \
            (a.base is not None and any(np.may_share_memory(a, x) for x in inputs)):
        a = a.copy()
    t = torch.from_numpy(a)
    return t if device.type == "cpu" else t.to(device)


def device_of(tensors: Sequence[torch.Tensor]) -> torch.device:
    """Where the results go: the first non-CPU input's device, else the CPU."""
    for t in tensors:
        if not t.is_cpu:
            return t.device
    return _CPU


_CPU = torch.device("cpu")


def _inputs(program: Program, inputs: Sequence[torch.Tensor], dtypes) -> list:
    """What the backend's function takes: numpy views, or the tensors themselves."""
    if program.tensors:
        return [t.detach() for t in inputs]
    return [as_array(t, d) for t, d in zip(inputs, dtypes)]


def run_program(program: Program, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The flat outputs, then the buffers' new values, as torch tensors; through
    GraphcFunction where the program has a backward."""
    if program.backward is None:
        arrays = _inputs(program, inputs, program.in_dtypes)
        results = program.forward(*arrays)
        device = device_of(inputs)
        n = program.n_outputs + program.n_buffers
        return tuple(as_tensor(a, arrays, device) for a in results[:n])
    return GraphcFunction.apply(program, *inputs)


class GraphcFunction(torch.autograd.Function):
    """graphc's compiled forward and backward as one node of torch's autograd graph."""

    @staticmethod
    def forward(ctx, program: Program, *inputs: torch.Tensor):
        arrays = _inputs(program, inputs, program.in_dtypes)
        results = program.forward(*arrays)
        device = ctx.device = device_of(inputs)
        n = program.n_outputs + program.n_buffers
        outs = tuple(as_tensor(a, arrays, device) for a in results[:n])
        # a saved value that is also an output is saved as that output, so that an
        # in-place change to it is caught by torch's version counter
        mine = {id(a): t for a, t in zip(results[:n], outs) if device.type == "cpu"}
        saved = [mine[id(a)] if id(a) in mine else _saved(a) for a in results[n:]]
        ctx.save_for_backward(*[inputs[i] for i in program.takes], *saved)
        ctx.program = program
        ctx.out_shapes = [t.shape for t in outs[:program.n_outputs]]  # (symbolic types)
        frozen = [t for t, d in zip(outs, program.differentiable + [False] * program.n_buffers)
                  if not d]
        ctx.mark_non_differentiable(*frozen)
        return outs

    @staticmethod
    def backward(ctx, *grads):
        program: Program = ctx.program
        want = [i for i, need in enumerate(ctx.needs_input_grad[1:]) if need]
        if not set(want) <= set(program.wrt):  # chosen from requires_grad at the call
            raise GraphcError(f"{program.name}: torch asks for gradients of inputs "
                              f"{sorted(set(want) - set(program.wrt))} that the compiled "
                              "backward does not compute", loc=False,
                              hint="do not change requires_grad between the call and "
                                   "backward(); report this if you did not")
        saved = ctx.saved_tensors
        k = len(program.takes)
        arrays = _inputs(program, saved[:k], [program.in_dtypes[i] for i in program.takes])
        arrays += _inputs(program, saved[k:], [None] * (len(saved) - k))
        arrays += [_cotangent(g, shape, dtype, program.tensors, ctx.device)
                   for g, shape, (_, dtype) in zip(grads, ctx.out_shapes, program.out_types)]
        results = program.backward(*arrays)
        out: list[torch.Tensor | None] = [None] * (1 + len(program.in_dtypes))
        for i, g in zip(program.wrt, results):
            out[1 + i] = as_tensor(g, arrays, ctx.device)
        if torch.is_grad_enabled():  # backward(create_graph=True)
            return (None, *_first_order_only(program.name, out[1:]))
        return tuple(out)


def _saved(a) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():  # a view of a read-only input: nothing writes to it
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


def _cotangent(g: torch.Tensor | None, shape: tuple[int, ...], dtype: np.dtype,
               tensors: bool = False, device: torch.device = None):
    # integer outputs, and outputs the loss does not read, get zeros (no memory: a
    # broadcast scalar)
    if tensors:
        if g is None or dtype.kind != "f":
            zero = torch.zeros((), dtype=torch.from_numpy(np.zeros((), dtype)).dtype,
                               device=device)
            return zero.expand(shape)
        return g.detach()
    if g is None or dtype.kind != "f":
        return np.broadcast_to(np.zeros((), dtype), shape)
    return as_array(g, dtype)


class _SecondOrder(torch.autograd.Function):
    """Stands in for the gradients of a graphc backward run with create_graph=True:
    they are right, but differentiating them again raises, never a silent zero."""

    @staticmethod
    def forward(ctx, name: str, *grads: torch.Tensor):
        ctx.name = name
        return tuple(g.detach() for g in grads)

    @staticmethod
    def backward(ctx, *_):
        raise GraphcError(f"{ctx.name}: graphc's backward of a torch module or function "
                          "is differentiated once only; a second derivative through it "
                          "(a gradient penalty, a Hessian-vector product) is not "
                          "supported", loc=False,
                          hint="take higher derivatives with graphc.grad on numpy "
                               "functions, or run this model eagerly (without "
                               "graphc.compile) for the step that needs them")


def _first_order_only(name: str, grads: list[torch.Tensor | None]) -> list:
    present = [i for i, g in enumerate(grads) if g is not None]
    wrapped = _SecondOrder.apply(name, *[grads[i].detach().requires_grad_() for i in present])
    out = list(grads)
    for i, g in zip(present, wrapped):
        out[i] = g
    return out
