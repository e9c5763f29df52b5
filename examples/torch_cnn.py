"""The tutorials' CNN (two Conv2d-ReLU-MaxPool2d, two Linear) on 32x32 colour images, cross-entropy, SGD with momentum 0.9, batches of 64: `graphc.compile(model)` trained beside torch eager.

    python examples/torch_cnn.py [--quick]

How it trains and what it checks: examples/_torch_common.py.
"""
import sys

from _torch_common import report, train_side_by_side


def main(steps: int = 8, quick: bool = False) -> dict:
    return report("cnn", train_side_by_side("cnn", steps, quick))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
