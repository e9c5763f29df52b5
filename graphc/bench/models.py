"""The example models of WORKLOADS.md as a PyTorch user writes them: `nn.Module`s, a
loss from `torch.nn.functional`, a `torch.optim` optimizer, random batches.

The models suite (`python -m graphc bench --suite models`, graphc/bench/train_suite.py)
times their training steps; the torch examples (`examples/torch_*.py`) train them.
Each `MODELS` entry builds a model, a batch and an optimizer at full size (WORKLOADS.md)
or `quick` size (a few seconds, for tests and CI).

>>> import torch
>>> spec = MODELS["net"]
>>> model = spec.model(quick=True)
>>> x, y = spec.batch(torch.Generator().manual_seed(0), quick=True)
>>> float(spec.loss(model(x), y)) > 0
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """The seeds' network: Linear(10, 5) -> ReLU -> Linear(5, 1)."""

    def __init__(self, width: int = 5):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(10, width), nn.Linear(width, 1)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class CNN(nn.Module):
    """The tutorials' CNN for 32x32 colour images in 10 classes."""

    def __init__(self, c1: int = 32, c2: int = 64, hidden: int = 128, side: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(c2 * (side // 4) ** 2, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class LSTMClassifier(nn.Module):
    """A two-layer LSTM over a sequence, its last hidden state classified."""

    def __init__(self, inputs: int = 32, hidden: int = 128, classes: int = 10):
        super().__init__()
        self.lstm = nn.LSTM(inputs, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class Encoder(nn.Module):
    """A BERT-style encoder: token and position embeddings, encoder layers (multi-head
    self-attention, GELU feed-forward, residuals, layer norm), a classification head."""

    def __init__(self, vocab: int = 1000, width: int = 256, layers: int = 2, heads: int = 4,
                 ff: int = 1024, max_len: int = 128, classes: int = 2):
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(max_len, width)
        layer = nn.TransformerEncoderLayer(width, heads, ff, dropout=0.0,
                                           activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1])
        h = self.encoder(self.tokens(ids) + self.positions(pos))
        return self.head(h[:, 0])


def _bert(quick: bool) -> nn.Module:
    import transformers
    config = transformers.BertConfig(
        vocab_size=1000, hidden_size=32 if quick else 256,
        num_hidden_layers=1 if quick else 4, num_attention_heads=2 if quick else 4,
        intermediate_size=64 if quick else 1024, max_position_embeddings=128,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=2)
    return transformers.BertForSequenceClassification(config)


@dataclass(frozen=True)
class ModelSpec:
    """A model of the suite: how to build it, a batch, its loss and its optimizer.
    `loss(output, target)`; for a Hugging Face model the batch is keyword arguments
    and the output's `.loss` is the loss (`hf=True`)."""

    model: Callable[..., nn.Module]
    batch: Callable[..., tuple]
    loss: Callable | None
    optimizer: Callable[[object], torch.optim.Optimizer]
    hf: bool = False


def _randn(gen, *shape):
    return torch.randn(*shape, generator=gen)


def _labels(gen, n, classes):
    return torch.randint(0, classes, (n,), generator=gen)


def _ids(gen, batch, length, vocab=1000):
    return torch.randint(0, vocab, (batch, length), generator=gen)


MODELS: dict[str, ModelSpec] = {
    "net": ModelSpec(
        lambda quick=False: Net(),
        lambda gen, quick=False: (_randn(gen, 100, 10), _randn(gen, 100, 1)),
        F.mse_loss, lambda p: torch.optim.SGD(p, lr=0.01)),
    "cnn": ModelSpec(
        lambda quick=False: CNN(4, 8, 16, 8) if quick else CNN(),
        lambda gen, quick=False: ((_randn(gen, 4, 3, 8, 8), _labels(gen, 4, 10)) if quick
                                  else (_randn(gen, 64, 3, 32, 32), _labels(gen, 64, 10))),
        F.cross_entropy, lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)),
    "lstm": ModelSpec(
        lambda quick=False: LSTMClassifier(8, 16) if quick else LSTMClassifier(),
        lambda gen, quick=False: ((_randn(gen, 4, 6, 8), _labels(gen, 4, 10)) if quick
                                  else (_randn(gen, 64, 50, 32), _labels(gen, 64, 10))),
        F.cross_entropy, lambda p: torch.optim.Adam(p, lr=1e-3)),
    "encoder": ModelSpec(
        lambda quick=False: Encoder(100, 32, 1, 2, 64, 16) if quick else Encoder(),
        lambda gen, quick=False: ((_ids(gen, 2, 16, 100), _labels(gen, 2, 2)) if quick
                                  else (_ids(gen, 16, 128), _labels(gen, 16, 2))),
        F.cross_entropy, lambda p: torch.optim.Adam(p, lr=1e-3)),
    "bert": ModelSpec(
        _bert,
        lambda gen, quick=False: ({"input_ids": _ids(gen, 2 if quick else 16,
                                                     16 if quick else 128),
                                   "labels": _labels(gen, 2 if quick else 16, 2)},),
        None, lambda p: torch.optim.AdamW(p, lr=1e-4), hf=True),
}


class TrainStep:
    """One training step of `model` as a user writes it: zero the gradients, forward,
    loss, backward, optimizer step. `run` is what computes the forward (the model, or
    its compiled form: both share the model's parameters)."""

    def __init__(self, spec: ModelSpec, model: nn.Module, run: Callable | None = None):
        self.spec, self.model = spec, model
        self.run = model if run is None else run  # (a compiled module has no truth value)
        self.optimizer = spec.optimizer(model.parameters())

    def __call__(self, *batch) -> float:
        self.optimizer.zero_grad()
        if self.spec.hf:
            loss = self.run(**batch[0]).loss
        else:
            x, y = batch
            loss = self.spec.loss(self.run(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.item()
