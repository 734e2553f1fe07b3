"""``python -m cif.sim``: the same as ``cif sim``."""

from __future__ import annotations

from cif.cli import module_main

if __name__ == "__main__":
    module_main("sim")
