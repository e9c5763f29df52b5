"""Data-parallel training: a graphc-compiled model under DistributedDataParallel.

    python examples/torch_ddp.py [--dynamo]

Two processes (gloo, on loopback, CPU) each train the same model on their half of
every batch; DDP averages the gradients, so after N steps both hold the parameters
that one process gets training on the whole batch. Two ways in:

* `DDP(graphc.compile(model))`: graphc computes each rank's forward and backward,
  DDP's gradient hooks fire on the parameters as usual;
* `torch.compile(DDP(model), backend="graphc")`: Dynamo splits the graph at DDP's
  bucket boundaries and hands each piece to graphc.

The model is a class of its own (a bare nn.Sequential under DDP never reaches a
torch.compile backend). Prints the loss curve of rank 0, and checks rank 0's final
parameters against single-process training on the full batch (float64: the two differ
only in how the halves' gradients are summed, well below rtol 1e-9).
"""
from __future__ import annotations

import gc
import os
import socket
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

STEPS, BATCH, WORLD = 10, 32, 2
RTOL = 1e-9


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(12, 32), nn.Linear(32, 32), nn.Linear(32, 1)

    def forward(self, x):
        return self.fc3(torch.tanh(self.fc2(F.relu(self.fc1(x)))))


def _data(steps: int):
    gen = torch.Generator().manual_seed(1)
    xs = torch.randn(steps, BATCH, 12, generator=gen, dtype=torch.float64)
    return xs, xs.sum(dim=-1, keepdim=True).sin()


def _initial() -> Regressor:
    torch.manual_seed(0)
    return Regressor().double()


def single_process(steps: int) -> tuple[list[float], dict]:
    model = _initial()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    xs, ys = _data(steps)
    losses = []
    for x, y in zip(xs, ys):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}


def _rank(rank: int, port: int, steps: int, dynamo: bool, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        losses, params = _train_rank(rank, steps, dynamo)
        if rank == 0:
            torch.save({"losses": losses, "params": params}, out)
        # the DDP wrapper and its compiled graphs hold gloo work with tensors in it:
        # freed now, while the interpreter is whole (left to its teardown, where gloo's
        # threads meet a finalizing interpreter, a rank sometimes died of SIGABRT,
        # "terminate called without an active exception"), and both ranks leave together
        if dynamo:
            torch._dynamo.reset()
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _train_rank(rank: int, steps: int, dynamo: bool) -> tuple[list[float], dict]:
    import graphc
    from torch.nn.parallel import DistributedDataParallel as DDP
    model = _initial()
    ddp = torch.compile(DDP(model), backend="graphc") if dynamo else \
        DDP(graphc.compile(model))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    xs, ys = _data(steps)
    half = BATCH // WORLD
    losses = []
    for x, y in zip(xs, ys):
        part = slice(rank * half, (rank + 1) * half)
        opt.zero_grad()
        loss = F.mse_loss(ddp(x[part]), y[part])
        loss.backward()
        opt.step()
        total = loss.detach().clone()
        dist.all_reduce(total)
        losses.append(total.item() / WORLD)
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(steps: int = STEPS, dynamo: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "rank0.pt")
        mp.spawn(_rank, args=(_free_port(), steps, dynamo, out), nprocs=WORLD, join=True)
        got = torch.load(out)
    want_losses, want_params = single_process(steps)
    worst = 0.0
    for name, want in want_params.items():
        err = ((got["params"][name] - want).abs().max() / want.abs().max()).item()
        worst = max(worst, err)
        if not err <= RTOL:
            raise AssertionError(f"{name}: rank 0 differs from one process by {err:.3g}")
    way = "torch.compile(DDP(model), backend='graphc')" if dynamo else \
        "DDP(graphc.compile(model))"
    print(f"{way}, {WORLD} processes, {steps} steps")
    print("step  loss (ranks' mean)  loss (one process, whole batch)")
    for i, (a, b) in enumerate(zip(got["losses"], want_losses)):
        print(f"{i:4d}  {a:18.10g}  {b:18.10g}")
    print(f"check: parameters within {worst:.2g} of single-process training "
          f"(allowed {RTOL:g})")
    return {"losses": got["losses"], "single_losses": want_losses, "error": worst}


if __name__ == "__main__":
    main(dynamo="--dynamo" in sys.argv[1:])
