"""A two-layer LSTM in numpy, trained with Adam as one compiled step.

    python examples/lstm.py

The LSTM of WORKLOADS.md: input 32, hidden 128, two layers, batch first, sequences
of 50 steps in batches of 64; the last layer's last hidden state goes through
Linear(128, 10); cross-entropy; Adam with learning rate 1e-3. The cell is torch's
(gates in the order input, forget, cell, output), written in numpy with
`graphc.nn.sigmoid`; the time loop is a Python loop, which graphc unrolls while
tracing, so the compiled step is one graph: 50 steps of two cells, their gradients
(`graphc.value_and_grad`) and the Adam update.

The check: torch.nn.LSTM and nn.Linear with the same initial weights, trained by
torch.optim.Adam on the same batch, must give the same gradients at the first step
and the same loss curve, within float32 tolerance. Prints the loss curve and the time
per step, compiled against torch eager.
"""
from __future__ import annotations

import numpy as np

import graphc
from graphc import nn
from _common import (BETA1, BETA2, EPS, LEARNING_RATE, adam, bias_corrections,
                     check_against_reference, print_losses, print_times, seconds_per_call,
                     reference_run, train_with_adam)

INPUT, HIDDEN, LAYERS, CLASSES = 32, 128, 2, 10
BATCH, SEQ = 64, 50
STEPS = 8


def init_params(rng, inputs=INPUT, hidden=HIDDEN) -> dict:
    """torch's initialisation for LSTM and Linear: uniform in +-1/sqrt(hidden) (LSTM)
    and +-1/sqrt(fan_in) (Linear). Weights are torch's (out, in)."""
    def uniform(bound, *shape):
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    k = 1.0 / np.sqrt(hidden)
    params = {}
    for layer in range(LAYERS):
        fan_in = inputs if layer == 0 else hidden
        params[f"w_ih{layer}"] = uniform(k, 4 * hidden, fan_in)
        params[f"w_hh{layer}"] = uniform(k, 4 * hidden, hidden)
        params[f"b_ih{layer}"] = uniform(k, 4 * hidden)
        params[f"b_hh{layer}"] = uniform(k, 4 * hidden)
    params["fc_w"] = uniform(k, CLASSES, hidden)
    params["fc_b"] = uniform(k, CLASSES)
    return params


def lstm_layer(x, w_ih, w_hh, b_ih, b_hh):
    """One layer over the whole sequence: x (batch, seq, in) -> (batch, seq, hidden)."""
    batch, seq, _ = x.shape
    hidden = w_hh.shape[1]
    inputs = nn.linear(x, w_ih, b_ih + b_hh)      # every step's input part: one matmul
    h = np.zeros((batch, hidden), np.float32)
    c = np.zeros((batch, hidden), np.float32)
    outputs = []
    for t in range(seq):                           # unrolled while tracing
        gates = inputs[:, t] + h @ w_hh.T
        i = nn.sigmoid(gates[:, :hidden])
        f = nn.sigmoid(gates[:, hidden:2 * hidden])
        g = np.tanh(gates[:, 2 * hidden:3 * hidden])
        o = nn.sigmoid(gates[:, 3 * hidden:])
        c = f * c + i * g
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def logits_fn(params: dict, x):
    for layer in range(LAYERS):
        x = lstm_layer(x, params[f"w_ih{layer}"], params[f"w_hh{layer}"],
                       params[f"b_ih{layer}"], params[f"b_hh{layer}"])
    return nn.linear(x[:, -1], params["fc_w"], params["fc_b"])


def loss_fn(params: dict, x, labels):
    return nn.cross_entropy(logits_fn(params, x), labels)


@graphc.compile
def train_step(params, m, v, x, labels, bias_correction1, bias_correction2):
    """Forward, backward and Adam update as one graph; the gradients too, for the
    check against torch."""
    loss, grads = graphc.value_and_grad(loss_fn)(params, x, labels)
    params, m, v = adam(params, grads, m, v, bias_correction1, bias_correction2)
    return loss, grads, params, m, v


def train(params, x, labels, steps):
    return train_with_adam(train_step, params, (x, labels), steps)


class TorchReference:
    """torch.nn.LSTM and nn.Linear with our weights, trained by torch.optim.Adam."""

    NAMES = {"weight_ih_l{}": "w_ih{}", "weight_hh_l{}": "w_hh{}",
             "bias_ih_l{}": "b_ih{}", "bias_hh_l{}": "b_hh{}"}

    def __init__(self, params, x, labels, inputs):
        import torch
        self.torch = torch
        self.lstm = torch.nn.LSTM(inputs, params["w_hh0"].shape[1], LAYERS, batch_first=True)
        self.fc = torch.nn.Linear(params["w_hh0"].shape[1], CLASSES)
        self.names = {}
        for layer in range(LAYERS):
            for theirs, ours in self.NAMES.items():
                self.names[f"lstm.{theirs.format(layer)}"] = ours.format(layer)
        self.names.update({"fc.weight": "fc_w", "fc.bias": "fc_b"})
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.from_numpy(params[self.names[name]]))
        self.optimizer = torch.optim.Adam([p for _, p in self.named_parameters()],
                                          lr=LEARNING_RATE, betas=(BETA1, BETA2), eps=EPS)
        self.x, self.labels = torch.from_numpy(x), torch.from_numpy(labels)

    def named_parameters(self):
        yield from (("lstm." + n, p) for n, p in self.lstm.named_parameters())
        yield from (("fc." + n, p) for n, p in self.fc.named_parameters())

    def step(self) -> float:
        self.optimizer.zero_grad()
        out, _ = self.lstm(self.x)
        loss = self.torch.nn.functional.cross_entropy(self.fc(out[:, -1]), self.labels)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def grads(self) -> dict:
        return {self.names[n]: p.grad.numpy().copy() for n, p in self.named_parameters()}


def main(steps: int | None = None, batch=BATCH, seq=SEQ, inputs=INPUT, hidden=HIDDEN
         ) -> dict:
    """Train and check; the sizes are parameters so that a test can run a small model."""
    steps = STEPS if steps is None else steps
    rng = np.random.default_rng(0)
    params = init_params(rng, inputs, hidden)
    x = rng.standard_normal((batch, seq, inputs), dtype=np.float32)
    labels = rng.integers(0, CLASSES, batch)

    final, losses, grads = train(params, x, labels, steps)
    if losses[-1] >= losses[0]:
        raise AssertionError(f"the loss did not fall: {losses}")
    low = train_step.lower(params, params, params, x, labels, *bias_corrections(1))
    before, after = low.kernels
    print(f"one training step: {before} ops as traced, {after} kernels after fusion, "
          f"compiled in {low.compile_seconds:.2f} s")

    try:
        reference = TorchReference(params, x, labels, inputs)
    except ImportError:
        print_losses({"loss (graphc)": losses})
        print("torch is not installed: no check against it")
        return {"losses": losses, "params": final}
    ref_losses, ref_grads = reference_run(reference, steps)
    print_losses({"loss (graphc)": losses, "loss (torch)": ref_losses})

    # float32 through 50 steps of recurrence, summed in other orders than torch's:
    # about 1e-6 of each gradient's largest entry; 1e-4 leaves room
    check_against_reference(grads, ref_grads, losses, ref_losses, rtol=1e-4)

    m = {k: np.zeros_like(p) for k, p in params.items()}
    compiled = seconds_per_call(train_step, params, m, m, x, labels, *bias_corrections(1))
    times = {"eager: torch forward + backward + Adam step": seconds_per_call(reference.step),
             "eager: numpy loss_fn, forward only, no gradients": seconds_per_call(
                 loss_fn, params, x, labels)}
    print_times(compiled, times)
    return {"losses": losses, "reference_losses": ref_losses, "params": final,
            "grads": grads, "reference_grads": ref_grads, "kernels": (before, after),
            "seconds_per_step": {"compiled": compiled, **times}}


if __name__ == "__main__":
    main()
