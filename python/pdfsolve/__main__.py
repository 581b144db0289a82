"""``python -m pdfsolve``: the command line (see :mod:`pdfsolve.cli`)."""
from .cli import main

raise SystemExit(main())
