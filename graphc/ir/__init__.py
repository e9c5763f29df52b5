"""graphc's IR: typed SSA graphs of primitive ops, printable and parseable.

>>> import graphc, numpy as np
>>> g = graphc.trace(lambda x: x * 2.0, np.ones(3, np.float32))
>>> print(str(g).splitlines()[0])
graph lambda(%x: f32[3]) -> (f32[3]) {
"""
from graphc.ir.types import ArrayLiteral, Attrs, Graph, Group, Node, TensorType, Value
from graphc.ir.regions import Boundary, group_boundaries
from graphc.ir.text import parse, print_graph
from graphc.ir.builder import NodeBuilder

__all__ = ["ArrayLiteral", "Attrs", "Boundary", "Graph", "Group", "Node", "NodeBuilder",
           "TensorType", "Value", "group_boundaries", "parse", "print_graph"]
