"""transformers.BertForSequenceClassification from a small BertConfig (hidden 256, 4 layers, 4 heads; random weights, nothing downloaded), fine-tuned with outputs.loss.backward() and AdamW on 16 sequences of 128 tokens: `graphc.compile(model)` trained beside torch eager.

    python examples/torch_bert.py [--quick]

How it trains and what it checks: examples/_torch_common.py.
"""
import sys

from _torch_common import report, train_side_by_side


def main(steps: int = 4, quick: bool = False) -> dict:
    return report("bert", train_side_by_side("bert", steps, quick))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
