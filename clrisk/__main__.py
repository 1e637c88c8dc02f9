"""``python -m clrisk``: the command line."""

from clrisk.cli import main

raise SystemExit(main())
