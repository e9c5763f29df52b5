"""The parse fuzzer at a small budget: random edits of valid graph texts and random
token streams, on which nothing but a GraphcError may escape `parse` (and a graph it
reads verifies and prints back the same). `python -m graphc fuzz --parse 100000`
runs the same at CI's budget."""
import random

import pytest

from graphc.errors import GraphcError, IRParseError
from graphc.fuzz.parse import edit, fuzz_parse, seed_texts, token_stream
from graphc.ir import parse

BUDGET = 3000


def test_nothing_but_a_graphc_error_escapes_parse():
    failures = fuzz_parse(BUDGET, seed=19)
    assert not failures, "\n\n".join(map(str, failures[:3]))


def test_the_seed_texts_are_valid_and_the_edits_reach_every_outcome():
    seeds = seed_texts()
    for text in seeds:
        assert str(parse(text)) == text
    assert any(" fused {" in t for t in seeds) and any("conv2d" in t for t in seeds)
    rnd = random.Random(0)
    outcomes = set()
    for _ in range(500):
        text = edit(rnd.choice(seeds), rnd) if rnd.random() < 0.75 else token_stream(rnd)
        try:
            parse(text)
            outcomes.add("parsed")
        except GraphcError as exc:
            outcomes.add(type(exc).__name__)
    # parsed, refused by the reader, refused by the verifier (GraphTextError)
    assert outcomes == {"parsed", "IRParseError", "GraphTextError"}


@pytest.mark.parametrize("edit_of", ["f32[4,.8]", "f32[4,8e]", "f32[4,-8]", "f32[4,nan]",
                                     "f32[4,8.]", "f32[4,88888888888888888888]"])
def test_a_bad_dimension_is_an_ir_parse_error_naming_the_line(edit_of):
    # 9 of 3,000 random edits raised a bare ValueError here (the issue)
    text = f"graph f(%x: f32[4]) -> (f32[4]) {{\n  %0: {edit_of} = exp %x\n  return %0\n}}"
    with pytest.raises(IRParseError, match="line 2: "):
        parse(text)


def test_the_command_line_runs_it(capsys):
    from graphc.__main__ import main
    assert main(["fuzz", "--parse", "200", "--seed", "3"]) == 0
    assert "parse fuzz: 200 texts, 0 failures" in capsys.readouterr().out
