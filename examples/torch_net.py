"""The seeds' network (Linear(10, 5) -> ReLU -> Linear(5, 1)), mean-squared error, SGD (lr 0.01), batches of 100: `graphc.compile(model)` trained beside torch eager.

    python examples/torch_net.py [--quick]

How it trains and what it checks: examples/_torch_common.py.
"""
import sys

from _torch_common import report, train_side_by_side


def main(steps: int = 200, quick: bool = False) -> dict:
    return report("net", train_side_by_side("net", steps, quick))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
