"""The format registry names each format's module; nothing is imported until a format is used."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from modelapi.errors import BundleError
from modelapi.formats import FORMATS, Format, format_of


@pytest.mark.parametrize("served", FORMATS, ids=lambda f: f.file_name)
def test_each_record_names_the_module_that_serves_its_file(served: Format) -> None:
    module = importlib.import_module(served.module)
    assert served.file_name == module.FILE_NAME
    assert callable(module.load)
    assert callable(module.export)
    assert format_of(served.file_name) is served
    for exporter in served.exporters:
        assert exporter.startswith(served.module + ".")
        importlib.import_module(exporter)


def test_the_registry_imports_no_format_module() -> None:
    script = (
        "import sys\n"
        "from modelapi.formats import FORMATS, format_of\n"
        "format_of('pipeline.json')\n"
        "print(sorted(m for m in sys.modules if m.startswith('modelapi.formats.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "['modelapi.formats.base']"


def test_a_format_whose_module_is_not_installed_names_it_and_the_fix() -> None:
    absent = Format.of("absent.json", "modelapi.formats.absent", tolerance=0.0, wheels=("msgspec",))
    with pytest.raises(
        BundleError, match=r"absent.json: serving it needs modelapi\.formats\.absent"
    ):
        absent.load(b"{}", features=(), task="regression", classes=None)
    with pytest.raises(BundleError, match=r"package the function again .*modelapi package lambda"):
        absent.export(object(), (), "regression", None)


def test_a_missing_library_is_not_taken_for_a_missing_format() -> None:
    foreign = Format.of("x.bin", "not_a_modelapi_module", tolerance=0.0, wheels=())
    with pytest.raises(ModuleNotFoundError, match="not_a_modelapi_module"):
        foreign.load(b"")
