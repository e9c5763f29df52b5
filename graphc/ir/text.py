"""The text form of the IR: `print_graph` (what `str(graph)` shows) and `parse`.

    graph gelu(%x: f32[4,8]) -> (f32[4,8]) {
      %0: f32[4,8] = mul %x, %x                      # model.py:12
      %1: f32[] = const {value=0.5}
      %2: f32[4,1] = sum %0 {axes=(1,), keepdims=true}  # model.py:13
      return %2
    }

One node a line; a type on every value; attributes in braces; the user's source
location as a trailing comment. `parse(print_graph(g))` prints identically.

A fused graph (one with `groups`) is marked `fused` and prints each group as a kernel
region, headed by what crosses its boundary (graphc.ir.regions): the values its body
makes that anything outside reads, and the values it reads from outside, in order.

    graph f(%x: f32[8,16]) -> (f32[8,16]) fused {
      %0: f32[] = const {value=2.0}
      %3 = kernel k1 reduction (%x, %0) {              # 3 ops
        # note: why a neighbouring group was not merged (one line a note)
        %1: f32[8,16] = mul %x, %0                   # model.py:4
        %2: f32[8,1] = sum %1 {axes=(1,), keepdims=true}  # model.py:4
        %3: f32[8,16] = div %1, %2                   # model.py:5
      }
      return %3
    }

The leading "source" group (the constants) prints as plain lines above the kernels;
kernels are named by their group's index. The parser checks each header's lists
against its body and raises IRParseError naming the line where they differ.

A graph text is data from someone else, never code: the parser reads only the
grammar above (no value is evaluated), and then verifies the graph it read, every
attribute against its op's schema (`graphc.ops.schema`). Whatever is wrong, the
error is an IRParseError naming the line; one found by the verifier is a
`GraphTextError`, which is also a VerifyError.
"""
from __future__ import annotations

import base64
import re
from typing import Any

from graphc import dtypes
from graphc.errors import GraphcError, IRParseError, SourceLoc, VerifyError
from graphc.ir.regions import Boundary, group_boundaries
from graphc.ir.symbols import Guard, Sym, parse_dim
from graphc.ir.types import (ArrayLiteral, Attrs, Graph, Group, Node, TensorType, Value,
                             format_scalar)

COMMENT_COLUMN = 52
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
_DIM = re.compile(r"[0-9]+\Z")
_LOC_LINE = re.compile(r"[0-9]+\Z")
_INT64_MAX = 2**63 - 1
MAX_NESTING = 64  # brackets in one attribute value (a literal has one level an axis)


class GraphTextError(IRParseError, VerifyError):
    """A graph text that reads but does not verify: the message names its line."""


def format_attr(v: Any) -> str:
    if isinstance(v, Sym):
        return str(v)
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


def format_node(node: Node, column: int = COMMENT_COLUMN) -> str:
    lhs = ", ".join(f"%{v.name}: {v.type}" for v in node.outputs)
    text = f"{lhs} = {node.op}"
    if node.inputs:
        text += " " + ", ".join(f"%{v.name}" for v in node.inputs)
    if node.attrs:
        text += " {" + ", ".join(f"{k}={format_attr(v)}" for k, v in node.attrs.items()) + "}"
    if node.loc is not None:
        text = text.ljust(column) + f"  # {node.loc}"
    return text


def _names(values) -> str:
    return ", ".join(f"%{v.name}" for v in values)


def _format_region(index: int, group: Group, boundary: Boundary) -> list[str]:
    """A group as a kernel region: `%outs = kernel kI KIND (%ins) {`, its notes, its
    body one node a line (indented two more, their comments still in one column), `}`."""
    lhs = _names(boundary.outputs) + " = " if boundary.outputs else ""
    head = f"{lhs}kernel k{index} {group.kind} ({_names(boundary.inputs)}) {{"
    count = f"{len(group.nodes)} op" + ("" if len(group.nodes) == 1 else "s")
    lines = ["  " + head.ljust(COMMENT_COLUMN) + f"  # {count}"]
    lines += [f"    # note: {' '.join(note.split())}" for note in group.notes]
    lines += ["    " + format_node(n, COMMENT_COLUMN - 2) for n in group.nodes]
    return lines + ["  }"]


def print_graph(graph: Graph) -> str:
    """The text form of `graph`; a fused graph (one with groups) prints each group as
    a kernel region, except a leading "source" group (the constants) whose nodes print
    as plain lines above the kernels.

    >>> import graphc, numpy as np
    >>> f = graphc.compile(lambda x: np.tanh(x) * 2.0)
    >>> text = print_graph(f.lower(np.ones(3, np.float32)).optimized)
    >>> for line in text.splitlines():
    ...     print(line.split("  #")[0].rstrip())
    graph lambda(%x: f32[3]) -> (f32[3]) fused {
      %1: f32[] = const {value=2.0}
      %2 = kernel k1 elementwise (%x, %1) {
        %0: f32[3] = tanh %x
        %2: f32[3] = mul %0, %1
      }
      return %2
    }
    """
    params = ", ".join(f"%{v.name}: {v.type}" for v in graph.inputs)
    results = ", ".join(str(v.type) for v in graph.outputs)
    fused = "" if graph.groups is None else " fused"
    lines = [f"graph {graph.name}({params}) -> ({results}){fused} {{"]
    lines += [f"  assume {g}" for g in graph.guards]
    if graph.groups is None:
        lines += ["  " + format_node(n) for n in graph.nodes]
    else:
        for i, (group, bound) in enumerate(zip(graph.groups, group_boundaries(graph))):
            if i == 0 and group.kind == "source":  # constants: nothing crosses into them
                lines += ["  " + format_node(n) for n in group.nodes]
            else:
                lines += _format_region(i, group, bound)
    lines.append("  return " + _names(graph.outputs))
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
  | (?P<punct>->|>=|<=|==|!=|[<>]|[\[\](){}:,=*+]|-(?=[A-Za-z_]))
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
        if ln.peek() and ln.peek()[0] == "num" and ln.toks[ln.i + 1:ln.i + 2] in (
                [("punct", ",")], [("punct", "]")]):
            text = ln.take("num")
            if not _DIM.match(text) or int(text) > _INT64_MAX:
                ln.fail(f"a dimension is a non-negative int64, not {text}")
            dims.append(int(text))
        else:
            dims.append(_symbolic(ln, ",]"))
        ln.accept(",")
    size = 1
    for d in dims:
        size *= d
    if isinstance(size, int) and size > _INT64_MAX:
        ln.fail(f"a type of {size} elements: its size must fit in int64")
    return TensorType(tuple(dims), dtypes.SHORT_TO_DTYPE[short])


def _symbolic(ln: _Line, ends: str) -> int | Sym:
    """A dimension written as names, ints, + - and * (`2*B+S-1`), up to a token of
    `ends`; read by symbols.parse_dim's grammar, never evaluated as code."""
    parts = []
    while ln.peek() and ln.peek()[0] in ("num", "name", "punct") and \
            ln.peek()[1] not in tuple(ends):
        if ln.peek()[0] == "punct" and ln.peek()[1] not in ("*", "+", "-"):
            break
        parts.append(ln.take())
    if not parts:
        found = ln.peek()[1] if ln.peek() else "end of line"
        ln.fail(f"expected a size (names and ints with + - *), found {found}")
    try:
        return parse_dim(" ".join(parts))  # spaced: `4 4` is not 44
    except GraphcError as exc:
        ln.fail(exc.message)


_RELATIONS = ("==", "!=", "<", "<=", ">", ">=")
_SIZED_KINDS = ("shape", "ints", "pairs")  # the attribute kinds a symbolic size may fill


def _symbolic_names(ln: _Line, op: str, attrs: dict[str, Any]) -> None:
    """A lone name where an op's schema wants a size (`shape=(B, 64)`) is a symbol: the
    value grammar alone reads it as a string."""
    from graphc import ops

    record = ops.OPS.get(op)
    schema = dict(record.schema) if record is not None else {}

    def sized(v):
        if type(v) is tuple:
            return tuple(sized(x) for x in v)
        if type(v) is str and _IDENT.match(v) and "." not in v:
            try:
                return parse_dim(v)
            except GraphcError as exc:
                ln.fail(exc.message)
        return v

    for key, value in attrs.items():
        if key in schema and schema[key].kind in _SIZED_KINDS:
            attrs[key] = sized(value)


def _operator_follows(ln: _Line) -> bool:
    nxt = ln.toks[ln.i + 1] if ln.i + 1 < len(ln.toks) else ("", "")
    return nxt[1] in ("*", "+") or (nxt[0] == "num" and nxt[1].startswith("-"))


def _parse_attr_value(ln: _Line, depth: int = 0) -> Any:
    kind, text = ln.peek() or ("", "")
    if kind in ("num", "name") and _operator_follows(ln):  # a symbolic size: B*S, S-1
        return _symbolic(ln, ",)]}")
    if text in ("(", "["):
        if depth == MAX_NESTING:
            ln.fail(f"an attribute value nested deeper than {MAX_NESTING} brackets")
        ln.take()
        close = ")" if text == "(" else "]"
        items = []
        while not ln.accept(close):
            items.append(_parse_attr_value(ln, depth + 1))
            if not ln.accept(","):
                ln.take("punct", close)
                break
        return tuple(items) if close == ")" else items
    ln.take()
    if kind == "num":
        return _number(ln, text)
    if kind == "b64":
        try:
            return base64.b64decode(text[4:-1], validate=True)
        except ValueError:  # binascii.Error: bad padding
            ln.fail("the base64 bytes of a constant are cut short or padded wrongly")
    if kind == "str":
        return text[1:-1]
    if kind == "name":
        return {"true": True, "false": False, "none": None}.get(text, text)
    ln.fail(f"expected an attribute value, found {text}")


def _number(ln: _Line, text: str) -> int | float:
    if any(c in text for c in ".eEna"):
        return float(text)
    if len(text.lstrip("-")) > 20:  # int() refuses thousands of digits; int64 has 19
        ln.fail(f"the number {text[:24]}... does not fit in int64")
    return int(text)


def _parse_loc(comment: str | None) -> SourceLoc | None:
    if not comment:
        return None
    file, _, line = comment.rpartition(":")
    return SourceLoc(file, int(line)) if _LOC_LINE.match(line) else None


class _Region:
    """A kernel region being read: its header's line, name and declared boundary."""

    def __init__(self, lineno: int, kind: str, inputs: list[str], outputs: list[str]):
        self.lineno, self.kind, self.inputs, self.outputs = lineno, kind, inputs, outputs
        self.nodes: list[Node] = []
        self.notes: list[str] = []


class _Parser:
    """Reads a graph's lines in order; a fused graph's regions become its groups."""

    def __init__(self, head: _Line):
        self.env: dict[str, Value] = {}
        head.take("name", "graph")
        self.graph = Graph(head.take("name"))
        head.take("punct", "(")
        while not head.accept(")"):
            name = head.take("value")[1:]
            head.take("punct", ":")
            self.define(head, Value(name, _parse_type(head)))
            self.graph.inputs.append(self.env[name])
            head.accept(",")
        head.take("punct", "->")
        head.take("punct", "(")
        self.head_lineno = head.lineno
        self.result_types: list[TensorType] = []
        while not head.accept(")"):
            self.result_types.append(_parse_type(head))
            head.accept(",")
        self.fused = head.accept("fused")
        head.take("punct", "{")
        self.constants: list[Node] = []  # a fused graph's plain lines: its "source" group
        self.regions: list[_Region] = []
        self.open: _Region | None = None
        self.returned = False
        self.lineno_of: dict[int, int] = {}  # id(node or group) -> the line it was read from

    def define(self, ln: _Line, v: Value) -> None:
        if v.name in self.env:
            ln.fail(f"%{v.name} is defined twice")
        self.env[v.name] = v

    def assume(self, ln: _Line) -> None:
        """`assume D >= 4`: a guard of a symbolic graph, before its first node."""
        if self.graph.nodes or self.open is not None:
            ln.fail("an `assume` line comes before the graph's first node")
        ln.take("name", "assume")
        lhs = _symbolic(ln, _RELATIONS)
        relation = ln.take("punct")
        if relation not in _RELATIONS:
            ln.fail(f"expected one of {' '.join(_RELATIONS)}, found {relation}")
        rhs = _symbolic(ln, "")
        if not ln.done():
            ln.fail(f"unexpected {ln.peek()[1]} after the guard")
        expr = lhs - rhs if relation in ("==", "!=", "<", "<=") else rhs - lhs
        if type(expr) is not Sym:
            ln.fail("a guard compares sizes that involve a symbol")
        guard = Guard(expr, {">": "<", ">=": "<="}.get(relation, relation))
        self.graph.guards = (*self.graph.guards, guard)

    def lookup(self, ln: _Line, name: str) -> Value:
        if name[1:] not in self.env:
            ln.fail(f"{name} is used before it is defined")
        return self.env[name[1:]]

    def line(self, ln: _Line) -> bool:
        """Read one line; False at the graph's closing brace."""
        first = ln.peek()
        if first is None:  # a comment line: inside a region, `# note: ...` is a note
            if self.open is not None and (ln.comment or "").startswith("note:"):
                self.open.notes.append(ln.comment[len("note:"):].strip())
        elif first == ("punct", "}"):
            ln.take()
            if self.open is None:
                return False
            self.close_region(ln)
        elif first == ("name", "assume"):
            self.assume(ln)
        elif first == ("name", "return"):
            self.return_line(ln)
        elif self.returned:
            ln.fail("nothing but the closing brace may follow the return line")
        elif _is_region_header(ln):
            self.region_header(ln)
        else:
            self.node_line(ln)
        if not ln.done():
            ln.fail(f"unexpected {ln.peek()[1]} at the end of the line")
        return True

    def return_line(self, ln: _Line) -> None:
        if self.open is not None:
            ln.fail(f"return inside kernel k{self._index()}: close it with }} first")
        ln.take()
        while not ln.done():
            self.graph.outputs.append(self.lookup(ln, ln.take("value")))
            ln.accept(",")
        self.returned = True

    def _index(self) -> int:  # the group number of the region being read or next
        return len(self.regions) - (self.open is not None) + bool(self.constants)

    def region_header(self, ln: _Line) -> None:
        if not self.fused:
            ln.fail("a kernel region in a graph not marked fused: write `-> (...) fused {`")
        if self.open is not None:
            ln.fail(f"a kernel inside kernel k{self._index()}: regions do not nest")
        outputs = []
        if ln.peek()[0] == "value":
            outputs.append(ln.take("value")[1:])
            while ln.accept(","):
                outputs.append(ln.take("value")[1:])
            ln.take("punct", "=")
        ln.take("name", "kernel")
        name, want = ln.take("name"), f"k{self._index()}"
        if name != want:
            ln.fail(f"expected kernel {want}, found {name}: kernels are numbered by their "
                    "group, in order (the constants, when there are any, are group 0)")
        kind = ln.take("name")
        ln.take("punct", "(")
        inputs = []
        while not ln.accept(")"):
            inputs.append(ln.take("value")[1:])
            if not ln.accept(","):
                ln.take("punct", ")")
                break
        ln.take("punct", "{")
        self.open = _Region(ln.lineno, kind, inputs, outputs)
        self.regions.append(self.open)

    def close_region(self, ln: _Line) -> None:
        if not self.open.nodes:
            ln.fail(f"kernel k{self._index()} is empty: a kernel holds at least one node")
        self.open = None

    def node_line(self, ln: _Line) -> None:
        if self.fused and self.open is None and self.regions:
            ln.fail("a node outside every kernel after the first kernel: in a fused graph "
                    "only the constants, above the kernels, stand outside a kernel")
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
            inputs.append(self.lookup(ln, ln.take("value")))
            ln.accept(",")
        attrs: dict[str, Any] = {}
        if ln.accept("{"):
            while not ln.accept("}"):
                key = ln.take("name")
                if key in attrs:
                    ln.fail(f"attribute {key} is given twice")
                ln.take("punct", "=")
                attrs[key] = _parse_attr_value(ln)
                ln.accept(",")
        if op == "const":  # the literal's dtype and shape are the output's type
            attrs["value"] = _literal(ln, attrs.get("value"), outs[0].type)
        _symbolic_names(ln, op, attrs)
        node = Node(op, tuple(inputs), Attrs(attrs), tuple(outs), _parse_loc(ln.comment))
        self.lineno_of[id(node)] = ln.lineno
        for v in outs:
            v.node = node
            self.define(ln, v)
        self.graph.nodes.append(node)
        if self.fused:
            (self.open.nodes if self.open is not None else self.constants).append(node)

    def finish(self, closed: bool, last_lineno: int) -> Graph:
        """The graph read, once every line is; `closed`: its closing brace was read."""
        if self.open is not None:
            raise IRParseError(f"line {self.open.lineno}: kernel k{self._index()} is never "
                               "closed: end it with a line `}`", loc=False)
        if not closed:
            raise IRParseError(f"line {last_lineno}: the graph is never closed: end it with "
                               "a line `}`", loc=False)
        if not self.fused:
            return self.graph
        groups = [Group("source", tuple(self.constants))] if self.constants else []
        for r in self.regions:
            groups.append(Group(r.kind, tuple(r.nodes), tuple(r.notes)))
            self.lineno_of[id(groups[-1])] = r.lineno
        self.graph.groups = groups
        first = len(groups) - len(self.regions)  # 1 when the constants are group 0
        for i, bound in enumerate(group_boundaries(self.graph)[first:], first):
            _check_declared(self.regions[i - first], i, bound)
        return self.graph

    def verified(self, first_lineno: int) -> Graph:
        """The graph read, once it verifies; else a GraphTextError naming the line of
        the node at fault (or the first line, for the graph as a whole)."""
        try:
            self.graph.verify()
        except VerifyError as exc:
            node = getattr(exc, "node", None)
            lineno = self.lineno_of.get(id(node), first_lineno)
            raise GraphTextError(f"line {lineno}: {exc.message}", hint=exc.hint,
                                 loc=False) from None
        returned = [v.type for v in self.graph.outputs]
        if returned != self.result_types:
            shown = ", ".join(map(str, returned))
            raise IRParseError(f"line {self.head_lineno}: the header says the graph returns "
                               f"({', '.join(map(str, self.result_types))}) but its return "
                               f"line gives ({shown})", loc=False)
        return self.graph


def _literal(ln: _Line, raw: Any, ttype: TensorType) -> ArrayLiteral:
    """A const's value, read as the output's dtype and shape (its type says both)."""
    if not isinstance(raw, (bytes, list, bool, int, float)):
        ln.fail("attribute value=: a const's value is a number, a [nested, list] or b64 "
                f"bytes, not a {type(raw).__name__}")
    try:
        return ArrayLiteral.from_parsed(raw, ttype)
    except GraphcError as exc:  # bfloat16: no numpy dtype holds it
        ln.fail(f"attribute value=: {exc.message}")
    except (ValueError, TypeError, OverflowError) as exc:
        ln.fail(f"attribute value=: a const's value does not make a {ttype} array ({exc})")


def _is_region_header(ln: _Line) -> bool:
    # `kernel kI ...` or `%a, %b = kernel kI ...`: a node line's first value is typed
    toks = ln.toks
    return toks[0] == ("name", "kernel") or (
        toks[0][0] == "value" and toks[1:2] != [("punct", ":")])


def _check_declared(region: _Region, index: int, bound: Boundary) -> None:
    """A region's header must name exactly what crosses its boundary, in order."""
    def names(values) -> str:
        return "(" + ", ".join("%" + v for v in values) + ")"

    for what, declared, actual, where in (
            ("inputs", region.inputs, bound.inputs, "its body reads {} from outside it"),
            ("outputs", region.outputs, bound.outputs,
             "the values of its body read outside it are {}")):
        actual = [v.name for v in actual]
        if declared != actual:
            raise IRParseError(
                f"line {region.lineno}: kernel k{index} declares {what} {names(declared)} "
                f"but {where.format(names(actual))}: make its header list exactly those, "
                "in that order", loc=False)


def parse(text: str) -> Graph:
    """Read the text form back into a Graph (the inverse of `str(graph)`), a fused
    graph's kernel regions back into its groups.

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
    parser = _Parser(_Line(lines[0][1], lines[0][0]))
    closed = False
    for lineno, raw in lines[1:]:
        closed = not parser.line(_Line(raw, lineno))
        if closed:
            break
    parser.finish(closed, lines[-1][0])
    return parser.verified(lines[0][0])
