"""What the PyTorch examples share: train a model eagerly and through graphc side by
side from the same initial weights on the same batches, print both loss curves and the
time per step, and check graphc against eager.

The loop is the one a PyTorch user writes (`optimizer.zero_grad(); loss =
loss_fn(model(x), y); loss.backward(); optimizer.step()`), with `model` replaced by
`graphc.compile(model)`: the same parameters, so `torch.optim` steps them as usual, and
graphc's own backward fills their `.grad`.

The models are graphc/bench/models.py's (the models suite times the same ones). The
check: each step's loss within LOSS_RTOL of eager's. float32 losses from the same
weights differ by the order of their sums (a sum of n terms rounds within n * 2**-24
of its terms' magnitude, about 6e-5 at n = 1000); the few steps here keep the
trajectories that close.
"""
from __future__ import annotations

import copy
import time

import torch

import graphc
from graphc.bench.models import MODELS, TrainStep
from _common import check_curve, print_losses, print_times

LOSS_RTOL = 1e-4


def train_side_by_side(name: str, steps: int, quick: bool = False) -> dict:
    """`steps` training steps of MODELS[name], eager and compiled with graphc; returns
    the loss curves and the median step times."""
    spec = MODELS[name]
    torch.manual_seed(0)
    model = spec.model(quick=quick)
    gen = torch.Generator().manual_seed(1)
    batches = [spec.batch(gen, quick=quick) for _ in range(steps)]
    ours = copy.deepcopy(model)
    runs = {"torch eager": TrainStep(spec, model),
            "graphc": TrainStep(spec, ours, graphc.compile(ours))}
    curves = {label: [] for label in runs}
    times = {label: [] for label in runs}
    for batch in batches:
        for label, step in runs.items():
            start = time.perf_counter()
            curves[label].append(step(*batch))
            times[label].append(time.perf_counter() - start)
    median = {label: sorted(t[1:] or t)[len(t[1:] or t) // 2] for label, t in times.items()}
    return {"curves": curves, "seconds": median, "model": ours, "eager_model": model}


def report(name: str, result: dict) -> dict:
    """Print the curves and times; raise unless graphc follows eager."""
    curves = result["curves"]
    print_losses(curves)
    print_times(result["seconds"]["graphc"], {"torch eager": result["seconds"]["torch eager"]})
    err = check_curve(f"{name}: graphc against torch eager", curves["graphc"],
                      curves["torch eager"], LOSS_RTOL)
    print(f"check: every step's loss within {err:.2g} of eager's (allowed {LOSS_RTOL:g})")
    return result
