"""``python -m cif.live``: the same as ``cif live``."""

from __future__ import annotations

from cif.cli import module_main

if __name__ == "__main__":
    module_main("live")
