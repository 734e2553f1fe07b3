"""Short-horizon forecasts of the mid price from the order-flow features.

The pieces are split so that training and the live service share every definition that
decides a number: ``labels`` (what "up/flat/down over h" means, one function for both),
``models`` (the JSON artifact and the Python wrappers around the Rust scorers),
``evaluation`` (the live evaluator and the batch metrics the trainer reports) and ``train``
(``cif train``: walk-forward validation and the final fit).
"""
