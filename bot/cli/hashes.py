"""`veille hashes` (being written)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Adds the `hashes` command to the `veille` group."""
