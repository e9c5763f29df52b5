"""Pointwise kernels: an elementwise group as one masked 1-d block per program.

The group's iteration space (its plan's `space`) is walked in row-major order,
`BLOCK` elements a program. Each input comes with a stride per axis of the space
(0 where it broadcasts, so broadcasting and any layout cost nothing on the host);
the multi-index `i0, i1, ...` of each lane is worked out once and every load adds up
its own terms. Outputs are fresh contiguous tensors; one of the space's shape is
stored at the lane's own offset.

    @triton.jit
    def k1_mul_add(x_ptr, bias_ptr, out_ptr, size0, size1, x_stride0, x_stride1,
                   bias_stride1, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < size0 * size1
        i1 = offs % size1
        i0 = offs // size1
        x = tl.load(x_ptr + i0 * x_stride0 + i1 * x_stride1, mask=mask)
        ...
"""
from __future__ import annotations

from graphc.backends.numpy.literals import py
from graphc.backends.triton.emit import KernelText, Launch, kernel_name, type_note
from graphc.backends.triton.values import ValueEmitter, escaping, fits
from graphc.passes.schedule import KernelPlan


def render(plan: KernelPlan, host_name) -> Launch:
    """The kernel for an elementwise (or 0-d "scalar") plan; `host_name(graph value)`
    names a value in the host program."""
    space = tuple(plan.space) if plan.space is not None else \
        tuple(plan.nodes[-1].outputs[0].type.shape)
    from graphc.backends.triton.kernels import Split
    for n in plan.nodes:
        if not fits(tuple(n.outputs[0].type.shape), space):
            raise Split(f"{n.op} makes {list(n.outputs[0].type.shape)}, wider than the "
                        f"group's space {list(space)}")
    k = KernelText(kernel_name(plan.index, plan.nodes),
                   f"{len(plan.nodes)} elementwise ops over {list(space)}, "
                   f"group {plan.index} of the graph")
    em = ValueEmitter(k, plan, host_name)
    sizes = [k.param(f"size{d}", "sizes", host=py(n), comment=f"axis {d}")
             for d, n in enumerate(space)]
    k.line("pid = tl.program_id(0)", note="one block of BLOCK elements per program")
    k.line("offs = pid * BLOCK + tl.arange(0, BLOCK)")
    numel = " * ".join(sizes) if sizes else "1"
    k.line(f"mask = offs < {numel}")
    index = _multi_index(k, sizes)
    em.index = {d: name for d, name in enumerate(index)}
    em.mask = "mask"
    for node in plan.nodes:
        em.compute(node)
    outputs = []
    for v in escaping(plan):
        ptr = em.output_pointer(v)
        shape = tuple(v.type.shape)
        if not shape:
            k.line(f"tl.store({ptr}, {em.name[id(v)]}, mask=pid == 0)",
                   note=f"out %{plan.origin(v).name} (0-d: program 0 stores it)")
        elif shape == space:
            k.line(f"tl.store({ptr} + offs, {em.name[id(v)]}, mask=mask)",
                   note=f"out %{plan.origin(v).name} {type_note(plan.origin(v).type)}")
        else:
            # a broadcast-shaped value: lanes that share an element store the same value
            address = em.address(v, space, contiguous=True)
            if address == "0":  # one element: every lane stores it
                address = "offs * 0"
            k.line(f"tl.store({ptr} + {address}, {em.name[id(v)]}, mask=mask)",
                   note=f"out %{plan.origin(v).name} {type_note(plan.origin(v).type)}")
        outputs.append(v)
    k.param("BLOCK", "meta-parameters")
    numel_value = 1
    for n in space:
        numel_value *= n
    return Launch(k, "pointwise", {"numel": numel_value},
                  grid=f"(triton.cdiv({py(numel_value)}, cfg['BLOCK']),)",
                  prelude=em.prelude, outputs=[(v, em.out_host[id(v)]) for v in outputs])


def _multi_index(k: KernelText, sizes: list[str]) -> list[str]:
    """Lines computing each lane's index along every axis; the names, by axis."""
    if not sizes:
        return []
    if len(sizes) == 1:
        return ["offs"]
    names = [k.ident(f"i{d}") for d in range(len(sizes))]
    rest = "offs"
    for d in range(len(sizes) - 1, -1, -1):
        if d == 0:
            k.line(f"{names[0]} = {rest}", note="index along axis 0")
        else:
            k.line(f"{names[d]} = {rest} % {sizes[d]}", note=f"index along axis {d}")
            if d == len(sizes) - 1:
                k.line(f"rest = offs // {sizes[d]}")
            else:
                k.line(f"rest = rest // {sizes[d]}")
            rest = "rest"
    return names

