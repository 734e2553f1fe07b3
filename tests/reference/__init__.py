"""Pure-Python reference implementations used as the baseline of tests and benchmarks.

Nothing here is imported by the ``cif`` package.
"""
