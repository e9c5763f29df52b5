"""A two-layer perceptron trained with SGD, in plain numpy, its gradients from graphc.

    python examples/mlp.py

Linear(10, 5) -> ReLU -> Linear(5, 1), mean-squared error, SGD with learning rate
0.01 for 1000 steps on random x (100, 10) and y (100, 1), float32. The model is a
dict of numpy arrays (weights in torch's (out, in) layout) and a loss function; the
training step asks `graphc.compile(graphc.value_and_grad(loss))` for the loss and the
gradients of every parameter, as one compiled graph, and updates the parameters in
numpy.

The check: with torch installed, the same model in torch (same initial weights, same
data, torch autograd and torch.optim.SGD) must give the same loss curve within float32
tolerance. Without torch, the reference is the uncompiled step: the same joint
forward + backward graph run op by op by graphc's reference interpreter
(`graphc.interpret`), no passes and no generated code.
"""
from __future__ import annotations

import numpy as np

import graphc
from graphc import nn
from _common import check_curve, print_losses, print_times, seconds_per_call

LEARNING_RATE = 0.01
STEPS = 1000


def init_params(rng, sizes=(10, 5, 1)) -> dict:
    """torch.nn.Linear's default initialisation: weights and biases uniform in
    +-1/sqrt(fan_in), so the numbers are those a torch user would start from."""
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        bound = 1.0 / np.sqrt(n_in)
        params[f"w{i}"] = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        params[f"b{i}"] = rng.uniform(-bound, bound, n_out).astype(np.float32)
    return params


def loss_fn(params, x, y):
    h = nn.relu(nn.linear(x, params["w1"], params["b1"]))
    pred = nn.linear(h, params["w2"], params["b2"])
    return nn.mse_loss(pred, y)


# Loss and gradients (a dict shaped like params) from one compiled forward + backward.
loss_and_grads = graphc.compile(graphc.value_and_grad(loss_fn))


def sgd_step(loss_and_grads, params, x, y) -> float:
    """One step of plain SGD, updating params in place; returns the loss."""
    loss, grads = loss_and_grads(params, x, y)
    for k in params:
        params[k] -= LEARNING_RATE * grads[k]
    return float(loss)


def train(loss_and_grads, params, x, y, steps):
    """Works on copies: the caller's params stay the initial ones."""
    params = {k: v.copy() for k, v in params.items()}
    losses = [sgd_step(loss_and_grads, params, x, y) for _ in range(steps)]
    return params, losses


def interpreted_loss_and_grads(params, x, y):
    """The uncompiled step: trace the joint graph once, then run it with the reference
    interpreter (its flat inputs are the leaves of (params, x, y) in order; its flat
    outputs the loss, then the gradients in params' order)."""
    graph = graphc.trace(graphc.value_and_grad(loss_fn), params, x, y)

    def step(params, x, y):
        loss, *grads = graphc.interpret(graph, *params.values(), x, y)
        return loss, dict(zip(params, grads))
    return step


class TorchReference:
    """The same model in torch, from the same initial weights: autograd and optim.SGD."""

    def __init__(self, params, x, y):
        import torch
        self.torch = torch
        self.model = torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.ReLU(),
                                         torch.nn.Linear(5, 1))
        with torch.no_grad():
            for layer, i in ((self.model[0], 1), (self.model[2], 2)):
                layer.weight.copy_(torch.from_numpy(params[f"w{i}"]))
                layer.bias.copy_(torch.from_numpy(params[f"b{i}"]))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def step(self) -> float:
        self.optimizer.zero_grad()
        loss = self.torch.nn.functional.mse_loss(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        return loss.item()


def main(steps: int | None = None, use_torch: bool = True) -> dict:
    steps = STEPS if steps is None else steps
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 10)).astype(np.float32)
    y = rng.standard_normal((100, 1)).astype(np.float32)
    params = init_params(rng)

    final, losses = train(loss_and_grads, params, x, y, steps)
    times = {}
    try:
        if not use_torch:
            raise ImportError("asked not to use torch")
        reference = TorchReference(params, x, y)
        ref_name = "torch"
        ref_losses = [reference.step() for _ in range(steps)]
        times["eager: torch forward + backward + SGD step"] = seconds_per_call(
            reference.step, repeats=50)
    except ImportError:
        ref_name = "interpreter"
        _, ref_losses = train(interpreted_loss_and_grads(params, x, y), params, x, y, steps)
    # loss_fn is plain numpy: called on arrays it runs eagerly (the forward only).
    times["eager: numpy loss_fn, forward only, no gradients"] = seconds_per_call(
        loss_fn, params, x, y, repeats=50)
    # Timed on a copy of the parameters, which the timed steps train further.
    scratch = {k: v.copy() for k, v in params.items()}
    times["eager: graphc.interpret of the same joint graph"] = seconds_per_call(
        sgd_step, interpreted_loss_and_grads(params, x, y), scratch, x, y, repeats=20)

    print_losses({"loss (graphc)": losses, f"loss ({ref_name})": ref_losses})
    # float32 rounding differs (summation order, fused kernels) and grows a little
    # over the steps; the curves agree to about 1e-6 here, 1e-4 leaves room.
    err = check_curve(f"loss curve against {ref_name}", losses, ref_losses, rtol=1e-4)
    print(f"same loss curve as {ref_name} (largest relative difference {err:.1e})")
    compiled = seconds_per_call(sgd_step, loss_and_grads, scratch, x, y, repeats=50)
    print_times(compiled, times)
    return {"losses": losses, "reference_losses": ref_losses, "reference": ref_name,
            "params": final, "seconds_per_step": {"compiled": compiled, **times}}


if __name__ == "__main__":
    main()
