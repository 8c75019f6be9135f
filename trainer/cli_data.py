"""Subcommands (filled in by their issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this room's commands to the `wordstamp` app."""
