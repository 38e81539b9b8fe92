"""`modelapi predict` commands."""

from __future__ import annotations

import click

__all__ = ["commands"]

commands: list[click.Command] = []
