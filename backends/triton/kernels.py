"""Which renderer turns a kernel plan into a Triton kernel, by the plan's kind, and
the groups no single kernel can hold (split into one kernel per op).

A renderer returns a `Launch` (emit.py), or raises `Split` with the reason when its
kind of kernel cannot hold the group as fusion made it; the program then runs the
group's ops one kernel (or extern) each, and the fusion report says why.
"""
from __future__ import annotations

from typing import Callable

from graphc.backends.triton.emit import Launch
from graphc.passes.schedule import KernelPlan


class Split(Exception):
    """A group that one kernel of this backend cannot hold; the message says why."""


def _pointwise(plan, host_name):
    from graphc.backends.triton import pointwise
    return pointwise.render(plan, host_name)


def _reduction(plan, host_name):
    from graphc.backends.triton import reduction
    return reduction.render(plan, host_name)


def _matmul(plan, host_name):
    from graphc.backends.triton import matmul
    return matmul.render(plan, host_name)


# plan kind (its group's kind) -> the renderer of its kernel; kinds not here ("single":
# shape ops, convolution, pooling, gather) run as externs on the host
RENDERERS: dict[str, Callable[[KernelPlan, Callable], Launch]] = {
    "elementwise": _pointwise,
    "scalar": _pointwise,
    "reduction": _reduction,
    "reduce_all": _reduction,
    "matmul": _matmul,
}


def render(plan: KernelPlan, host_name) -> Launch | None:
    """The plan's kernel, or None where its ops run on the host (externs)."""
    renderer = RENDERERS.get(plan.kind)
    return None if renderer is None else renderer(plan, host_name)
