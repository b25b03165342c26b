"""Subcommands of the ``dcsbench`` CLI, one module per area (see :mod:`dcsbench.cli`)."""
