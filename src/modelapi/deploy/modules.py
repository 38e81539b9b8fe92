"""The modelapi modules a Lambda imports, found by following imports from its entry modules.

Import statements are read from the source (never run), lazy ones inside functions included,
and so is any string that names a modelapi module, alone or as `module:function` (modules
imported by name, such as the route handlers of `routes.ROUTES`, imported when first called).
Imports under `if TYPE_CHECKING:` are skipped: they are not loaded at run time. Of the serving
formats (`modelapi.formats.FORMATS`, which names every format's module), only the served
ones' modules are followed, without their exporters.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from modelapi.formats import FORMATS, format_of

__all__ = ["PACKAGE_ROOT", "import_statements", "module_file", "runtime_modules"]

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
_ENTRY_MODULES = ("modelapi.aws_lambda", "modelapi.store.local")
# A package that embeds its model never opens a store (the embedded bundle wins over
# MODELAPI_STORE): the S3 backend, and the signer and transport only it imports, stay out.
_S3_BACKEND = "modelapi.store.s3"
# Reached only through lazy imports that serving never runs (`modelapi.train()`, the CLI and
# `modelapi.Client`): the training stack and the client are never packaged. pipeline.json's
# numpy evaluator is reached only from the numpy block paths (`modelapi.scoring`), and a
# Lambda package has no numpy.
_NEVER_PACKAGED = (
    "modelapi.client",
    "modelapi.cli",
    "modelapi.deploy",
    "modelapi.scoring",
    "modelapi.training",
    "modelapi.formats.skops",
    "modelapi.formats.pipeline.vectorised",
)
_MODULE_NAME = re.compile(r"(modelapi(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?::[A-Za-z_][A-Za-z0-9_.]*)?")


def runtime_modules(*serving: str, s3: bool = True) -> list[str]:
    """The modelapi modules a Lambda serving these artifacts imports, found by following imports.

    `serving` names formats by file name (`linear.json`); with none, every format's modules.
    Without `s3`, the S3 store's modules are left out. Raises BundleError for an unknown format.
    """
    served = tuple(format_of(name) for name in serving) or FORMATS
    never = (
        *_NEVER_PACKAGED,
        *(f.module for f in FORMATS if f not in served),
        *(exporter for f in FORMATS for exporter in f.exporters),
        *(() if s3 else (_S3_BACKEND,)),
    )
    wanted = [*_ENTRY_MODULES, *((_S3_BACKEND,) if s3 else ()), *(f.module for f in served)]
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        path = module_file(name)
        if name in seen or path is None or _is_never_packaged(name, never):
            continue
        seen.add(name)
        parent = name.rpartition(".")[0]
        if parent:
            wanted.append(parent)
        wanted.extend(_imports_of(path, name))
    return sorted(seen)


def module_file(name: str) -> Path | None:
    """The source file of modelapi module `name`, or None when there is none."""
    relative = Path(*name.split(".")[1:])
    for candidate in (PACKAGE_ROOT / relative / "__init__.py", PACKAGE_ROOT / f"{relative}.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_never_packaged(name: str, never: tuple[str, ...]) -> bool:
    return any(name == skipped or name.startswith(skipped + ".") for skipped in never)


def import_statements(
    tree: ast.Module, module: str, *, is_package: bool
) -> Iterator[tuple[str, list[str]]]:
    """Each run-time import statement of `module` (its source parsed as `tree`), lazy ones
    included: the module it names, resolved when relative, and the names it takes from it
    (none for `import a.b`). Imports under `if TYPE_CHECKING:` are skipped: they never run.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *filter(None, [base])])
            yield base, [alias.name for alias in node.names]


def _imports_of(path: Path, module: str) -> Iterator[str]:
    tree = ast.parse(path.read_bytes(), str(path))
    for base, names in import_statements(tree, module, is_package=path.name == "__init__.py"):
        if base.split(".")[0] == "modelapi":
            yield base
            yield from (f"{base}.{name}" for name in names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            named = _MODULE_NAME.fullmatch(node.value)
            if named:
                yield named.group(1)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )
