"""Subcommands of ``python -m geodistill``; see :mod:`geodistill.cli`."""
