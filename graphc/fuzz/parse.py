"""The parse fuzzer: a graph text is data from someone else, so nothing but a
GraphcError may escape `graphc.ir.parse`, whatever the text.

`python -m graphc fuzz --parse N [--seed S]` feeds `parse` N texts: random edits of
valid graph texts (one to four characters inserted, deleted or replaced, or a line
dropped or repeated) and random streams of the IR's tokens. A text that parses must
verify, print, and parse back to the same text. Any other exception is a failure:
`fuzz_parse` returns them, and the command prints the first few and exits 1.

>>> fuzz_parse(50, seed=1)
[]
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass

from graphc import ops
from graphc.errors import GraphcError
from graphc.ir import Attrs, Graph, Node, TensorType, Value, parse

# characters an edit inserts: the IR's own, and a few it never uses
_ALPHABET = "0123456789.-+*<>!eE[](){}:,=%#\"' \n\tabfiknrstuxzBS_\\/$\u00b2\u2028\x00"
# tokens a random stream is made of
_TOKENS = (["graph", "kernel", "return", "fused", "true", "false", "none", "inf", "nan",
            "->", "(", ")", "[", "]", "{", "}", ":", ",", "=", "%x", "%0", "%1", "\n",
            "f32[2,3]", "i64[]", "bool[4]", "f64[0]", "bf16[2]", "0", "1", "-1", "2.5",
            "1e400", "99999999999999999999", 'b64"AAAAAA=="', '"s"', "# a.py:3", "k0",
            "elementwise", "single", "source", "assume", "B", "S", "*", "+", ">=", "<", "!=",
            "f32[B,3]", "f32[2*B-1]"]
           + sorted(ops.OPS) + sorted({a for op in ops.OPS.values() for a in op.attrs}))


@dataclass
class Failure:
    """A text on which something other than a GraphcError escaped."""

    text: str
    error: BaseException

    def __str__(self) -> str:
        return f"{type(self.error).__name__}: {self.error}\n--- text ---\n{self.text}"


def seed_texts(count: int = 24, seed: int = 0) -> list[str]:
    """Valid graph texts to edit: random graphs of the graph fuzzer, fused and not,
    and the window ops, random bits and every other attribute kind besides."""
    from graphc import backends
    from graphc.fuzz.builder import Chooser, build
    from graphc.passes import pipeline

    texts = []
    for i in range(count):
        graph, _ = build(Chooser.from_random(random.Random(seed * 1000 + i)), 8)
        texts.append(str(graph))
        if i % 3 == 0:  # a fused graph: its kernel regions have a grammar of their own
            policy = backends.get("numpy").FUSION_POLICY
            texts.append(str(pipeline.run(graph, policy=policy)[-1].graph))
    return texts + [str(g) for g in _window_graphs()] + _symbolic_texts()


def _symbolic_texts() -> list[str]:
    """Graphs with symbolic sizes in their types, attributes and guards."""
    import numpy as np

    from graphc.frontend.trace import trace_function
    from graphc.ir.symbols import Sym

    B, S = Sym.var("B"), Sym.var("S")

    def model(x, w):
        h = (x @ w)[:, :4]
        return np.concatenate([h, h[1:]]).reshape(-1), np.tanh(x).sum(axis=0)

    x, w = np.ones((3, 6), np.float32), np.ones((6, 5), np.float32)
    return [str(trace_function(model, (x, w), {}, shapes={0: (B, 6), 1: (6, S)}).graph)]


def _window_graphs() -> list[Graph]:
    f32 = "float32"
    conv = {"stride": (1, 2), "padding": (1, 0), "dilation": (1, 1), "groups": 1}
    pool = {"kernel": (2, 2), "stride": (2, 1), "padding": (1, 0)}
    cases = [
        ("conv2d", [((1, 2, 5, 5), f32), ((3, 2, 3, 3), f32)], conv),
        ("max_pool2d", [((1, 2, 4, 4), f32)], pool),
        ("avg_pool2d_grad", [((1, 2, 3, 3), f32)], {**pool, "input_shape": (1, 2, 4, 4)}),
        ("pad", [((2, 3), f32)], {"widths": ((1, 0), (0, 2)), "value": -1.5}),
        ("iota", [], {"shape": (2, 3), "axis": 1, "dtype": "int32"}),
        ("philox_uniform", [((), "int64")], {"shape": (4,), "offset": 3, "dtype": f32}),
        ("slice", [((5, 4), f32)], {"starts": (4, 0), "stops": (-1, 4), "steps": (-2, 3)}),
        ("round", [((3,), "float64")], {"decimals": -2}),
        ("matmul", [((2, 3), f32), ((4, 3), f32)], {"transpose_b": True}),
    ]
    graphs = []
    for op, types, attrs in cases:
        params = [Value(f"x{i}", TensorType(*t)) for i, t in enumerate(types)]
        frozen = Attrs(attrs)
        (out,) = ops.infer_types(op, tuple(v.type for v in params), frozen)
        node = Node(op, tuple(params), frozen)
        node.outputs = (Value("0", out, node),)
        graphs.append(Graph(op, params, [node], [node.output]))
    return graphs


def edit(text: str, rnd: random.Random) -> str:
    """`text` with one to four random characters inserted, deleted or replaced, or
    one line dropped or repeated."""
    if rnd.random() < 0.1:
        lines = text.splitlines()
        i = rnd.randrange(len(lines))
        lines[i:i + 1] = [] if rnd.random() < 0.5 else [lines[i]] * 2
        return "\n".join(lines)
    chars = list(text)
    for _ in range(rnd.randint(1, 4)):
        at = rnd.randrange(len(chars) + 1)
        what = rnd.random()
        if what < 0.4 or not chars or at == len(chars):
            chars.insert(at, rnd.choice(_ALPHABET))
        elif what < 0.7:
            del chars[at]
        else:
            chars[at] = rnd.choice(_ALPHABET)
    return "".join(chars)


def token_stream(rnd: random.Random) -> str:
    """A random sequence of the IR's tokens, sometimes inside a graph's header."""
    body = " ".join(rnd.choice(_TOKENS) for _ in range(rnd.randint(1, 40)))
    if rnd.random() < 0.5:
        return f"graph g(%x: f32[2,3]) -> (f32[2,3]) {{\n  {body}\n  return %x\n}}"
    return body


def check_text(text: str) -> BaseException | None:
    """What escaped `parse` on `text` that should not have, or None."""
    try:
        graph = parse(text)
        graph.verify()
        again = str(graph)
        if str(parse(again)) != again:
            return AssertionError("the parsed graph does not print and parse back the same")
    except GraphcError:
        return None
    except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
        return exc
    return None


def fuzz_parse(examples: int, seed: int = 0) -> list[Failure]:
    """Parse `examples` random texts (edits of valid ones, three in four; token
    streams); return the failures."""
    rnd = random.Random(seed)
    seeds = seed_texts(seed=seed)
    failures = []
    for _ in range(examples):
        text = edit(rnd.choice(seeds), rnd) if rnd.random() < 0.75 else token_stream(rnd)
        error = check_text(text)
        if error is not None:
            failures.append(Failure(text, error))
    return failures


def run(examples: int, seed: int = 0, out=None, shown: int = 5) -> int:
    """`python -m graphc fuzz --parse N`: print the first failures and a summary (to
    `out`, default stdout); return the number of failures."""
    out = out or sys.stdout
    failures = fuzz_parse(examples, seed)
    for failure in failures[:shown]:
        print(f"FAIL {failure}\n", file=out)
    print(f"parse fuzz: {examples} texts, {len(failures)} failures (seed {seed})", file=out)
    return len(failures)
