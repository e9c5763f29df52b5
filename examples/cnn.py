"""A small convolutional network in numpy, trained with momentum SGD as one compiled step.

    python examples/cnn.py

The CNN of the PyTorch tutorials, for 32x32 colour images in 10 classes:
Conv2d(3, 32, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Conv2d(32, 64, 3, padding=1)
-> ReLU -> MaxPool2d(2) -> flatten -> Linear(64*8*8, 128) -> ReLU -> Linear(128, 10),
cross-entropy, SGD with learning rate 0.01 and momentum 0.9, float32. The model is a
dict of numpy arrays and a function using `graphc.nn.conv2d` and `max_pool2d`; one
compiled function does the forward, the backward (`graphc.value_and_grad`) and the
momentum update.

Each step takes a new random batch of 64 images with random labels, as from a data
loader; with nothing to learn the loss stays near ln(10) = 2.30. The check: the same
network built from torch modules, with the same initial weights, trained by
torch.optim.SGD on the same batches, must give the same loss curve within float32
tolerance, and the same weights at the end. Prints the loss curve and the time per
step, compiled against torch eager (and the numpy forward alone).
"""
from __future__ import annotations

import numpy as np

import graphc
from graphc import nn
from _common import check_close, check_curve, print_losses, print_times, seconds_per_call

LEARNING_RATE, MOMENTUM = 0.01, 0.9
BATCH, CLASSES = 64, 10
STEPS = 8


def init_params(rng) -> dict:
    """torch's default initialisation for Conv2d and Linear: weights and biases uniform
    in +-1/sqrt(fan_in). Linear weights are (out, in), conv weights (out, in, kh, kw)."""
    def uniform(fan_in, *shape):
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    return {"conv1_w": uniform(3 * 9, 32, 3, 3, 3), "conv1_b": uniform(3 * 9, 32),
            "conv2_w": uniform(32 * 9, 64, 32, 3, 3), "conv2_b": uniform(32 * 9, 64),
            "fc1_w": uniform(64 * 8 * 8, 128, 64 * 8 * 8), "fc1_b": uniform(64 * 8 * 8, 128),
            "fc2_w": uniform(128, CLASSES, 128), "fc2_b": uniform(128, CLASSES)}


def logits_fn(params: dict, images):
    x = nn.relu(nn.conv2d(images, params["conv1_w"], params["conv1_b"], padding=1))
    x = nn.max_pool2d(x, 2)                              # (batch, 32, 16, 16)
    x = nn.relu(nn.conv2d(x, params["conv2_w"], params["conv2_b"], padding=1))
    x = nn.max_pool2d(x, 2)                              # (batch, 64, 8, 8)
    x = x.reshape(x.shape[0], -1)                        # channel-major, as torch.flatten
    x = nn.relu(nn.linear(x, params["fc1_w"], params["fc1_b"]))
    return nn.linear(x, params["fc2_w"], params["fc2_b"])


def loss_fn(params: dict, images, labels):
    return nn.cross_entropy(logits_fn(params, images), labels)


@graphc.compile
def train_step(params, velocity, images, labels):
    """Forward, backward and SGD with momentum (torch's form: v = momentum v + g;
    p -= lr v) as one graph."""
    loss, grads = graphc.value_and_grad(loss_fn)(params, images, labels)
    velocity = {k: MOMENTUM * velocity[k] + grads[k] for k in params}
    params = {k: params[k] - LEARNING_RATE * velocity[k] for k in params}
    return loss, params, velocity


def batches(steps: int, batch: int):
    """The same random batches for every run: (images, labels) per step."""
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((batch, 3, 32, 32), dtype=np.float32),
             rng.integers(0, CLASSES, batch)) for _ in range(steps)]


def train(params, data):
    velocity = {k: np.zeros_like(p) for k, p in params.items()}
    losses = []
    for images, labels in data:
        loss, params, velocity = train_step(params, velocity, images, labels)
        losses.append(float(loss))
    return params, losses


class TorchReference:
    """The same network from torch modules, with our weights, trained by optim.SGD."""

    def __init__(self, params):
        import torch
        from torch import nn as tnn
        self.torch = torch
        self.model = tnn.Sequential(
            tnn.Conv2d(3, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Flatten(), tnn.Linear(64 * 8 * 8, 128), tnn.ReLU(), tnn.Linear(128, CLASSES))
        self.names = {"0.weight": "conv1_w", "0.bias": "conv1_b", "3.weight": "conv2_w",
                      "3.bias": "conv2_b", "7.weight": "fc1_w", "7.bias": "fc1_b",
                      "9.weight": "fc2_w", "9.bias": "fc2_b"}
        self.model.load_state_dict({theirs: torch.from_numpy(params[ours])
                                    for theirs, ours in self.names.items()})
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE,
                                         momentum=MOMENTUM)

    def step(self, images, labels) -> float:
        self.optimizer.zero_grad()
        logits = self.model(self.torch.from_numpy(images))
        loss = self.torch.nn.functional.cross_entropy(logits, self.torch.from_numpy(labels))
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def params(self) -> dict:
        return {self.names[k]: p.detach().numpy().copy()
                for k, p in self.model.named_parameters()}


def main(steps: int | None = None, batch: int = BATCH) -> dict:
    steps = STEPS if steps is None else steps
    params = init_params(np.random.default_rng(0))
    data = batches(steps, batch)
    final, losses = train(params, data)

    try:
        reference = TorchReference(params)
    except ImportError:
        print_losses({"loss (graphc)": losses})
        print("torch is not installed: no check against it")
        return {"losses": losses, "params": final}
    ref_losses = [reference.step(images, labels) for images, labels in data]
    ref_final = reference.params()
    print_losses({"loss (graphc)": losses, "loss (torch)": ref_losses})
    # float32, convolutions summed in another order than torch's. The losses agree to
    # about 1e-7. The weights after 8 steps differ by up to 4e-5 of their largest
    # entry (conv2_w): rounding in the gradients (graphc's are as close to a float64
    # computation as torch's) that the momentum carries from step to step.
    loss_err = check_curve("loss curve against torch", losses, ref_losses, rtol=1e-4)
    param_err = max(check_close(f"{k} after {steps} steps", final[k], ref_final[k],
                                rtol=1e-3) for k in final)
    print(f"same loss curve as torch (largest relative difference {loss_err:.1e}), "
          f"same weights at the end ({param_err:.1e})")

    images, labels = data[0]
    velocity = {k: np.zeros_like(p) for k, p in params.items()}
    compiled = seconds_per_call(train_step, params, velocity, images, labels)
    times = {"eager: torch forward + backward + SGD step": seconds_per_call(
                 reference.step, images, labels),
             "eager: numpy loss_fn, forward only, no gradients": seconds_per_call(
                 loss_fn, params, images, labels, repeats=3)}
    print_times(compiled, times)
    return {"losses": losses, "reference_losses": ref_losses, "params": final,
            "reference_params": ref_final, "seconds_per_step": {"compiled": compiled, **times}}


if __name__ == "__main__":
    main()
