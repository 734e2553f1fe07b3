"""``python -m cif`` is the ``cif`` console command."""

import sys

from cif.cli import main

sys.exit(main())
