"""Precompiled tree code: used only for the very file it was made from, by this interpreter.

The packager's step (`precompiled_entries`) runs here with this interpreter as the target.
A load then takes every group from the file and answers as a fresh compile and as
scikit-learn do. Any other file, interpreter, version, a damaged or forged blob, or a group
whose parameters differ is ignored (that group, or all) and compiled as always.
"""

from __future__ import annotations

import bz2
import hashlib
import marshal
import sys
from pathlib import Path

import pandas as pd
import pytest

from modelapi.bundle import Bundle
from modelapi.deploy.precompile import precompiled_entries
from modelapi.formats import pipeline
from modelapi.formats.pipeline import code_cache, tree_code
from modelapi.formats.pipeline import model as model_module
from modelapi.training.check_rows import frame_rows
from modelapi.training.data import load_dataset
from modelapi.training.workflow import TrainResult, train


@pytest.fixture(scope="module")
def forest(pima_csv: Path) -> TrainResult:
    dataset = load_dataset(pima_csv)
    result = train(dataset, model="random_forest", params={"n_estimators": 12, "max_depth": 6})
    assert result.manifest.serving == "pipeline.json"
    return result


@pytest.fixture(autouse=True)
def folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Groups of about 200 nodes, and the package's folder in a temporary place."""
    monkeypatch.setattr(tree_code, "GROUP_NODES", 200)
    folder = tmp_path / "precompiled"
    monkeypatch.setattr(code_cache, "FOLDER", folder)
    return folder


def _data(forest: TrainResult) -> bytes:
    data: bytes = forest.bundle.files["pipeline.json"]
    return data


def _load(forest: TrainResult, data: bytes | None = None) -> pipeline.PipelineModel:
    manifest = forest.manifest
    return pipeline.load(
        _data(forest) if data is None else data,
        features=manifest.features,
        task=manifest.task,
        classes=manifest.classes,
    )


def _package(forest: TrainResult, folder: Path) -> Path:
    entries = precompiled_entries(Bundle(forest.manifest, forest.bundle.files), sys.executable)
    [(name, blob)] = entries.items()
    assert name == f"modelapi/formats/pipeline/precompiled/{code_cache.cache_name(_data(forest))}"
    folder.mkdir()
    path = folder / name.rsplit("/", 1)[1]
    path.write_bytes(blob)
    return path


@pytest.fixture(scope="module")
def X(pima_csv: Path) -> pd.DataFrame:
    frame: pd.DataFrame = load_dataset(pima_csv).X
    return frame


def _answers(forest: TrainResult, model: pipeline.PipelineModel, X: pd.DataFrame) -> list[object]:
    return list(model.predict_compiled(frame_rows(X, forest.manifest.features)))


@pytest.fixture(scope="module")
def expected(forest: TrainResult, X: pd.DataFrame) -> list[object]:
    labels = forest.estimator.predict(X).tolist()  # type: ignore[attr-defined]
    proba = forest.estimator.predict_proba(X).tolist()  # type: ignore[attr-defined]
    return [(label, tuple(p)) for label, p in zip(labels, proba, strict=True)]


def _groups(forest: TrainResult, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int] | None:
    """(groups a load takes from the file, groups the file holds), or None when unused."""
    found = code_cache.precompiled_for(_data(forest))
    if found is None:
        return None
    monkeypatch.setattr(model_module, "precompiled_for", lambda data: found)
    _load(forest).warm()
    return found.used, len(found._entries)


def test_a_package_takes_every_group_from_the_file(
    forest: TrainResult,
    folder: Path,
    X: pd.DataFrame,
    expected: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert code_cache.precompiled_for(_data(forest)) is None
    fresh = _answers(forest, _load(forest), X)
    _package(forest, folder)
    assert _answers(forest, _load(forest), X) == fresh == expected
    used = _groups(forest, monkeypatch)
    assert used is not None
    assert used[0] == used[1] > 3


def test_another_file_is_not_served_by_the_code(forest: TrainResult, folder: Path) -> None:
    path = _package(forest, folder)
    other = _data(forest).replace(b'"average":true', b'"average":false')
    assert other != _data(forest)
    # Renamed as the other file's: the header still names the first file's digest.
    path.rename(folder / code_cache.cache_name(other))
    assert code_cache.precompiled_for(other) is None
    assert code_cache.precompiled_for(_data(forest)) is None


@pytest.mark.parametrize(
    "damage",
    [
        "magic",
        "version",
        "digest",
        "truncated",
        "garbage",
        "not bz2",
        "bad marshal data",
        "not entries",
        "wrong types",
    ],
)
def test_a_damaged_or_forged_file_is_ignored(
    forest: TrainResult, folder: Path, X: pd.DataFrame, expected: list[object], damage: str
) -> None:
    path = _package(forest, folder)
    blob = path.read_bytes()
    digest = hashlib.sha256(_data(forest)).digest()
    from importlib.util import MAGIC_NUMBER

    at = blob.index(MAGIC_NUMBER + digest)
    header = blob[: at + 4 + 32]
    forged = {
        "magic": blob[:at] + b"\x00\x00\r\n" + blob[at + 4 :],
        "version": blob.replace(b"code ", b"code 0.0.0-", 1),
        "digest": blob[: at + 4] + bytes(32) + blob[at + 36 :],
        "truncated": blob[: len(blob) // 2],
        "garbage": header + b"\xff" * 100,
        "not bz2": header + marshal.dumps(()),
        "bad marshal data": header + bz2.compress(b"\xff" * 100),
        "not entries": header + bz2.compress(marshal.dumps({"a": 1})),
        "wrong types": header
        + bz2.compress(marshal.dumps(((compile("1", "x", "exec"), {"f": "text"}),))),
    }[damage]
    path.write_bytes(forged)
    assert code_cache.precompiled_for(_data(forest)) is None
    assert _answers(forest, _load(forest), X) == expected


@pytest.mark.parametrize("change", ["other parameters", "left out"])
def test_such_a_group_is_compiled_afresh(
    forest: TrainResult,
    folder: Path,
    X: pd.DataFrame,
    expected: list[object],
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    path = _package(forest, folder)
    found = code_cache.precompiled_for(_data(forest))
    assert found is not None
    entries: list[object] = list(found._entries)
    code = compile("def group(a, b):\n    return (a,)\n", "<pipeline.json>", "exec")
    entries[1] = (code, {"NAN": float("nan")}) if change == "other parameters" else None
    blob = path.read_bytes()
    digest = hashlib.sha256(_data(forest)).digest()
    header = blob[: blob.index(digest) + len(digest)]
    path.write_bytes(header + bz2.compress(marshal.dumps(tuple(entries))))
    assert _answers(forest, _load(forest), X) == expected
    used = _groups(forest, monkeypatch)
    assert used is not None
    assert used[0] == used[1] - 1


def test_walked_trees_are_left_to_the_loader(
    forest: TrainResult, X: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, expected: list[object]
) -> None:
    """Below MAX_DEPTH a tree is walked by a function bound in its group, not a constant:
    such a group is not precompiled (here every group, so the package holds no file)."""
    monkeypatch.setattr(tree_code, "MAX_DEPTH", 3)
    bundle = Bundle(forest.manifest, forest.bundle.files)
    assert precompiled_entries(bundle, sys.executable) == {}
    assert _answers(forest, _load(forest), X) == expected


def test_without_a_target_interpreter_or_for_another_format_there_is_none(
    forest: TrainResult,
) -> None:
    bundle = Bundle(forest.manifest, forest.bundle.files)
    assert precompiled_entries(bundle, None) == {}
    assert precompiled_entries(bundle, "/nonexistent/python3.12") == {}
    assert precompiled_entries(bundle, sys.executable + "-missing") == {}


@pytest.mark.parametrize("warm", [True, False])
def test_the_row_code_is_compiled_at_load_only_when_warmed(
    forest: TrainResult,
    X: pd.DataFrame,
    expected: list[object],
    warm: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server warms (its first request must not wait); `modelapi predict` may never need
    the code, as its blocks go to the numpy evaluator."""
    from modelapi.predictor import Predictor

    compiled: list[object] = []
    real = model_module.compile_spec
    monkeypatch.setattr(model_module, "compile_spec", lambda *a: compiled.append(a) or real(*a))
    predictor = Predictor(forest.bundle, warm=warm)
    assert len(compiled) == int(warm)
    rows = frame_rows(X.head(3), forest.manifest.features)
    assert predictor.predict(rows) == predictor.predict(rows) == expected[:3]
    assert len(compiled) == 1
