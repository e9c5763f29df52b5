"""Fit y = sin(x) with a cubic, by gradient descent: gradients by hand, and by graphc.grad.

    python examples/polyfit.py

The classic first example of "Learning PyTorch with Examples": 2000 points in
[-pi, pi], y_pred = a + b x + c x^2 + d x^3, the squared error summed over the points,
plain gradient descent with learning rate 1e-6 for 2000 steps, in float64. The
tutorial's numpy version derives the four gradients by hand. With graphc one writes
only the loss; `graphc.value_and_grad` derives the gradients on the IR and
`graphc.compile` compiles loss, gradients and update into one function.

The example trains both ways from the same start, checks that they end at the same
polynomial (within 1e-9 relative) with the same loss curve, prints the loss curve,
the fitted polynomial, and the time per step of each.
"""
from __future__ import annotations

import numpy as np

import graphc
from _common import check_close, check_curve, print_losses, print_times, seconds_per_call

LEARNING_RATE = 1e-6
STEPS = 2000


def hand_step(params, x, y):
    """One step of the tutorial's numpy code: loss, then the gradients derived by hand."""
    a, b, c, d = params
    y_pred = a + b * x + c * x**2 + d * x**3
    loss = np.square(y_pred - y).sum()
    grad_y_pred = 2.0 * (y_pred - y)
    grad_a = grad_y_pred.sum()
    grad_b = (grad_y_pred * x).sum()
    grad_c = (grad_y_pred * x**2).sum()
    grad_d = (grad_y_pred * x**3).sum()
    new = (a - LEARNING_RATE * grad_a, b - LEARNING_RATE * grad_b,
           c - LEARNING_RATE * grad_c, d - LEARNING_RATE * grad_d)
    return loss, new


def polynomial_loss(params, x, y):
    """The same loss, and nothing else: graphc derives the gradients."""
    a, b, c, d = params
    y_pred = a + b * x + c * x**2 + d * x**3
    return np.square(y_pred - y).sum()


@graphc.compile
def graphc_step(params, x, y):
    """Loss, its gradient with respect to params, and the update, as one compiled graph."""
    loss, grads = graphc.value_and_grad(polynomial_loss)(params, x, y)
    return loss, tuple(p - LEARNING_RATE * g for p, g in zip(params, grads))


def train(step, params, x, y, steps):
    losses = []
    for _ in range(steps):
        loss, params = step(params, x, y)
        losses.append(float(loss))
    return params, losses


def sign(v: float) -> str:
    return "-" if v < 0 else "+"


def main(steps: int | None = None) -> dict:
    steps = STEPS if steps is None else steps
    x = np.linspace(-np.pi, np.pi, 2000)
    y = np.sin(x)
    # The parameters are 0-d float64 arrays, not Python floats: graphc treats Python
    # numbers as constants of the graph (a new value would mean a new trace), arrays
    # as its inputs.
    rng = np.random.default_rng(0)
    start = tuple(np.array(v) for v in rng.standard_normal(4))

    hand_params, hand_losses = train(hand_step, start, x, y, steps)
    graphc_params, graphc_losses = train(graphc_step, start, x, y, steps)

    print_losses({"loss (by hand)": hand_losses, "loss (graphc)": graphc_losses})
    a, b, c, d = (float(p) for p in graphc_params)
    print(f"result: y = {a:.6f} {sign(b)} {abs(b):.6f} x {sign(c)} {abs(c):.6f} x^2 "
          f"{sign(d)} {abs(d):.6f} x^3")
    # Both compute the same sums in float64, in a different order: they agree to
    # rounding, which 2000 steps of gradient descent do not amplify.
    worst = max(check_close(f"parameter {name}", g, h, rtol=1e-9)
                for name, g, h in zip("abcd", graphc_params, hand_params))
    check_curve("loss curve", graphc_losses, hand_losses, rtol=1e-9)
    print(f"graphc.grad and the hand-derived gradients end at the same polynomial "
          f"(largest relative difference {worst:.1e})")

    compiled = seconds_per_call(graphc_step, start, x, y, repeats=200)
    eager = seconds_per_call(hand_step, start, x, y, repeats=200)
    print_times(compiled, {"eager: the hand-derived numpy step": eager})
    return {"hand_params": hand_params, "graphc_params": graphc_params,
            "hand_losses": hand_losses, "graphc_losses": graphc_losses,
            "seconds_per_step": {"compiled": compiled, "eager": eager}}


if __name__ == "__main__":
    main()
