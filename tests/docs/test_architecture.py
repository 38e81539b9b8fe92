"""docs/ARCHITECTURE.md's module table is the map of `ls src/modelapi`, kept true by this test."""

from __future__ import annotations

import re
from pathlib import Path

import modelapi

PACKAGE = Path(modelapi.__file__).parent
DOCUMENT = Path(__file__).parents[2] / "docs" / "ARCHITECTURE.md"
_NOT_MAPPED = {"__init__", "__main__", "_version"}


def _table() -> dict[str, str]:
    """Each row's names (first cell, `a`, `b/`) -> the row's text."""
    rows: dict[str, str] = {}
    for line in DOCUMENT.read_text(encoding="utf-8").splitlines():
        cells = line.split(" | ")
        if line.startswith("| `") and len(cells) >= 2:
            for name in re.findall(r"`([^`]+)`", cells[0]):
                rows[name] = line
    return rows


def _top_level() -> set[str]:
    names = {p.stem for p in PACKAGE.glob("*.py")} - _NOT_MAPPED
    folders = {p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    return names | folders | {"models/"}


def test_every_top_level_module_and_folder_has_a_row() -> None:
    rows = _table()
    top = _top_level()
    assert sorted(top - rows.keys()) == []
    named_top = {name for name in rows if "/" not in name.rstrip("/") and not name.startswith("_")}
    assert sorted(named_top - top) == []


def test_every_module_of_a_folder_is_named_in_its_row() -> None:
    rows = _table()
    for folder in sorted(n for n in _top_level() if n.endswith("/") and n != "models/"):
        text = " ".join(row for name, row in rows.items() if name.split("/")[0] + "/" == folder)
        modules = {
            p.stem if p.name != "__init__.py" else p.parent.name
            for p in (PACKAGE / folder).glob("*/__init__.py")
        } | {p.stem for p in (PACKAGE / folder).glob("*.py")} - {"__init__"}
        missing = sorted(m for m in modules if f"`{m}`" not in text and f"`{m}/`" not in text)
        assert missing == [], f"{folder} row does not name {missing}"


def test_the_top_level_stays_small() -> None:
    # The core and the adapters; everything else lives in a folder of its subsystem.
    assert len([p for p in PACKAGE.glob("*.py") if p.stem not in _NOT_MAPPED]) <= 14
