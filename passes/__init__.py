"""Passes: pure `Graph -> Graph` functions, and the named pipeline that runs them."""
