"""The text of generated Python code: its lines, the values its names are bound to, numbers.

Numbers enter the text only through `number_text`, which takes a float that the checks have
proved finite and writes its repr: always a plain literal such as `-1.25e-05`.
"""

from __future__ import annotations

import math

__all__ = ["Source", "number_text"]


def number_text(value: float) -> str:
    """A checked finite float as source text: its repr, in parentheses when negative."""
    if type(value) is not float or not math.isfinite(value):  # the checks make this unreachable
        raise ValueError("only finite floats are written into generated code")
    text = repr(value)
    return f"({text})" if text.startswith("-") else text


class Source:
    """The lines of the generated function and the values its names are bound to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, object] = {"NAN": math.nan}
        self._count = 0

    def fresh(self, prefix: str) -> str:
        """A new variable name."""
        self._count += 1
        return f"{prefix}{self._count}"

    def bind(self, prefix: str, value: object) -> str:
        """A new name bound to `value` in the generated function's globals."""
        name = self.fresh(prefix)
        self.names[name] = value
        return name

    def add(self, depth: int, line: str) -> None:
        """Append a line, indented `depth` levels."""
        self.lines.append("    " * depth + line)
