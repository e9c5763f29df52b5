"""The tutorials' CNN for 32x32 colour images (two Conv2d-ReLU-MaxPool2d, two Linear), cross-entropy, SGD with momentum 0.9, batches of 64,
compiled with `graphc.compile(model)` and trained with graphc's own backward.

    python examples/torch_cnn.py [--quick]

The loop is the one a PyTorch user writes (`optimizer.zero_grad(); loss =
loss_fn(model(x), y); loss.backward(); optimizer.step()`), with `model` replaced by
`graphc.compile(model)`: the same parameters, so `torch.optim` steps them as usual.
The same model from the same initial weights is trained eagerly on the same batches;
the example prints both loss curves and the time per step, and checks that graphc's
curve follows eager's (examples/_torch_common.py).
"""
from __future__ import annotations

import sys

from _torch_common import report, train_side_by_side

STEPS = 8


def main(steps: int = STEPS, quick: bool = False) -> dict:
    return report("cnn", train_side_by_side("cnn", steps, quick))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
