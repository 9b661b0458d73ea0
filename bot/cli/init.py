"""`veille init` (being written)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Adds the `init` command to the `veille` group."""
