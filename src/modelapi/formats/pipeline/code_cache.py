"""Compiled code for the groups of trees of one `pipeline.json`, made when a package is built.

Compiling a 100-tree forest's generated code takes most of a Lambda cold start (about 150 ms
of 300). `modelapi package lambda --embed-model` generates the same code from the same checked
file that serving would, has an interpreter of the target Python version compile each group,
and puts the marshalled code objects in the package, under `precompiled/` beside this module,
in a file named by the sha256 of the `pipeline.json` it came from.

A loader uses such a file only when all of this holds; otherwise it compiles, as always:

- it is in this package's own folder (written there by the packager; a store or a bundle can
  never put one there, and nothing in a bundle names a path);
- its header names this modelapi version, the running interpreter's byte-code magic number
  and the sha256 of the very bytes being loaded (the file is read only after the digest of
  those bytes names it, and the header repeats it);
- it holds one entry per group (bz2-compressed marshal data), each a code object with its
  bound constants (floats and sets of category codes), and the function it defines takes
  exactly the parameters the code generated from this file would.

The file is never executed before those checks, and what it holds is only what the
packager's own code generator wrote from numbers the checks had proved (`compiler`), as the
package's `.pyc` files are only what its sources compile to.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Callable, Sequence
from pathlib import Path
from types import CodeType
from typing import Any

from modelapi._version import __version__
from modelapi.formats.pipeline.compiler import compile_spec
from modelapi.formats.pipeline.emitter import Source, compile_group, function_from
from modelapi.formats.pipeline.spec import CellKind, PipelineSpec

__all__ = [
    "COMPILE_OPTIONS",
    "COMPILE_SCRIPT",
    "FOLDER",
    "FOLDER_NAME",
    "GroupRecorder",
    "PrecompiledGroups",
    "cache_bytes",
    "cache_name",
    "group_job",
    "precompiled_for",
]

FOLDER_NAME = "precompiled"
FOLDER = Path(__file__).resolve().with_name(FOLDER_NAME)
_TAG = b"modelapi pipeline code "

# Run by the target interpreter (with `-X no_debug_ranges`: the code has no file to point
# into, and column positions were a fifth of its size) with the groups as JSON on stdin:
# its magic number, then the entries marshalled in its own format, as its code objects are,
# compressed with bz2 (a ninth of the marshalled size, 60 % of what the zip's deflate leaves).
COMPILE_SCRIPT = """
import bz2, importlib.util, json, marshal, sys
entries = []
for group in json.load(sys.stdin):
    if group is None:
        entries.append(None)
        continue
    names = {
        name: float.fromhex(value) if kind == "float" else frozenset(value)
        for name, (kind, value) in group["names"].items()
    }
    entries.append((compile(group["source"], "<pipeline.json>", "exec"), names))
packed = bz2.compress(marshal.dumps(tuple(entries)), 9)
sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER + packed)
"""
COMPILE_OPTIONS = ("-I", "-S", "-X", "no_debug_ranges")


def cache_name(data: bytes) -> str:
    """The file name of the precompiled code of a `pipeline.json`."""
    return f"{hashlib.sha256(data).hexdigest()}.marshal"


def _header(digest: bytes, magic: bytes) -> bytes:
    return _TAG + __version__.encode() + b"\n" + magic + digest


def cache_bytes(data: bytes, compiled: bytes) -> bytes:
    """The file for `data`, from COMPILE_SCRIPT's output (magic number, then the entries)."""
    magic, entries = compiled[:4], compiled[4:]
    return _header(hashlib.sha256(data).digest(), magic) + entries


class GroupRecorder:
    """The groups' sources as the loader would compile them, for COMPILE_SCRIPT (as JSON).

    A group whose bound values are not plain constants (a walker function, for trees past
    the depth limit) is recorded as None: the loader compiles that one itself.
    """

    def __init__(self) -> None:
        self.groups: list[dict[str, object] | None] = []

    def __call__(
        self, index: int, parameters: tuple[str, ...], source: Callable[[], Source]
    ) -> Callable[..., Any]:
        """Record group `index` (in order); the function returned is never called."""
        assert index == len(self.groups)
        inner = source()
        names: dict[str, list[object]] = {}
        for name, value in inner.names.items():
            if type(value) is float:
                names[name] = ["float", value.hex()]
            elif type(value) is frozenset and all(type(code) is int for code in value):
                names[name] = ["codes", sorted(value)]
            else:
                self.groups.append(None)
                return _recorded
        self.groups.append({"source": inner.text(), "names": names})
        return _recorded


def group_job(
    spec: PipelineSpec, stages: list[list[CellKind]], classes: Sequence[object]
) -> list[dict[str, object] | None]:
    """The groups of trees of a checked spec, as COMPILE_SCRIPT reads them (empty: none)."""
    recorder = GroupRecorder()
    compile_spec(spec, stages, classes, recorder)
    return recorder.groups


def _recorded(*arguments: object) -> object:
    raise AssertionError("a recorded group is compiled by the target interpreter, not called")


class PrecompiledGroups:
    """The GroupCompiler of a model with precompiled groups: each one's code if it fits."""

    def __init__(self, entries: Sequence[tuple[CodeType, dict[str, object]] | None]) -> None:
        self._entries = entries
        self.used = 0

    def __call__(
        self, index: int, parameters: tuple[str, ...], source: Callable[[], Source]
    ) -> Callable[..., Any]:
        """Group `index`'s precompiled function, or the group compiled now if it differs."""
        entry = self._entries[index] if index < len(self._entries) else None
        if entry is not None:
            function = function_from(entry[0], entry[1], "group")
            code = getattr(function, "__code__", None)
            if isinstance(code, CodeType) and code.co_varnames[: code.co_argcount] == parameters:
                self.used += 1
                return function
        return compile_group(index, parameters, source)


def precompiled_for(data: bytes) -> PrecompiledGroups | None:
    """The precompiled groups of this `pipeline.json` in this package, or None."""
    if not FOLDER.is_dir():  # the usual case: only a Lambda package has the folder
        return None
    digest = hashlib.sha256(data).digest()
    try:
        blob = (FOLDER / f"{digest.hex()}.marshal").read_bytes()
    except OSError:
        return None
    from importlib.util import MAGIC_NUMBER

    header = _header(digest, MAGIC_NUMBER)
    if not blob.startswith(header):
        return None
    try:
        import bz2

        entries = marshal.loads(bz2.decompress(memoryview(blob)[len(header) :]))
    except (ImportError, OSError, EOFError, ValueError, TypeError):
        return None
    if type(entries) is not tuple or not all(_is_entry(e) for e in entries):
        return None
    return PrecompiledGroups(entries)


def _is_entry(entry: object) -> bool:
    if entry is None:
        return True
    if type(entry) is not tuple or len(entry) != 2:
        return False
    code, names = entry
    return (
        type(code) is CodeType
        and type(names) is dict
        and all(
            type(name) is str
            and (
                type(value) is float
                or (type(value) is frozenset and all(type(c) is int for c in value))
            )
            for name, value in names.items()
        )
    )
