"""Memory planning: liveness of the values that pass between kernels, and buffer reuse.

An analysis, not a rewrite: `live_ranges(graph)` says for each value in which group it
is made and in which group it is last read; `assign_slots` packs values whose
lifetimes do not overlap into the same buffer slot, so that a compiled function
needs only a few preallocated buffers, reused across calls (the backend keeps them in
a pool, so concurrent calls never share one).
"""
from __future__ import annotations

from dataclasses import dataclass

from graphc.ir import Graph, Value


@dataclass(frozen=True)
class LiveRange:
    value: Value
    start: int  # index of the group that defines it
    end: int    # index of the last group that reads it (start if never read)


def live_ranges(graph: Graph) -> dict[int, LiveRange]:
    """For each value made by a node, keyed by id(value): the groups it lives across.
    Graph outputs live to the end."""
    assert graph.groups is not None, "memory planning runs on a fused graph"
    start: dict[int, int] = {}
    end: dict[int, int] = {}
    values: dict[int, Value] = {}
    for gi, group in enumerate(graph.groups):
        for node in group.nodes:
            for v in node.inputs:
                if id(v) in start:
                    end[id(v)] = gi
            for v in node.outputs:
                start[id(v)] = end[id(v)] = gi
                values[id(v)] = v
    last = len(graph.groups)
    for v in graph.outputs:
        if id(v) in end:
            end[id(v)] = last
    return {k: LiveRange(values[k], start[k], end[k]) for k in start}


def assign_slots(ranges: list[LiveRange]) -> tuple[dict[int, int], list[int]]:
    """Greedy interval packing: value id -> slot, and each slot's size in bytes.

    A slot is free for a new value once its previous value's last reader has run
    (its `end` group is strictly before the new value's `start` group).
    """
    slot_of: dict[int, int] = {}
    sizes: list[int] = []
    busy_until: list[int] = []
    for r in sorted(ranges, key=lambda r: (r.start, -r.value.type.nbytes)):
        need = r.value.type.nbytes
        free = [s for s in range(len(sizes)) if busy_until[s] < r.start]
        # prefer a slot already big enough (the smallest such), else grow the biggest
        fitting = [s for s in free if sizes[s] >= need]
        if fitting:
            slot = min(fitting, key=lambda s: sizes[s])
        elif free:
            slot = max(free, key=lambda s: sizes[s])
            sizes[slot] = need
        else:
            slot = len(sizes)
            sizes.append(need)
            busy_until.append(-1)
        busy_until[slot] = r.end
        slot_of[id(r.value)] = slot
    return slot_of, sizes
