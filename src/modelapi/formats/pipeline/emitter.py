"""The text of generated Python code: its lines, the values its names are bound to, numbers.

Numbers enter the text only through `number_text`, which takes a float that the checks have
proved finite and writes its repr: always a plain literal such as `-1.25e-05`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import CodeType
from typing import Any, Protocol

__all__ = [
    "CODE_FILE",
    "GroupCompiler",
    "Source",
    "compile_function",
    "compile_group",
    "function_from",
    "number_text",
]

# The file name compiled code reports (tracebacks, and the precompiled code of a package).
CODE_FILE = "<pipeline.json>"


def number_text(value: float) -> str:
    """A checked finite float as source text: its repr, in parentheses when negative."""
    if type(value) is not float or not math.isfinite(value):  # the checks make this unreachable
        raise ValueError("only finite floats are written into generated code")
    text = repr(value)
    return f"({text})" if text.startswith("-") else text


class Source:
    """The lines of the generated function and the values its names are bound to."""

    def __init__(self, prefix: str = "") -> None:
        self.lines: list[str] = []
        self.names: dict[str, object] = {"NAN": math.nan}
        self._prefix = prefix
        self._count = 0

    def fresh(self, prefix: str) -> str:
        """A new variable name."""
        self._count += 1
        return f"{self._prefix}{prefix}{self._count}"

    def bind(self, prefix: str, value: object) -> str:
        """A new name bound to `value` in the generated function's globals."""
        name = self.fresh(prefix)
        self.names[name] = value
        return name

    def add(self, depth: int, line: str) -> None:
        """Append a line, indented `depth` levels."""
        self.lines.append("    " * depth + line)

    def text(self) -> str:
        """The whole source text."""
        return "\n".join(self.lines)


def compile_function(source: Source, name: str) -> Callable[..., Any]:
    """Compile the generated lines and return the function `name` they define.

    It runs without builtins: the names it may use are the ones bound in `source.names`.
    """
    return function_from(compile(source.text(), CODE_FILE, "exec"), source.names, name)


def function_from(code: CodeType, names: Mapping[str, object], name: str) -> Callable[..., Any]:
    """Run the compiled text of a Source and return the function `name` it defines."""
    scope: dict[str, object] = {"__builtins__": {}, **names}
    exec(code, scope)
    function: Callable[..., Any] = scope[name]  # type: ignore[assignment]
    return function


class GroupCompiler(Protocol):
    """Makes the function of one group of trees: `source()` gives its text when needed."""

    def __call__(
        self, index: int, parameters: tuple[str, ...], source: Callable[[], Source]
    ) -> Callable[..., Any]:
        """The function `group(*parameters)` of group `index`."""
        ...


def compile_group(
    index: int, parameters: tuple[str, ...], source: Callable[[], Source]
) -> Callable[..., Any]:
    """A group's function compiled here and now (the GroupCompiler a model loads with)."""
    return compile_function(source(), "group")
