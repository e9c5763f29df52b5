"""What to do instead of a numpy function graphc does not trace: one table.

A name that only looks like the missing one (np.sort -> np.sum) sends the user the
wrong way, so the hint for an unsupported function comes from `SUGGESTIONS`, written
by hand for the functions users reach for, and otherwise says plainly that graphc
has no such function.

>>> hint_for("np.sort")[:40]
'graphc has no sort: sort before calling '
>>> hint_for("np.sinc")[:22]
'graphc has no np.sinc:'
"""
from __future__ import annotations

_OUTSIDE = "compute it before calling the compiled function and pass the result in"
_SORT = ("graphc has no sort: sort before calling the compiled function and pass the "
         "result in (np.max / np.argmax give the largest value and its index)")
_DATA_SIZED = ("its result's size depends on the data, which a compiled graph cannot "
               "have: keep the full shape with a mask, np.where(mask, x, 0), and reduce")
_FACTOR = f"graphc has no matrix factorizations or solvers: {_OUTSIDE}"
_IN_PLACE = "compiled functions never write into arrays: build a new one with np.where"

SUGGESTIONS: dict[str, str] = {
    # order statistics
    **dict.fromkeys(("np.sort", "np.argsort", "np.partition", "np.argpartition",
                     "np.lexsort", "np.msort"), _SORT),
    **dict.fromkeys(("np.median", "np.percentile", "np.quantile", "np.nanmedian",
                     "np.nanpercentile", "np.nanquantile"),
                    f"graphc has no sort, which these need: {_OUTSIDE}"),
    # results whose size depends on the values
    **dict.fromkeys(("np.unique", "np.nonzero", "np.argwhere", "np.flatnonzero",
                     "np.compress", "np.extract", "np.trim_zeros"), _DATA_SIZED),
    **dict.fromkeys(("np.histogram", "np.bincount", "np.searchsorted", "np.digitize"),
                    f"graphc has no binning or search: {_OUTSIDE}"),
    # linear algebra beyond products and norms
    **dict.fromkeys(tuple(f"np.linalg.{f}" for f in (
        "inv", "pinv", "solve", "lstsq", "det", "slogdet", "svd", "eig", "eigh", "eigvals",
        "eigvalsh", "qr", "cholesky", "matrix_rank", "matrix_power", "cond")), _FACTOR),
    "np.trace": "np.sum(x * np.eye(n)) for a square (n, n) x",
    "np.diag": "x * np.eye(n) builds a diagonal matrix; np.sum(x * np.eye(n), axis=-1) "
               "reads the diagonal of a square x",
    "np.diagonal": "np.sum(x * np.eye(n), axis=-1) reads the diagonal of a square x",
    "np.kron": "np.einsum('ij,kl->ikjl', a, b).reshape(a.shape[0] * b.shape[0], -1)",
    # running and whole-array products
    "np.prod": "graphc has no product reduction: for positive x, np.exp(np.sum(np.log(x)))",
    "np.cumprod": "graphc has no cumprod: for positive x, np.exp(np.cumsum(np.log(x)))",
    "np.diff": "write it with slices: x[..., 1:] - x[..., :-1]",
    # rearranging
    "np.roll": "np.concatenate([x[-k:], x[:-k]]) rolls by k along axis 0",
    "np.tile": "np.broadcast_to(x, (r,) + x.shape) then reshape",
    "np.repeat": "np.broadcast_to(x[:, None], (n, r)).reshape(-1) repeats each element "
                 "r times",
    "np.meshgrid": "broadcast instead: x[:, None] and y[None, :]",
    **dict.fromkeys(("np.split", "np.array_split", "np.hsplit", "np.vsplit"),
                    "slice it: x[:k] and x[k:]"),
    **dict.fromkeys(("np.vstack", "np.hstack", "np.column_stack", "np.dstack"),
                    "np.concatenate (with axis=) or np.stack"),
    "np.rot90": "np.flip and np.swapaxes: np.flip(np.swapaxes(x, 0, 1), 0)",
    # elementwise math with a spelling in supported functions
    "np.log2": "np.log(x) / math.log(2) (a Python float keeps float32 float32)",
    "np.log10": "np.log(x) / math.log(10)",
    "np.exp2": "np.power(2.0, x)",
    "np.cbrt": "np.sign(x) * np.abs(x) ** (1 / 3)",
    "np.hypot": "np.sqrt(a * a + b * b)",
    "np.tan": "np.sin(x) / np.cos(x)",
    "np.sinh": "(np.exp(x) - np.exp(-x)) / 2",
    "np.cosh": "(np.exp(x) + np.exp(-x)) / 2",
    **dict.fromkeys(("np.arctan", "np.arctan2", "np.arcsin", "np.arccos", "np.arcsinh",
                     "np.arccosh", "np.arctanh"),
                    f"graphc has no inverse trigonometric functions: {_OUTSIDE}"),
    **dict.fromkeys(("np.fmax", "np.fmin"),
                    "np.maximum / np.minimum (which propagate NaN where these skip it)"),
    "np.logical_xor": "a != b on bool arrays",
    "np.bitwise_xor": "a != b on bool arrays (integer bit operations are not supported)",
    **dict.fromkeys(("np.isclose", "np.allclose"),
                    "np.abs(a - b) <= atol + rtol * np.abs(b)"),
    **dict.fromkeys(("np.nansum", "np.nanmean", "np.nanmax", "np.nanmin"),
                    "mask the NaNs: np.sum(np.where(x != x, 0, x)) (x != x is NaN)"),
    # writing into arrays
    **dict.fromkeys(("np.copyto", "np.put", "np.place", "np.putmask",
                     "np.fill_diagonal"), _IN_PLACE),
}


def hint_for(name: str) -> str:
    """The hint for unsupported `name` ('np.sort', 'np.linalg.inv'): a rewrite that
    does the job, or an honest 'graphc has no ...'."""
    return SUGGESTIONS.get(name, f"graphc has no {name}: rewrite it with the supported "
                                 f"numpy functions (README, 'What traces') or {_OUTSIDE}")
