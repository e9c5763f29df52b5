"""cumsum as a native kernel of its own: a C loop along the axis, for the numpy backend.

A prefix sum is not elementwise (out[k] needs every in[j <= k]), so fusion leaves it
alone and codegen runs it as one C loop per row of the axes before the summed one.
Along the axis the additions run in index order, as np.add.accumulate does, so a float
result is the one numpy gives bit for bit; the axes after it form the inner,
vectorized loop. Integers wrap around as numpy's do (unsigned arithmetic in C).

    for (int64_t r = lo; r < hi; r++) {          // cumsum %x {axis=0} of f64[4,6]
      const double *restrict x = a0 + r * 4 * 6;
      double *restrict y = o0 + r * 4 * 6;
      for (int64_t j = 0; j < 6; j++) y[j] = x[j];
      for (int64_t k = 1; k < 4; k++) {
        #pragma omp simd
        for (int64_t j = 0; j < 6; j++)
          y[k * 6 + j] = (double)((double)y[(k - 1) * 6 + j] + (double)x[k * 6 + j]);
      } }
"""
from __future__ import annotations

from graphc.ir import Node
from graphc.backends.numpy.literals import c_size
from graphc.backends.numpy.native import CTYPE, _UNSIGNED, NativeKernel, _describe, _size


def scan_kernel(name: str, node: Node) -> NativeKernel | None:
    """`node` (a cumsum) as a C kernel over the rows before its axis, or None where C
    cannot (float16, an empty array: numpy's lowering runs it)."""
    x = node.inputs[0].type
    axis = node.attrs["axis"]
    if node.op != "cumsum" or x.dtype not in CTYPE or x.dtype == "bool" or x.size == 0:
        return None
    outer = _size(x.shape[:axis])  # the rows: the caller passes them, symbolic or not
    n, inner = c_size(x.shape[axis]), c_size(_size(x.shape[axis + 1:]))
    t = CTYPE[x.dtype]
    at = _UNSIGNED.get(x.dtype, t)  # integers wrap as numpy's do
    comment = f"// {_describe(node)}"
    if inner == "1":  # one running total per row
        loop = [f"{at} acc = ({at})x[0];  {comment}", "y[0] = x[0];",
                f"for (int64_t k = 1; k < {n}; k++) {{",
                f"  acc += ({at})x[k];", f"  y[k] = ({t})acc;", "}"]
    else:  # a row of running totals, one per inner position
        loop = [f"for (int64_t j = 0; j < {inner}; j++) y[j] = x[j];  {comment}",
                f"for (int64_t k = 1; k < {n}; k++) {{", "  #pragma omp simd",
                f"  for (int64_t j = 0; j < {inner}; j++)",
                f"    y[k * {inner} + j] = ({t})(({at})y[(k - 1) * {inner} + j] + "
                f"({at})x[k * {inner} + j]);", "}"]
    body = [f"void {name}(int64_t lo, int64_t hi, void *const *args) {{",
            f"  const {t} *restrict a0 = args[0];", f"  {t} *restrict o0 = args[1];"]
    sized = "sizes[" in n + inner  # symbolic: read from the call's sizes (args[2])
    body += ["  const int64_t *restrict sizes = args[2];"] * sized
    body += ["  for (int64_t r = lo; r < hi; r++) {",
             f"    const {t} *restrict x = a0 + r * {n} * {inner};",
             f"    {t} *restrict y = o0 + r * {n} * {inner};"]
    source = "\n".join(body + ["    " + line for line in loop] + ["  }", "}"])
    return NativeKernel(name, source, [node.inputs[0]], [node.output], outer, 1,
                        frozenset(), sizes=sized)
