"""How long the adversarial tests run: bounded in CI, longer with `--long`.

`pytest --long` (or MODELAPI_LONG_TESTS=1) turns on the long variants: more fuzzing examples,
more kill points, the full 60 s soak. Test modules read the flag when they are collected.
"""

from __future__ import annotations

import os
from typing import TypeVar

from tests.conftest import LONG_TESTS_ENV

__all__ = ["IS_LONG", "scaled"]

_T = TypeVar("_T")

IS_LONG = os.environ.get(LONG_TESTS_ENV, "").strip() not in {"", "0"}


def scaled(ci: _T, long: _T) -> _T:
    """The CI value, or the long one when the long variants are on."""
    return long if IS_LONG else ci
