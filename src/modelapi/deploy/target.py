"""The Lambda runtime a package is built for: Python version and architecture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Arch", "LambdaTarget"]

Arch = Literal["x86_64", "arm64"]


@dataclass(frozen=True, slots=True)
class LambdaTarget:
    """The Lambda runtime a package is built for."""

    python: str = "3.12"
    arch: Arch = "x86_64"

    @property
    def machine(self) -> str:
        """The manylinux machine name: x86_64 or aarch64."""
        return "aarch64" if self.arch == "arm64" else "x86_64"
