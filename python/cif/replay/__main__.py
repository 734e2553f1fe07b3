"""``python -m cif.replay``: the same as ``cif replay``."""

from __future__ import annotations

from cif.cli import module_main

if __name__ == "__main__":
    module_main("replay")
