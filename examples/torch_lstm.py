"""A two-layer nn.LSTM (input 32, hidden 128, batch first) over sequences of 50, its last hidden state through Linear(128, 10), cross-entropy, Adam, batches of 64: `graphc.compile(model)` trained beside torch eager.

    python examples/torch_lstm.py [--quick]

How it trains and what it checks: examples/_torch_common.py.
"""
import sys

from _torch_common import report, train_side_by_side


def main(steps: int = 6, quick: bool = False) -> dict:
    return report("lstm", train_side_by_side("lstm", steps, quick))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
