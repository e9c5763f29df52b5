"""transformers.BertForSequenceClassification from a small BertConfig (hidden 256, 4 layers, 4 heads; random weights, nothing downloaded) fine-tuned with outputs.loss.backward() and AdamW on batches of 16 sequences of 128 tokens,
compiled with `graphc.compile(model)` and trained with graphc's own backward.

    python examples/torch_bert.py [--quick]

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

STEPS = 4


def main(steps: int = STEPS, quick: bool = False) -> dict:
    return report("bert", train_side_by_side("bert", steps, quick))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
