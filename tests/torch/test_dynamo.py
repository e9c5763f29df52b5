"""torch.compile(model, backend="graphc"): found through the entry point without
`import graphc`, one graph for a simple model, training with graphc's backward, options
passed through, and eager fallback (one warning) for a graph graphc cannot translate.

Training compares float64 against eager float64: the sums here have at most 16 terms,
whose rounding differs between the two by n * 2**-53 relative (Higham 3.1); three SGD
steps at lr 0.05 do not amplify that past 1e3, so rtol 1e-11.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import warnings

import pytest

torch = pytest.importorskip("torch")
import torch._dynamo  # noqa: E402

nn, F = torch.nn, torch.nn.functional

from graphc.dynamo import FallbackWarning  # noqa: E402

RTOL64 = 1e-11


from torch_nets import Net  # noqa: E402  (the seeds' Linear-ReLU-Linear)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _pair():
    torch.manual_seed(0)
    eager = Net().double()
    mine = Net().double()
    mine.load_state_dict(eager.state_dict())
    return eager, mine


def test_backend_is_found_without_importing_graphc():
    code = ("import sys, torch\n"
            "assert 'graphc' not in sys.modules\n"
            "m = torch.compile(torch.nn.Linear(3, 2), backend='graphc')\n"
            "x = torch.ones(4, 3)\n"
            "assert torch.allclose(m(x), m._orig_mod(x))\n"
            "assert 'graphc.dynamo' in sys.modules  # loaded by torch's lookup\n")
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True)


def test_explain_shows_one_graph_for_the_net():
    explained = torch._dynamo.explain(Net())(torch.ones(4, 8))
    assert explained.graph_count == 1 and explained.graph_break_count == 0


def test_net_trains_like_eager_through_torch_compile():
    eager, mine = _pair()
    compiled = torch.compile(mine, backend="graphc")
    x = torch.randn(4, 8, dtype=torch.float64)
    y = torch.randn(4, 1, dtype=torch.float64)
    opt_e = torch.optim.SGD(eager.parameters(), lr=0.05)
    opt_m = torch.optim.SGD(mine.parameters(), lr=0.05)
    for _ in range(3):
        for model, opt in ((eager, opt_e), (compiled, opt_m)):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
        torch.testing.assert_close(F.mse_loss(compiled(x), y).detach(),
                                   F.mse_loss(eager(x), y).detach(), rtol=RTOL64, atol=0)
    for a, b in zip(mine.parameters(), eager.parameters()):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=RTOL64, atol=RTOL64)


def test_options_reach_graphc(tmp_path):
    folder = tmp_path / "dump"
    model = torch.compile(Net(), backend="graphc",
                          options={"backend": "numpy", "check": True, "dump": str(folder),
                                   "native": False})
    x = torch.ones(2, 8)
    out = model(x)
    torch.testing.assert_close(out, model._orig_mod(x))
    assert any(name.endswith(".py") for name in os.listdir(folder))


def test_an_unknown_option_is_refused():
    import graphc
    model = torch.compile(Net(), backend="graphc", options={"nativ": False})
    with pytest.raises(Exception) as info:  # Dynamo wraps what a backend raises
        model(torch.ones(2, 8))
    cause = info.value
    while cause is not None and not isinstance(cause, graphc.OptionError):
        cause = cause.__cause__ or cause.__context__
    assert cause is not None and "nativ" in str(cause)


def test_untranslated_op_falls_back_to_eager_with_one_warning():
    def f(x):
        return torch.special.bessel_j0(x) * 2.0

    compiled = torch.compile(f, backend="graphc")
    x = torch.linspace(0.0, 3.0, 7)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compiled(x)
        compiled(x)
    torch.testing.assert_close(got, f(x))
    ours = [w for w in caught if issubclass(w.category, FallbackWarning)]
    assert len(ours) == 1
    assert "special_bessel_j0" in str(ours[0].message)
    assert "torch.special.bessel_j0(x)" in str(ours[0].message)  # the user's line


def test_batchnorm_in_train_mode_updates_running_stats_without_falling_back():
    # Dynamo passes the module's buffers as graph inputs; BatchNorm writes its running
    # statistics into them in place, which graphc writes back after the call
    class BNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.fc = nn.Linear(4 * 6 * 6, 3)

        def forward(self, x):
            return self.fc(torch.flatten(torch.relu(self.bn(self.conv(x))), 1))

    torch.manual_seed(0)
    eager = BNNet().double()
    mine = copy.deepcopy(eager)
    compiled = torch.compile(mine, backend="graphc")
    x = torch.randn(6, 2, 6, 6, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        for _ in range(3):
            eager(x).sum().backward()
            compiled(x).sum().backward()
    # float64, the same sums in other orders: far below 1e-10 of the values
    for name in ("running_mean", "running_var"):
        torch.testing.assert_close(getattr(mine.bn, name), getattr(eager.bn, name),
                                   rtol=1e-10, atol=1e-12)
    assert int(mine.bn.num_batches_tracked) == 3
    for p, q in zip(eager.parameters(), mine.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dynamic", [True, None], ids=["dynamic=True", "automatic"])
def test_dynamos_symbolic_sizes_become_graphcs_one_capture_for_every_batch(
        dynamic, monkeypatch):
    """Dynamo's SymInt-shaped graph (dynamic=True, or its automatic dynamic after the
    second size recompiles) is captured with graphc symbols: every later batch size is
    served by it, training as eager does."""
    import graphc.frontend.torch_capture as capture
    captures = []
    real = capture.capture_fx
    monkeypatch.setattr(capture, "capture_fx",
                        lambda gm, ex: captures.append(1) or real(gm, ex))
    eager, mine = _pair()
    compiled = torch.compile(mine, backend="graphc", dynamic=dynamic)
    for n in (3, 5, 9, 2, 17):
        x = torch.randn(n, 8, dtype=torch.float64)
        for model in (eager, compiled):
            model.zero_grad() if model is eager else mine.zero_grad()
            F.mse_loss(model(x), torch.zeros(n, 1, dtype=torch.float64)).backward()
        torch.testing.assert_close(compiled(x).detach(), eager(x).detach(), rtol=RTOL64,
                                   atol=RTOL64)
        for a, b in zip(mine.parameters(), eager.parameters()):
            torch.testing.assert_close(a.grad, b.grad, rtol=RTOL64, atol=RTOL64)
    # dynamic=True: one symbolic graph; automatic: size 3's, then Dynamo's dynamic one
    assert len(captures) == (1 if dynamic else 2)
