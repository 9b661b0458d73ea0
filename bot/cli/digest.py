"""`veille digest` (being written)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Adds the `digest` command to the `veille` group."""
