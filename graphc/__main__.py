"""The command line: `python -m graphc bench|fuzz|replay|ulp|show [options]` (also `graphc`).

    python -m graphc bench                    the whole suite at full size, all peers
    python -m graphc bench --quick --peers none --json out.json
    python -m graphc fuzz --examples 3000 --seed 1   random graphs vs. the interpreter
    python -m graphc fuzz --parse 100000      random graph texts: parse raises only GraphcError
    python -m graphc bench --only gelu,softmax --repeats 20 --plot bench.png
    python -m graphc bench --backend triton   on the GPU vs torch eager and torch.compile
    python -m graphc bench --suite compile    compile time against graph size
    python -m graphc bench --suite dynamic    the mlp forward over 300 batch sizes
    python -m graphc replay /tmp/graphc-x/loss.repro.ir --inputs random
    python -m graphc ulp --only tanh,exp      max ulp error of float32 math vs. float64
    python -m graphc show model.graphc         an exported file's signature and graph
    python -m graphc cache [--clear]          each disk cache's folder, entries, size

Exit status: 0 when every result matched eager numpy, 1 when any was a FAIL,
2 for a usage error (including --plot without matplotlib, and --backend triton where
it cannot run: no torch/triton, or no GPU without TRITON_INTERPRET=1). `fuzz` exits 0
when no random graph differed from the reference interpreter, else 1. `replay` exits 1 when
the failure it replays happens again, 0 when it does not, 2 for a bad file. `show`
exits 2 for a file graphc.load refuses.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Sequence

PEERS = {"none": (), "torch": ("torch",), "jax": ("jax",), "all": ("torch", "jax")}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from graphc.bench.workloads import WORKLOADS
    parser = argparse.ArgumentParser(prog="python -m graphc",
                                     description="graphc: a graph compiler for numpy code")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser(
        "bench", help="run the benchmark suite",
        description="Time each workload as eager numpy, graphc and the installed peers "
                    "(workloads: " + ", ".join(WORKLOADS) + ").")
    bench.add_argument("--suite", choices=["kernels", "models", "compile", "dynamic"],
                       default="kernels",
                       help="kernels: the numpy workloads (default); models: the "
                            "example models' PyTorch training steps (needs torch); "
                            "compile: first-call compile time against graph size; "
                            "dynamic: the mlp forward over 300 batch sizes")
    bench.add_argument("--backend", choices=["numpy", "triton"], default="numpy",
                       help="numpy: graphc on the CPU against numpy and the peers "
                            "(default); triton: on the GPU against torch eager and "
                            "torch.compile (graphc/bench/triton_suite.py)")
    bench.add_argument("--only", metavar="NAME[,NAME]",
                       help="run only these workloads (comma-separated)")
    bench.add_argument("--quick", action="store_true",
                       help="tiny sizes: the whole suite in a few seconds (for CI)")
    bench.add_argument("--repeats", type=_positive, default=None, metavar="N",
                       help="timed rounds per workload (default 10, --quick 5)")
    bench.add_argument("--peers", choices=list(PEERS), default="all",
                       help="which peer libraries to run where installed (default: all)")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.add_argument("--plot", metavar="FILE.png",
                       help="also draw a bar chart (needs matplotlib)")
    fuzz = commands.add_parser(
        "fuzz", help="differential fuzzing of the passes and the numpy backend",
        description="Build random graphs over the primitives, compile each through the "
                    "full pipeline and the numpy backend (normally and with tiny block "
                    "kernels) and compare with the reference interpreter.")
    fuzz.add_argument("--examples", type=_positive, default=1000, metavar="N",
                      help="how many random graphs to check (default 1000)")
    fuzz.add_argument("--backend", choices=["numpy", "triton"], default="numpy",
                      help="the backend to check (triton: on a GPU, or under "
                           "TRITON_INTERPRET=1 on the CPU)")
    fuzz.add_argument("--seed", type=int, default=0, metavar="S",
                      help="random seed (default 0): the same seed checks the same graphs")
    fuzz.add_argument("--max-nodes", type=_positive, default=12, metavar="K",
                      help="at most this many nodes per graph (default 12)")
    fuzz.add_argument("--parse", type=_positive, metavar="N",
                      help="instead, parse N random graph texts (edits of valid ones, "
                           "token streams): nothing but a GraphcError may escape")
    replay = commands.add_parser(
        "replay", help="run the compiler again on the IR file an internal error wrote",
        description="Parse FILE.ir (written by a GraphcInternalError), run the passes its "
                    "header names, then codegen, and with --inputs random the generated "
                    "code against graphc.interpret. Exit 1 when a stage fails.")
    replay.add_argument("file", metavar="FILE.ir")
    replay.add_argument("--pass", dest="passes", action="append", default=[],
                        metavar="NAME=MODULE:FUNCTION",
                        help="where a pass that is not a default one lives (repeatable)")
    replay.add_argument("--inputs", choices=["none", "random"], default="none",
                        help="also run the generated code on random inputs (default none)")
    ulp = commands.add_parser(
        "ulp", help="max ulp error of each float32 math function against float64",
        description="Measure numpy's float32 math functions and graphc's native kernels "
                    "(one per -march target) against float64 over the float32 range.")
    ulp.add_argument("--only", metavar="NAME[,NAME]",
                     help="only these functions (default: all; see graphc/bench/ulp.py)")
    ulp.add_argument("--march", default="native,x86-64-v3", metavar="M[,M]",
                     help="native kernels built for these targets (default native,x86-64-v3;"
                          " 'none' for numpy alone)")
    ulp.add_argument("--per-binade", type=_positive, default=4096, metavar="N",
                     help="significands per exponent and sign (default 4096)")
    ulp.add_argument("--every", action="store_true",
                     help="every finite float32 instead of the sweep (hours)")
    show = commands.add_parser(
        "show", help="print an exported file's signature and graph",
        description="Load FILE (written by graphc.Exported.save) as graphc.load does, "
                    "checking every line, and print its call signature and its graph.")
    show.add_argument("file", metavar="FILE")
    cache = commands.add_parser(
        "cache", help="list graphc's disk caches, or empty them",
        description="Print each disk cache's folder, entries and size (the folder comes "
                    "from GRAPHC_CACHE_DIR, else ~/.cache/graphc).")
    cache.add_argument("--clear", action="store_true", help="delete every entry")
    return parser


def _workloads(parser: argparse.ArgumentParser, only: str | None,
               suite: str = "kernels") -> list[str]:
    if suite == "models":
        from graphc.bench.models import MODELS as WORKLOADS
    else:
        from graphc.bench.workloads import WORKLOADS
    if not only:
        return list(WORKLOADS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        parser.error(f"unknown workload {', '.join(unknown) or repr(only)}; "
                     f"choose from {', '.join(WORKLOADS)}")
    return names


def bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from graphc.bench import report
    from graphc.bench.measure import copy_bandwidth
    from graphc.bench.runner import run_suite

    if args.suite == "compile":
        from graphc.bench import compile_suite
        compile_suite.run(compile_suite.QUICK_LAYERS if args.quick else
                          compile_suite.LAYERS, peers=args.peers != "none")
        return 0
    if args.suite == "dynamic":
        from graphc.bench import dynamic_suite
        rows = dynamic_suite.run(args.quick, peers=PEERS[args.peers])
        return 1 if any(row["check"] == "FAIL" for row in rows) else 0
    if args.suite == "models":
        if args.backend == "triton":
            parser.error("--suite models runs on the CPU only; --backend triton takes "
                         "the kernels suite")
        return bench_models(args, parser)
    names = _workloads(parser, args.only)
    if args.backend == "triton":
        from graphc.bench.triton_suite import command
        if args.plot:
            parser.error("--plot is not drawn for --backend triton; leave it out")
        return command(names, args.quick, args.repeats, PEERS[args.peers], args.json)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        print("graphc bench: --plot needs matplotlib, which is not installed; "
              "install it with `pip install matplotlib`, or leave out --plot",
              file=sys.stderr)
        return 2
    repeats = args.repeats or (5 if args.quick else 10)
    bandwidth = copy_bandwidth(32 if args.quick else 256)
    rows = run_suite(names, quick=args.quick, repeats=repeats, peers=PEERS[args.peers],
                     bandwidth=bandwidth)
    size = "quick (tiny) sizes" if args.quick else "full sizes"
    print(f"graphc bench: {size}, median of {repeats} interleaved samples, copy bandwidth "
          f"{bandwidth / 1e9:.1f} GB/s\n")
    print(report.format_table(rows) + "\n")
    print(report.LEGEND + "\n")
    print(report.format_compile_table(rows))
    print("(graphc: trace, passes and codegen; torch.compile and jax.jit: the first call)")
    notes = report.format_notes(rows)
    if notes:
        print("\n" + notes)
    if args.json:
        report.write_json(args.json, rows, {"quick": args.quick, "repeats": repeats,
                                            "peers": args.peers, "workloads": names},
                          bandwidth)
    if args.plot:
        report.plot(args.plot, rows)
    return 1 if any(row.check == "FAIL" for row in rows) else 0


def bench_models(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if importlib.util.find_spec("torch") is None:
        print("graphc bench --suite models: needs torch (pip install torch)", file=sys.stderr)
        return 2
    from graphc.bench.train_suite import format_models, run_models
    names = _workloads(parser, args.only, "models")
    repeats = args.repeats or (3 if args.quick else 10)
    rows = run_models(names, quick=args.quick, repeats=repeats)
    size = "quick (tiny) sizes" if args.quick else "full sizes (WORKLOADS.md)"
    print(f"graphc bench --suite models: {size}, float32 CPU, median of {repeats} "
          "interleaved training steps (forward, loss, backward, optimizer)\n")
    print(format_models(rows))
    return 1 if any("first loss" in why for row in rows for why in row.failed.values()) \
        else 0


def caches(clear: bool) -> int:
    """`python -m graphc cache [--clear]`: 2 where the cache folder cannot be made."""
    from graphc.backends import diskcache, settings
    try:
        removed = diskcache.clear() if clear else None
        rows = diskcache.summary()
    except OSError as exc:
        print(f"graphc cache: {exc} (check GRAPHC_CACHE_DIR)", file=sys.stderr)
        return 2
    cap = settings.get("GRAPHC_CACHE_MAX_MB")
    print(f"graphc caches in {diskcache.root()} (GRAPHC_CACHE_MAX_MB="
          f"{cap or 'no limit'})")
    for name, folder, entries, size in rows:
        print(f"  {name}: {folder}, {entries} entries, {size / 2**20:.1f} MB "
              f"({diskcache.CACHES[name]})")
    if removed is not None:
        print(f"cleared {removed} entries")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "bench":
        return bench(args, parser)
    if args.command == "fuzz" and args.parse:
        from graphc.fuzz.parse import run as run_parse
        return 1 if run_parse(args.parse, seed=args.seed) else 0
    if args.command == "fuzz":
        from graphc.fuzz import run
        return 1 if run(args.examples, seed=args.seed, max_nodes=args.max_nodes,
                        backend=args.backend) else 0
    if args.command == "replay":
        from graphc.replay import replay
        return replay(args.file, args.passes, args.inputs)
    if args.command == "ulp":
        from graphc.bench.ulp import command
        return command(args.only, args.march, args.per_binade, args.every, parser.error)
    if args.command == "show":
        from graphc.export import show
        return show(args.file)
    if args.command == "cache":
        return caches(args.clear)
    parser.error(f"unknown command {args.command}")  # argparse exits


if __name__ == "__main__":
    sys.exit(main())
