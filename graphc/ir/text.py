"""The text form of the IR: `print_graph` (what `str(graph)` shows) and `parse`.

    graph gelu(%x: f32[4,8]) -> (f32[4,8]) {
      %0: f32[4,8] = mul %x, %x                      # model.py:12
      %1: f32[] = const {value=0.5}
      %2: f32[4,1] = sum %0 {axes=(1,), keepdims=true}  # model.py:13
      return %2
    }

One node a line; a type on every value; attributes in braces; the user's source
location as a trailing comment. `parse(print_graph(g))` prints identically.
"""
from __future__ import annotations

import base64
import re
from typing import Any

from graphc import dtypes
from graphc.errors import IRParseError, SourceLoc
from graphc.ir.types import (ArrayLiteral, Attrs, Graph, Group, Node, TensorType, Value,
                             format_scalar)

COMMENT_COLUMN = 52
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def format_attr(v: Any) -> str:
    if isinstance(v, ArrayLiteral):
        return v.to_text()
    if v is None:
        return "none"
    if isinstance(v, tuple):
        inner = ", ".join(format_attr(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, str):
        return v if _IDENT.match(v) and v not in ("true", "false", "none", "inf", "nan") \
            else '"' + v + '"'
    return format_scalar(v)


def format_node(node: Node) -> str:
    lhs = ", ".join(f"%{v.name}: {v.type}" for v in node.outputs)
    text = f"{lhs} = {node.op}"
    if node.inputs:
        text += " " + ", ".join(f"%{v.name}" for v in node.inputs)
    if node.attrs:
        text += " {" + ", ".join(f"{k}={format_attr(v)}" for k, v in node.attrs.items()) + "}"
    if node.loc is not None:
        text = text.ljust(COMMENT_COLUMN) + f"  # {node.loc}"
    return text


def print_graph(graph: Graph) -> str:
    params = ", ".join(f"%{v.name}: {v.type}" for v in graph.inputs)
    results = ", ".join(str(v.type) for v in graph.outputs)
    lines = [f"graph {graph.name}({params}) -> ({results}) {{"]
    if graph.groups is None:
        lines += ["  " + format_node(n) for n in graph.nodes]
    else:
        for i, group in enumerate(graph.groups):
            lines.append(f"  # group {i}: {group.kind}")
            lines += ["  " + format_node(n) for n in group.nodes]
    lines.append("  return " + ", ".join(f"%{v.name}" for v in graph.outputs))
    lines.append("}")
    return "\n".join(lines)


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#.*)
  | (?P<value>%[A-Za-z0-9_.]+)
  | (?P<b64>b64"[A-Za-z0-9+/=]*")
  | (?P<str>"[^"]*")
  | (?P<num>-?(?:inf\b|nan\b|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>->|[\[\](){}:,=])
""", re.VERBOSE)


class _Line:
    """Tokens of one line, consumed left to right."""

    def __init__(self, text: str, lineno: int):
        self.lineno, self.toks, self.comment = lineno, [], None
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                self.fail(f"unexpected character {text[pos]!r}")
            pos = m.end()
            if m.lastgroup == "comment":
                self.comment = m.group()[1:].strip()
            elif m.lastgroup != "ws":
                self.toks.append((m.lastgroup, m.group()))
        self.i = 0

    def fail(self, msg: str):
        raise IRParseError(f"line {self.lineno}: {msg}", loc=False)

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str | None = None, text: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind) or (text and tok[1] != text):
            want = text or kind
            self.fail(f"expected {want}, found {tok[1] if tok else 'end of line'}")
        self.i += 1
        return tok[1]

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[1] == text:
            self.i += 1
            return True
        return False

    def done(self) -> bool:
        return self.i == len(self.toks)


def _parse_type(ln: _Line) -> TensorType:
    short = ln.take("name")
    if short not in dtypes.SHORT_TO_DTYPE:
        ln.fail(f"unknown dtype {short}")
    ln.take("punct", "[")
    dims = []
    while not ln.accept("]"):
        dims.append(int(ln.take("num")))
        ln.accept(",")
    return TensorType(tuple(dims), dtypes.SHORT_TO_DTYPE[short])


def _parse_attr_value(ln: _Line) -> Any:
    kind, text = ln.peek() or ("", "")
    if text in ("(", "["):
        ln.take()
        close = ")" if text == "(" else "]"
        items = []
        while not ln.accept(close):
            items.append(_parse_attr_value(ln))
            if not ln.accept(","):
                ln.take("punct", close)
                break
        return tuple(items) if close == ")" else items
    ln.take()
    if kind == "num":
        return float(text) if any(c in text for c in ".eEna") else int(text)
    if kind == "b64":
        return base64.b64decode(text[4:-1])
    if kind == "str":
        return text[1:-1]
    if kind == "name":
        return {"true": True, "false": False, "none": None}.get(text, text)
    ln.fail(f"expected an attribute value, found {text}")


def _parse_loc(comment: str | None) -> SourceLoc | None:
    if not comment:
        return None
    file, _, line = comment.rpartition(":")
    return SourceLoc(file, int(line)) if line.isdigit() else None


def parse(text: str) -> Graph:
    """Read the text form back into a Graph (the inverse of `str(graph)`).

    >>> import graphc, numpy as np
    >>> g = graphc.trace(lambda x: np.tanh(x) + 1.0, np.ones(2, np.float32))
    >>> str(graphc.ir.parse(str(g))) == str(g)
    True
    """
    lines = [(i + 1, raw) for i, raw in enumerate(text.splitlines()) if raw.strip()]
    while lines and lines[0][1].lstrip().startswith("#"):  # a header, as dumps write one
        lines.pop(0)
    if not lines:
        raise IRParseError("empty text", loc=False)
    env: dict[str, Value] = {}

    def lookup(ln: _Line, name: str) -> Value:
        if name[1:] not in env:
            ln.fail(f"{name} is used before it is defined")
        return env[name[1:]]

    head = _Line(lines[0][1], lines[0][0])
    head.take("name", "graph")
    graph = Graph(head.take("name"))
    head.take("punct", "(")
    while not head.accept(")"):
        name = head.take("value")[1:]
        head.take("punct", ":")
        env[name] = Value(name, _parse_type(head))
        graph.inputs.append(env[name])
        head.accept(",")
    head.take("punct", "->")
    head.take("punct", "(")
    while not head.accept(")"):
        _parse_type(head)
        head.accept(",")
    head.take("punct", "{")
    groups: list[tuple[str, list[Node]]] = []
    for lineno, raw in lines[1:]:
        ln = _Line(raw, lineno)
        first = ln.peek()
        if first is None:
            header = re.match(r"group \d+: (\w+)$", ln.comment or "")
            if header:
                groups.append((header.group(1), []))
            continue
        if first == ("punct", "}"):
            break
        if first == ("name", "return"):
            ln.take()
            while not ln.done():
                graph.outputs.append(lookup(ln, ln.take("value")))
                ln.accept(",")
            continue
        outs = []
        while True:
            name = ln.take("value")[1:]
            ln.take("punct", ":")
            outs.append(Value(name, _parse_type(ln)))
            if not ln.accept(","):
                break
        ln.take("punct", "=")
        op = ln.take("name")
        inputs = []
        while ln.peek() and ln.peek()[0] == "value":
            inputs.append(lookup(ln, ln.take("value")))
            ln.accept(",")
        attrs: dict[str, Any] = {}
        if ln.accept("{"):
            while not ln.accept("}"):
                key = ln.take("name")
                ln.take("punct", "=")
                attrs[key] = _parse_attr_value(ln)
                ln.accept(",")
        if op == "const":  # the literal's dtype and shape are the output's type
            attrs["value"] = ArrayLiteral.from_parsed(attrs.get("value"), outs[0].type)
        node = Node(op, tuple(inputs), Attrs(attrs), tuple(outs), _parse_loc(ln.comment))
        for v in outs:
            v.node = node
            env[v.name] = v
        graph.nodes.append(node)
        if groups:
            groups[-1][1].append(node)
    if groups:
        graph.groups = [Group(kind, tuple(nodes)) for kind, nodes in groups]
    return graph
