"""Train a small model, export it, and run the exported files in a fresh process.

    python examples/export_model.py

A two-layer classifier of 2-d points (three interleaved spirals) is trained with
`graphc.value_and_grad` and plain gradient descent. Then two functions are exported
with `graphc.export`: `predict` (the class scores for a batch) and the training step's
`value_and_grad` (loss and gradients of every parameter, a dict like the parameters).
A subprocess that never imports this module (it starts in a temporary folder, so it
could not) loads both files with `graphc.load`, runs them on the same arrays, and
writes what they return; the example checks that against the in-process results.
Arrays go to and from the subprocess as .npz files read without pickle.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import graphc
from _common import check_close, print_losses

CLASSES, HIDDEN, POINTS = 3, 32, 96
LEARNING_RATE = 0.5
STEPS = 300

# What the fresh process runs: only graphc, numpy and the files it is given.
CHILD = """
import sys
import numpy as np
import graphc
folder = sys.argv[1]
arrays = dict(np.load(folder + "/inputs.npz", allow_pickle=False))
params = {k[2:]: v for k, v in arrays.items() if k.startswith("p.")}
predict = graphc.load(folder + "/predict.graphc")
step = graphc.load(folder + "/step.graphc")
scores = predict(params, arrays["x"])
loss, grads = step(params, arrays["x"], arrays["y"])
np.savez(folder + "/outputs.npz", scores=scores, loss=loss,
         **{"g." + k: v for k, v in grads.items()})
print("fresh process: example imported:", "export_model" in sys.modules)
"""


def spirals(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points on each of CLASSES spiral arms, with noise; labels one-hot."""
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.05, 1.0, n), CLASSES)
    label = np.repeat(np.arange(CLASSES), n)
    angle = radius * 4.0 + label * (2 * np.pi / CLASSES) + rng.normal(0, 0.15, n * CLASSES)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1).astype(np.float32)
    return x, np.eye(CLASSES, dtype=np.float32)[label]


def init(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"w1": rng.normal(0, 1.0, (2, HIDDEN)).astype(np.float32),
            "b1": np.zeros(HIDDEN, np.float32),
            "w2": rng.normal(0, HIDDEN ** -0.5, (HIDDEN, CLASSES)).astype(np.float32),
            "b2": np.zeros(CLASSES, np.float32)}


def predict(params, x):
    """Class scores (logits) for a batch of points."""
    h = np.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def loss(params, x, y):
    """Mean softmax cross-entropy against one-hot labels."""
    z = predict(params, x)
    z = z - np.max(z, axis=1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(y * log_p, axis=1))


step = graphc.value_and_grad(loss)


def train(params, x, y, steps: int):
    losses = []
    for _ in range(steps):
        value, grads = step(params, x, y)
        params = {k: p - LEARNING_RATE * grads[k] for k, p in params.items()}
        losses.append(float(value))
    return params, losses


def run_fresh_process(folder: str) -> dict[str, np.ndarray]:
    """Run CHILD in a new interpreter in `folder`, and read back what it wrote."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", CHILD, folder], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the fresh process failed:\n{done.stderr}")
    print(done.stdout.strip())
    if "imported: False" not in done.stdout:
        raise AssertionError("the fresh process imported the example's module")
    with np.load(os.path.join(folder, "outputs.npz"), allow_pickle=False) as f:
        return dict(f)


def main(steps: int | None = None) -> dict:
    steps = STEPS if steps is None else steps
    x, y = spirals(POINTS)
    params, losses = train(init(), x, y, steps)
    print_losses({"loss": losses})
    accuracy = float(np.mean(np.argmax(predict(params, x), 1) == np.argmax(y, 1)))
    print(f"training accuracy {accuracy:.1%}")

    with tempfile.TemporaryDirectory() as folder:
        predict_file = Path(folder, "predict.graphc")
        graphc.export(predict, params, x).save(predict_file)
        graphc.export(step, params, x, y).save(Path(folder, "step.graphc"))
        print(predict_file.read_text().splitlines()[0])
        np.savez(os.path.join(folder, "inputs.npz"), x=x, y=y,
                 **{"p." + k: v for k, v in params.items()})
        fresh = run_fresh_process(folder)

    # the same graph through the same passes and backend: equal to rounding at most
    want_scores = graphc.compile(predict)(params, x)
    want_loss, want_grads = step(params, x, y)
    check_close("predict from the file", fresh["scores"], want_scores, rtol=1e-6)
    check_close("loss from the file", fresh["loss"], want_loss, rtol=1e-6)
    for k, g in want_grads.items():
        check_close(f"gradient of {k} from the file", fresh["g." + k], g, rtol=1e-6)
    print("the exported predict and value_and_grad ran in a fresh process and match")
    return {"losses": losses, "accuracy": accuracy, "fresh": fresh,
            "scores": want_scores, "loss": want_loss, "grads": want_grads}


if __name__ == "__main__":
    main()
