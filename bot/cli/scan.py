"""`veille scan` (being written)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Adds the `scan` command to the `veille` group."""
