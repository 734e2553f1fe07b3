"""``python -m cif`` is the ``cif`` console command."""

import sys

from cif.cli import main

# Guarded: a process the package spawns (the DuckDB writer) imports the main module again.
if __name__ == "__main__":
    sys.exit(main())
