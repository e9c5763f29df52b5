"""graphc's torch.autograd.Function: zero-copy tensors in, torch tensors out, inputs
never written, needs_input_grad honoured, integer outputs non-differentiable, and a
second derivative refused by name rather than silently zero.

Everything but the zero-copy test is float64 against eager float64 torch; the functions are short (sums of at
most 12 terms), so the two orders of summation agree to a few ulp: rtol 1e-12.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import graphc  # noqa: E402
from graphc.torch_compile import compile_function  # noqa: E402

RTOL = 1e-12


def _close(got, want):
    torch.testing.assert_close(got.detach(), want.detach(), rtol=RTOL, atol=RTOL)


def _spy(compiled, seen: list):
    """Wrap every Program compiled from now on so that its forward records the
    arrays the backend receives."""
    compile_program = compiled._compile

    def compile_and_spy(entry, pattern):
        program = compile_program(entry, pattern)
        if not getattr(program.forward, "spied", False):
            forward = program.forward

            def spied(*arrays):
                seen.append(arrays)
                return forward(*arrays)
            spied.spied = True
            program.forward = spied
        return program
    compiled._compile = compile_and_spy


def test_contiguous_float32_input_is_not_copied():
    compiled = compile_function(lambda x, w: torch.tanh(x) @ w)
    seen: list = []
    _spy(compiled, seen)
    x, w = torch.randn(4, 3), torch.randn(3, 2)
    out = compiled(x, w)
    (arrays,) = seen
    assert np.shares_memory(arrays[0], x.numpy()) and np.shares_memory(arrays[1], w.numpy())
    assert not arrays[0].flags.writeable  # a kernel cannot write into the user's tensor
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert out.device == x.device
    # float32: within 8 times eager float32's error of float64, plus 8 ulp
    exact = torch.tanh(x.double()) @ w.double()
    eager_err = float(((torch.tanh(x) @ w).double() - exact).abs().max())
    ulp = float(np.spacing(np.float32(exact.abs().max())))
    assert float((out.double() - exact).abs().max()) <= 8 * eager_err + 8 * ulp


def test_non_contiguous_and_other_dtypes_work_and_inputs_are_untouched():
    @graphc.compile
    def f(x, idx, scale):
        return (x * scale).sum(dim=0) + idx.to(x.dtype), idx * 2

    x = torch.randn(5, 3, dtype=torch.float64).t()  # non-contiguous
    idx = torch.arange(5, dtype=torch.int64)
    scale = torch.tensor(3.0, dtype=torch.float64)
    keep = [t.clone() for t in (x, idx, scale)]
    got, doubled = f(x, idx, scale)
    want, want_doubled = f.fn(x, idx, scale)
    _close(got, want)
    assert doubled.dtype == torch.int64 and torch.equal(doubled, want_doubled)
    for before, after in zip(keep, (x, idx, scale)):
        assert torch.equal(before, after)


def test_an_output_never_aliases_an_input():
    f = graphc.compile(lambda x: x.reshape(-1))
    x = torch.zeros(2, 3)
    out = f(x)
    out += 1.0
    assert torch.equal(x, torch.zeros(2, 3))


def test_only_the_inputs_that_need_a_gradient_get_one():
    compiled = compile_function(lambda x, w: (torch.tanh(x @ w) ** 2).sum())
    x = torch.randn(4, 3, dtype=torch.float64)
    w = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    compiled(x, w).backward()
    assert x.grad is None
    w_eager = w.detach().clone().requires_grad_()
    (torch.tanh(x @ w_eager) ** 2).sum().backward()
    _close(w.grad, w_eager.grad)
    (entry,) = compiled._cache.values()
    (program,) = entry.programs.values()
    assert program.wrt == [1]  # a backward compiled for w alone


def test_integer_outputs_are_not_differentiable():
    f = graphc.compile(lambda x: ((x * x).sum(), x.ge(0.0)))
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    total, positive = f(x)
    assert total.requires_grad and not positive.requires_grad
    assert positive.dtype == torch.bool and torch.equal(positive, x.detach() >= 0)
    total.backward()
    _close(x.grad, 2 * x)


def test_an_unused_output_gets_a_zero_cotangent():
    f = graphc.compile(lambda x: (torch.sin(x), torch.cos(x)))
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    s, _ = f(x)
    s.sum().backward()
    _close(x.grad, torch.cos(x))


def test_first_order_with_create_graph_works_and_second_order_is_refused():
    f = graphc.compile(lambda x: (x ** 3).sum())
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    _close(g, 3 * x ** 2)
    with pytest.raises(graphc.GraphcError, match="differentiated once only") as info:
        g.sum().backward()
    assert "hint" in str(info.value)


def test_an_input_the_backward_reads_changed_before_it_runs_is_caught_by_torch():
    f = graphc.compile(lambda x, w: torch.tanh(x @ w).sum())
    x = torch.randn(4, 3, dtype=torch.float64)
    w = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    loss = f(x, w)
    (entry,) = f._torch._cache.values()
    assert 0 in next(iter(entry.programs.values())).takes  # the backward reads x
    x += 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_sgd_with_momentum_and_adam_step_through_graphc_gradients():
    torch.manual_seed(0)
    eager = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(),
                                torch.nn.Linear(7, 2)).double()
    mine = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(),
                               torch.nn.Linear(7, 2)).double()
    mine.load_state_dict(eager.state_dict())
    compiled = graphc.compile(mine)
    x, y = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    for make in (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                 lambda p: torch.optim.Adam(p, lr=0.01)):
        opts = make(eager.parameters()), make(mine.parameters())
        for _ in range(3):
            for model, opt in zip((eager, compiled), opts):
                opt.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                opt.step()
        for a, b in zip(mine.parameters(), eager.parameters()):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-10, atol=1e-12)


def test_dropout_masks_repeat_under_manual_seed_and_match_in_backward():
    model = torch.nn.Dropout(0.5)
    compiled = graphc.compile(model)
    x = torch.ones(64, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(3)
    a = compiled(x)
    torch.manual_seed(3)
    b = compiled(x)
    assert torch.equal(a, b)
    c = compiled(x)
    assert not torch.equal(a, c)  # a new seed each call
    c.sum().backward()
    # the backward recomputes the forward's mask: the gradient is 2 where c kept x
    _close(x.grad, c.detach())
