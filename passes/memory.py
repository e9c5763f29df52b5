"""Memory planning: liveness of the values that pass between kernels, and buffer reuse.

An analysis, not a rewrite, computed from the kernel plans (passes/schedule.py):
`last_reads` says for each value the last group that reads it (through the views a
backend makes, to their base); `plan_memory` packs the values a backend keeps in
planned buffers into a few slots, a slot passing to a new value once its last reader
has run, and an output that a plan may write over a dying input (`KernelPlan.reuse`)
taking that input's slot in the same kernel. A compiled function then needs only a
few preallocated buffers, reused across calls (the backend keeps them in a pool, so
concurrent calls never share one).

>>> import graphc, numpy as np
>>> f = graphc.compile(lambda x: np.tanh(np.exp(x) @ x) * 2.0)
>>> g = f.lower(np.ones((300, 300), np.float32)).optimized
>>> last = last_reads(g)
>>> sorted(set(last.values()))  # the groups where values die, the end (2) for outputs
[1, 2]
"""
from __future__ import annotations

from dataclasses import dataclass, field

from graphc.ir import Graph, Value
from graphc.ir.symbols import covers, larger, typical


@dataclass(frozen=True)
class LiveRange:
    value: Value
    start: int  # index of the group that defines it
    end: int    # index of the last group that reads it (start if never read)


@dataclass
class MemoryPlan:
    """Where each planned buffer lives: value id -> slot, each slot's bytes, and the
    outputs written in place over an input (id(output) -> the input)."""

    slot_of: dict[int, int]
    slot_bytes: list[int]
    in_place: dict[int, Value] = field(default_factory=dict)


def last_reads(graph: Graph, views: frozenset[str] = frozenset()) -> dict[int, int]:
    """value id -> index of the last group that reads it; a value made by an op in
    `views` (the backend's ops whose result aliases their input) keeps its base
    alive; graph outputs (and their bases) live to the end, len(groups)."""
    from graphc.passes.schedule import groups_of
    groups = groups_of(graph)
    root: dict[int, int] = {}
    last: dict[int, int] = {}
    for gi, g in enumerate(groups):
        for n in g.nodes:
            for v in n.inputs:
                last[id(v)] = gi
                last[root.get(id(v), id(v))] = gi
            if n.op in views:
                root[id(n.outputs[0])] = root.get(id(n.inputs[0]), id(n.inputs[0]))
    for v in graph.outputs:
        last[root.get(id(v), id(v))] = len(groups)
        last[id(v)] = len(groups)
    return last


def plan_memory(buffered: list[tuple[Value, int]], last_read: dict[int, int],
                in_place: dict[int, Value] | None = None) -> MemoryPlan:
    """Slots for the (value, defining group) pairs a backend keeps in planned buffers.
    `in_place` names outputs that the backend writes over an input (from a plan's
    `reuse`, where both live in planned buffers and the input dies in that kernel)."""
    in_place = dict(in_place or {})
    ranges = [LiveRange(v, gi, last_read.get(id(v), gi)) for v, gi in buffered]
    slot_of, sizes = assign_slots(ranges, {k: id(v) for k, v in in_place.items()})
    return MemoryPlan(slot_of, sizes, in_place)


def assign_slots(ranges: list[LiveRange], donors: dict[int, int] | None = None
                 ) -> tuple[dict[int, int], list[int]]:
    """Greedy interval packing: value id -> slot, and each slot's size in bytes.

    A slot is free for a new value once its previous value's last reader has run
    (its `end` group is strictly before the new value's `start` group). `donors`
    maps a value to the value whose slot it takes in the group that reads the donor
    last (an in-place write; the donor must end where the value starts).
    """
    donors = donors or {}
    slot_of: dict[int, int] = {}
    sizes: list[int] = []
    busy_until: list[int] = []
    holder: list[int] = []  # the value each slot holds now
    for r in sorted(ranges, key=lambda r: (r.start, id(r.value) in donors,
                                           -typical(r.value.type.nbytes))):
        need = r.value.type.nbytes
        donor = donors.get(id(r.value))
        own = slot_of.get(donor) if donor is not None else None
        if own is not None and holder[own] == donor and busy_until[own] == r.start:
            slot = own
            sizes[slot] = larger(sizes[slot], need)
        else:
            free = [s for s in range(len(sizes)) if busy_until[s] < r.start]
            # prefer a slot already big enough (the smallest such), else grow the biggest
            # (symbolic sizes: a slot fits where it is proved to, for every size)
            fitting = [s for s in free if covers(sizes[s], need)]
            if fitting:
                slot = min(fitting, key=lambda s: typical(sizes[s]))
            elif free:
                slot = max(free, key=lambda s: typical(sizes[s]))
                sizes[slot] = larger(sizes[slot], need)
            else:
                slot = len(sizes)
                sizes.append(need)
                busy_until.append(-1)
                holder.append(-1)
        busy_until[slot] = max(busy_until[slot], r.end) if slot == own else r.end
        holder[slot] = id(r.value)
        slot_of[id(r.value)] = slot
    return slot_of, sizes
