"""The persistent compile cache under the torch frontend: a module compiled again (as
in a second process) finds its forward and backward graphs in the cache, and trains to
the same numbers bit for bit."""
from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

import graphc  # noqa: E402


@pytest.fixture(autouse=True)
def folder(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_LOG", "cache")
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)


def _train(model, x, y, steps=3):
    compiled = graphc.compile(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(compiled(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [p.detach().clone() for p in model.parameters()]


def test_a_module_compiled_again_hits_and_trains_the_same(capsys):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 2))
    x, y = torch.randn(4, 8), torch.randn(4, 2)
    cold = _train(copy.deepcopy(model), x, y)
    first = capsys.readouterr().err
    hot = _train(copy.deepcopy(model), x, y)
    again = capsys.readouterr().err
    assert "cache miss" in first and "cache hit" not in first
    assert again.count("cache hit") == 2 and "cache miss" not in again  # forward, backward
    assert cold[0] == hot[0]
    for a, b in zip(cold[1], hot[1]):
        assert torch.equal(a, b)
