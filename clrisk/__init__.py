"""clrisk: where children are most at risk of child labour, and why."""

__version__ = "0.1.0.dev0"
