"""The options and arguments several commands share, declared once: `--store` and REF."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from modelapi.config import ENV_PREFIX, Settings

__all__ = ["REF_HELP", "ref_argument", "store_option"]

F = TypeVar("F", bound=Callable[..., Any])
# How every command reads a model reference.
REF_HELP = "REF is name (the newest version), name:3, name@alias or a bundle folder path."


def store_option(help: str = "Model store: a folder or s3://bucket/prefix.") -> Callable[[F], F]:
    """`--store URI`: a flag wins over MODELAPI_STORE, which wins over `./models`."""
    return click.option(
        "--store",
        default=Settings().store,
        show_default=True,
        envvar=f"{ENV_PREFIX}STORE",
        metavar="URI",
        help=f"{help} (env {ENV_PREFIX}STORE)",
    )


def ref_argument(**options: Any) -> Callable[[F], F]:
    """The REF argument (see REF_HELP); `options` as click.argument takes them."""
    return click.argument("ref", metavar="REF", **options)
