"""``python -m cif.api``: the same as ``cif api``."""

from __future__ import annotations

from cif.cli import module_main

if __name__ == "__main__":
    module_main("api")
