"""Frontends: capture Python functions into graphc IR.

`frontend.trace.trace_function` traces numpy code with `Tracer` values; the numpy
protocols are installed on `Tracer` by `frontend.numpy_api`.
"""
