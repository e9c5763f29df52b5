"""graphc.compile on nn.Modules and torch functions: used like the module, trained with
graphc's own backward, cached per mode and shape, parameters shared with the module.

Training is compared in float64 against eager float64 torch: the two differ only in the
order of summation, and a sum of n terms rounds within n * 2**-53 of the terms'
magnitude (Higham, Accuracy and Stability, 3.1), about 2e-15 for these n <= 16; ten SGD
steps at lr 0.05 on this loss scale a perturbation by well under 10, so rtol 1e-11
leaves two orders of magnitude. Float32 results are compared against float64 eager as
the exact value, graphc's error allowed up to 8 times eager float32's own (the same
computation rounded in another order) plus 8 ulp of the largest magnitude.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

import graphc  # noqa: E402

RTOL64 = 1e-11


from torch_nets import Net  # noqa: E402  (the seeds' Linear-ReLU-Linear)


def _net(dtype=torch.float64, seed=0) -> Net:
    torch.manual_seed(seed)
    return Net().to(dtype)


def _batch(n=4, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g, dtype=dtype), torch.randn(n, 1, generator=g,
                                                                      dtype=dtype)


def _train(model, params, x, y, steps=10):
    opt = torch.optim.SGD(params, lr=0.05)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _assert_close64(got, want):
    got, want = got.detach(), want.detach()
    torch.testing.assert_close(got, want, rtol=RTOL64, atol=RTOL64 * float(want.abs().max()))


def _assert_float32(got, eager32, exact64):
    """got (graphc float32) within 8x eager float32's error of exact, plus 8 ulp."""
    got, eager32, exact = got.detach(), eager32.detach(), exact64.detach().double()
    eager_err = float((eager32.double() - exact).abs().max())
    ulp = float(np.spacing(np.float32(exact.abs().max())))
    err = float((got.double() - exact).abs().max())
    assert err <= 8 * eager_err + 8 * ulp, (err, eager_err, ulp)


# ---- the callable ---------------------------------------------------------------------

def test_net_trains_ten_sgd_steps_like_eager():
    eager, mine = _net(), _net()
    compiled = graphc.compile(mine)
    x, y = _batch()
    want = _train(eager, eager.parameters(), x, y)
    got = _train(compiled, mine.parameters(), x, y)
    np.testing.assert_allclose(got, want, rtol=RTOL64)
    for (name, p), q in zip(mine.named_parameters(), eager.parameters()):
        _assert_close64(p, q)
    assert compiled.cache_info().misses == 1  # one capture served every step


def test_float32_forward_and_gradients_match_eager():
    exact, eager, mine = _net(), _net(torch.float32), _net(torch.float32)
    x, y = _batch(8)
    results = []
    for model, xx, yy in ((exact, x, y), (eager, x.float(), y.float()),
                          (graphc.compile(mine), x.float(), y.float())):
        out = model(xx)
        F.mse_loss(out, yy).backward()
        params = model.parameters()
        results.append((out, [p.grad for p in params]))
    (out64, g64), (out32, g32), (got, ggot) = results
    _assert_float32(got, out32, out64)
    for a, b, c in zip(ggot, g32, g64):
        _assert_float32(a, b, c)


def test_parameters_are_the_modules_own():
    model = _net()
    compiled = graphc.compile(model)
    assert compiled.module is model
    assert all(a is b for a, b in zip(compiled.parameters(), model.parameters()))
    x, _ = _batch()
    before = compiled(x)
    with torch.no_grad():
        model.fc2.bias += 1.0  # what an optimizer step does
    torch.testing.assert_close(compiled(x), before + 1.0, rtol=RTOL64, atol=RTOL64)


def test_keyword_arguments_and_dict_outputs():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2).double()

        def forward(self, x, *, scale, shift=None):
            h = self.lin(x) * scale
            return {"h": h, "both": (h.sum(), h + shift)}

    model = TwoHeads()
    x, shift = torch.randn(4, 3, dtype=torch.float64), torch.randn(2, dtype=torch.float64)
    got = graphc.compile(model)(x, scale=2.0, shift=shift)
    want = model(x, scale=2.0, shift=shift)
    assert set(got) == {"h", "both"} and isinstance(got["both"], tuple)
    for a, b in zip(torch.utils._pytree.tree_leaves(got),
                    torch.utils._pytree.tree_leaves(want)):
        _assert_close64(a, b)


def test_frozen_parameters_get_no_gradient_and_no_backward():
    eager, mine = _net(), _net()
    for m in (eager, mine):
        m.fc1.requires_grad_(False)
    compiled = graphc.compile(mine)
    x, y = _batch()
    F.mse_loss(compiled(x), y).backward()
    F.mse_loss(eager(x), y).backward()
    assert mine.fc1.weight.grad is None and mine.fc1.bias.grad is None
    _assert_close64(mine.fc2.weight.grad, eager.fc2.weight.grad)
    # the backward compiled for this pattern computes fc2's two gradients only
    (entry,) = compiled._cache.values()
    (program,) = entry.programs.values()
    kinds = entry.captured.input_kinds
    assert [kinds[i] for i in program.wrt] == [("param", "fc2.weight"), ("param", "fc2.bias")]
    assert len(entry.lowered[1].graph.outputs) == 2


def test_unfreezing_compiles_another_pattern_without_capturing_again():
    model = _net()
    compiled = graphc.compile(model)
    x, y = _batch()
    F.mse_loss(compiled(x), y).backward()
    model.fc1.requires_grad_(False)
    F.mse_loss(compiled(x), y).backward()
    (entry,) = compiled._cache.values()
    assert len(entry.programs) == 2 and compiled.cache_info().misses == 1


def test_no_grad_calls_compile_the_forward_alone():
    model = _net()
    compiled = graphc.compile(model)
    x, _ = _batch()
    with torch.no_grad():
        out = compiled(x)
    assert not out.requires_grad
    _assert_close64(out, model(x))
    (entry,) = compiled._cache.values()
    (program,) = entry.programs.values()
    assert program.backward is None and program.wrt == []


def test_train_and_eval_are_separate_entries():
    class Moded(nn.Module):
        def forward(self, x):
            return x * 2.0 if self.training else x * 3.0

    model = Moded()
    compiled = graphc.compile(model)
    x = torch.ones(3)
    torch.testing.assert_close(compiled(x), x * 2.0)
    compiled.eval()
    torch.testing.assert_close(compiled(x), x * 3.0)
    compiled.train()
    torch.testing.assert_close(compiled(x), x * 2.0)
    assert compiled.cache_info() == (1, 2, 2)


def test_new_batch_size_retraces_with_the_explanation(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_LOG", "recompiles")
    compiled = graphc.compile(_net(torch.float32))
    compiled(torch.ones(4, 8))
    compiled(torch.ones(6, 8))
    err = capsys.readouterr().err
    assert "recompiling Net because:" in err
    assert "x: shape changed from float32[4, 8] to float32[6, 8]" in err


def test_a_new_batch_size_makes_the_batch_axis_dynamic(monkeypatch, capsys):
    """The numpy path's policy (graphc/dynamic.py): the first call's sizes, then one
    symbolic capture for every batch size, training and inference alike."""
    monkeypatch.setenv("GRAPHC_LOG", "recompiles")
    eager = _net()
    mine = _net()
    compiled = graphc.compile(mine)
    for n in (4, 6, 3, 17, 2, 9):
        x, y = _batch(n, seed=n)
        for model, run in ((eager, eager), (mine, compiled)):
            model.zero_grad()
            F.mse_loss(run(x), y).backward()
        _assert_close64(compiled(x), eager(x))
        for p, q in zip(eager.parameters(), mine.parameters()):
            _assert_close64(q.grad, p.grad)
    assert compiled.cache_info().misses == 2
    err = capsys.readouterr().err
    assert "x: axis 0 is dynamic now (s0): its size changed from 4 to 6" in err
    with torch.no_grad():  # the inference pattern of the same symbolic capture
        x, _ = _batch(11)
        _assert_close64(compiled(x), eager(x))
    assert compiled.cache_info().misses == 2


def test_dynamic_true_is_symbolic_from_the_first_call_and_false_never():
    every, fixed, eager = graphc.compile(_net(), dynamic=True), \
        graphc.compile(_net(), dynamic=False), _net()
    with torch.no_grad():
        for n in (3, 5, 8):
            x, _ = _batch(n)
            _assert_close64(every(x), eager(x))
            _assert_close64(fixed(x), eager(x))
    assert every.cache_info().misses == 1 and fixed.cache_info().misses == 3


def test_mode_change_explained(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_LOG", "recompiles")
    compiled = graphc.compile(_net(torch.float32))
    compiled(torch.ones(4, 8))
    compiled.eval()
    compiled(torch.ones(4, 8))
    assert "Net.training: changed from True to False" in capsys.readouterr().err


def test_many_retraces_warn_at_the_users_line():
    compiled = graphc.compile(_net(torch.float32), dynamic=False)  # a capture per size
    with pytest.warns(graphc.RecompileWarning) as caught:
        for n in range(1, 11):
            compiled(torch.ones(n, 8))
    (first, *_) = [w for w in caught if w.category is graphc.RecompileWarning]
    assert first.filename == __file__


def test_batchnorm_running_statistics_are_written_back():
    torch.manual_seed(0)
    eager = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6)).double()
    mine = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6)).double()
    mine.load_state_dict(eager.state_dict())
    compiled = graphc.compile(mine)
    x = torch.randn(8, 4, dtype=torch.float64)
    for _ in range(2):
        _assert_close64(compiled(x), eager(x))
    mine_buffers = dict(mine.named_buffers())
    for name, buf in eager.named_buffers():  # running_mean, running_var, num_batches_tracked
        if buf.dtype.is_floating_point:
            _assert_close64(mine_buffers[name], buf)
        else:
            assert torch.equal(mine_buffers[name], buf), name
    compiled.eval()
    _assert_close64(compiled(x), eager.eval()(x))


def test_check_mode_runs():
    model = _net()
    compiled = graphc.compile(model, check=True)
    x, y = _batch()
    F.mse_loss(compiled(x), y).backward()
    assert model.fc1.weight.grad is not None


# ---- functions of torch tensors ---------------------------------------------------------

def test_decorated_torch_function_and_its_gradients():
    @graphc.compile
    def attention(q, k, v):
        w = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)
        return (w @ v).tanh().sum()

    g = torch.Generator().manual_seed(0)
    args = [torch.randn(2, 3, 4, dtype=torch.float64, generator=g, requires_grad=True)
            for _ in range(3)]
    got = attention(*args)
    grads = torch.autograd.grad(got, args)
    want = attention.fn(*args)
    for a, b in zip(grads, torch.autograd.grad(want, args)):
        _assert_close64(a, b)
    _assert_close64(got, want)


def test_numpy_calls_still_work_after_torch_calls():
    f = graphc.compile(lambda x: x * 2.0)
    torch.testing.assert_close(f(torch.ones(2)), torch.full((2,), 2.0))
    np.testing.assert_array_equal(f(np.ones(2)), np.full(2, 2.0))


def test_import_graphc_does_not_import_torch():
    import subprocess
    import sys
    code = "import sys, graphc; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_graphc_error_names_the_users_line():
    def uses_fft(x):
        return torch.fft.rfft(x).abs()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(graphc.GraphcError) as info:
            graphc.compile(uses_fft)(torch.ones(8))
    assert "torch.fft.rfft(x)" in str(info.value) and "test_torch_compile.py" in str(info.value)


def test_cache_size_evicts_the_least_recently_used_capture():
    compiled = graphc.compile(nn.Linear(3, 2), cache_size=1)
    for n in (1, 2, 3):
        compiled(torch.ones(n, 3)).sum().backward()
    assert compiled.cache_info() == (0, 3, 1)
    compiled.cache_clear()
    assert compiled.cache_info() == (0, 0, 0)
