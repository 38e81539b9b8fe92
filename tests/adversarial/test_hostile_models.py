"""Hostile model files: what tests/unit/test_bundle.py does not already refuse.

The bundle tests cover flipped bytes, truncated and oversized artifacts, `../` and absolute
names and future format versions in a bundle folder. Here the attacker has also rewritten the
checksums in the manifest (so every file "verifies"), and the payloads are built to do harm:
a pickle that would run a command, a skops file naming a function that runs one, ONNX graphs
of some other model. Each must be refused with an error naming the file, without running
anything; and a live server whose alias is moved to such a version keeps serving the one it
had.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import pytest

from modelapi.app import create_app
from modelapi.bundle import MANIFEST, Bundle, artifact_entry, read_bundle
from modelapi.config import Settings
from modelapi.errors import BundleError
from modelapi.formats.onnx import export as onnx_export
from modelapi.formats.skops import load_skops, read_estimator
from modelapi.predictor import Predictor
from modelapi.schema import Feature
from modelapi.source import ModelSource
from modelapi.store.local import LocalStore
from tests.conftest import PIMA_EXAMPLE
from tests.http.toy_models import HOSTILE_CATEGORY, toy_predictor
from tests.servers import HttpSend, serve_app


def _evil_pickle(marker: Path) -> bytes:
    """A protocol-0 pickle that runs `touch MARKER` when it is unpickled."""
    return b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."


def _with_files(bundle: Bundle, files: dict[str, bytes], **changes: object) -> Bundle:
    """The bundle with files replaced and the manifest's sums rewritten to match them."""
    artifacts = {**bundle.manifest.artifacts}
    for name, data in files.items():
        artifacts[name] = artifact_entry(data)
    manifest = msgspec.structs.replace(bundle.manifest, artifacts=artifacts, **changes)
    return Bundle(manifest, {**bundle.files, **files})


# ---- pickles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slot", ["linear.json", "model.onnx", "model.pkl", "model.skops"])
def test_a_pickle_is_never_unpickled_whatever_file_it_poses_as(
    builtin_bundle: Bundle, tmp_path: Path, slot: str
) -> None:
    marker = tmp_path / "ran"
    serving = slot if slot != "model.skops" else builtin_bundle.manifest.serving
    bundle = _with_files(builtin_bundle, {slot: _evil_pickle(marker)}, serving=serving)
    store = LocalStore(tmp_path / "models")
    stored = store.put(bundle)  # every checksum matches: only the contents are hostile
    read = read_bundle(tmp_path / "models" / "diabetes" / str(stored.version))
    load: Callable[[Bundle], object] = read_estimator if slot == "model.skops" else Predictor
    with pytest.raises(BundleError, match=slot.replace(".", r"\.")):
        load(read)
    source = ModelSource(f"diabetes:{stored.version}", str(store.root))
    assert source.load() is (slot == "model.skops")  # serving never reads model.skops at all
    if slot != "model.skops":
        assert slot in source.reason
    assert not marker.exists(), "the pickle ran"


# ---- skops -----------------------------------------------------------------------------------


class _Payload:
    """A class outside every trust list whose construction would leave a mark."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict[str, object]) -> None:
        Path(str(state["marker"])).touch()


def test_a_skops_file_naming_a_command_runner_is_refused_naming_it(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    marker = tmp_path / "ran"
    payloads = {
        "posix.system": sio.dumps(FunctionTransformer(func=os.system, kw_args={})),
        "_Payload": sio.dumps(FunctionTransformer(kw_args={"x": _Payload(str(marker))})),
        "builtins.eval": sio.dumps(FunctionTransformer(func=eval)),
    }
    for type_name, data in payloads.items():
        with pytest.raises(BundleError, match=r"model\.skops: holds types outside") as raised:
            load_skops(data)
        assert type_name in str(raised.value)
    assert not marker.exists()


# ---- ONNX that is not the manifest's model -----------------------------------------------------


def _tree(n_features: int, n_classes: int, *, regressor: bool = False) -> object:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, n_features))
    y = np.arange(40) % n_classes
    estimator = DecisionTreeRegressor() if regressor else DecisionTreeClassifier()
    return estimator.fit(X, y)


def _tree_onnx(n_features: int, n_classes: int, *, regressor: bool = False) -> bytes:
    estimator = _tree(n_features, n_classes, regressor=regressor)
    features = [Feature(column=f"c{i}", key=f"c{i}", type="number") for i in range(n_features)]
    task = "regression" if regressor else "classification"
    return onnx_export(estimator, features, task, None if regressor else (0, 1))


@pytest.fixture(scope="module")
def graphs() -> dict[str, bytes]:
    """Small ONNX graphs: one that fits the Pima manifest, and others that do not."""
    return {
        "fits": _tree_onnx(8, 2),
        "three inputs": _tree_onnx(3, 2),
        "three classes": _tree_onnx(8, 3),
        "a regressor": _tree_onnx(8, 2, regressor=True),
    }


ONNX_CASES: dict[str, tuple[str, dict[str, object], str]] = {
    "fewer inputs": ("three inputs", {}, "does not run on the manifest's 8 features"),
    "more classes": ("three classes", {}, "for the manifest's 2 classes|outside the manifest"),
    "other labels": ("fits", {"classes": ("no", "yes")}, "outside the manifest classes"),
    "regressor as classifier": ("a regressor", {}, "needs label and probability outputs"),
    "classifier as regressor": (
        "fits",
        {"classes": None, "task": "regression"},
        "one number per row",
    ),
    "not onnx at all": ("", {}, "not a loadable ONNX model"),
}


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_an_onnx_file_that_is_not_the_manifests_model_is_refused(
    builtin_bundle: Bundle, graphs: dict[str, bytes], case: str
) -> None:
    graph, changes, reason = ONNX_CASES[case]
    data = graphs.get(graph, b"\x08\x07" + b"\x00" * 64)
    bundle = _with_files(builtin_bundle, {"model.onnx": data}, serving="model.onnx", **changes)
    with pytest.raises(BundleError, match=rf"^model\.onnx: .*({reason})"):
        Predictor(bundle)


def test_the_graph_that_fits_is_served(builtin_bundle: Bundle, graphs: dict[str, bytes]) -> None:
    bundle = _with_files(builtin_bundle, {"model.onnx": graphs["fits"]}, serving="model.onnx")
    row = list(msgspec.json.decode(PIMA_EXAMPLE).values())
    [(label, probabilities)] = Predictor(bundle).predict([row])
    estimator = _tree(8, 2)
    assert label == estimator.predict([row]).tolist()[0]  # type: ignore[attr-defined]
    assert probabilities == tuple(estimator.predict_proba([row]).tolist()[0])  # type: ignore[attr-defined]


# ---- a live server keeps what it serves ----------------------------------------------------------


def _write_version(root: Path, version: int, manifest: dict[str, object], files: dict) -> None:
    """Write a version folder by hand, as an attacker with write access to the store could."""
    folder = root / "diabetes" / str(version)
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / MANIFEST).write_bytes(json.dumps({**manifest, "version": version}).encode())


# The file each hostile version's refusal must name in the log.
NAMED = {
    "pickle served": "model.pkl",
    "path outside": "manifest.json",
    "future format": "manifest.json",
    "truncated": "linear.json",
    "onnx of another model": "model.onnx",
    "linear of another model": "linear.json",
}


def _tampered(bundle: Bundle, graphs: dict[str, bytes], marker: Path) -> dict[str, Callable]:
    """Ways to write a hostile version; each returns (manifest, files) for the store."""
    good = msgspec.to_builtins(bundle.manifest)
    linear = bundle.files["linear.json"]

    def resummed(files: dict[str, bytes], **changes: object) -> tuple[dict, dict]:
        artifacts = {name: msgspec.to_builtins(artifact_entry(d)) for name, d in files.items()}
        return {**good, "artifacts": artifacts, **changes}, files

    return {
        "pickle served": lambda: resummed({"model.pkl": _evil_pickle(marker)}, serving="model.pkl"),
        "path outside": lambda: (
            {
                **good,
                "artifacts": {"../1/linear.json": good["artifacts"]["linear.json"]},
                "serving": "../1/linear.json",
            },
            {},
        ),
        "future format": lambda: ({**good, "format_version": 99}, {"linear.json": linear}),
        "truncated": lambda: (good, {"linear.json": linear[: len(linear) // 2]}),
        "onnx of another model": lambda: resummed(
            {"model.onnx": graphs["three inputs"]}, serving="model.onnx"
        ),
        "linear of another model": lambda: resummed(
            {"linear.json": b'{"kind":"logistic","intercept":[0.0],"weights":[[1.0]]}'}
        ),
    }


def test_a_running_server_keeps_its_version_when_a_hostile_one_is_promoted(
    tmp_path: Path,
    builtin_bundle: Bundle,
    graphs: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "models"
    store = LocalStore(root)
    store.put(builtin_bundle)
    store.set_alias("diabetes", "production", 1)
    marker = tmp_path / "ran"
    settings = Settings(model="diabetes@production", store=str(root), reload_interval_s=0.05)
    app = create_app(settings)
    tampered = _tampered(builtin_bundle, graphs, marker)
    with (
        caplog.at_level(logging.ERROR, logger="modelapi"),
        serve_app(app) as url,
        HttpSend(url) as send,
    ):

        def answer() -> tuple[int, str | None, bytes]:
            status, headers, body = send("POST", "/predict", {}, PIMA_EXAMPLE)
            return status, headers.get("x-model-version"), body

        expected = answer()
        assert expected[:2] == (200, "diabetes:1")
        assert set(tampered) == set(NAMED)
        for version, (name, make) in enumerate(sorted(tampered.items()), start=2):
            _write_version(root, version, *make())
            caplog.clear()
            # Written by hand: `set_alias` itself refuses a version it cannot read.
            (root / "diabetes" / "aliases" / "production").write_text(f"{version}\n")
            deadline = time.monotonic() + 10
            while "could not be reloaded" not in caplog.text:
                assert time.monotonic() < deadline, f"{name}: the reload was never tried"
                assert answer() == expected, name
                time.sleep(0.02)
            assert "still serving diabetes:1" in caplog.text, name
            for _ in range(20):
                assert answer() == expected, name
            assert send("GET", "/health", {}, b"")[0] == 200
        # A good version promoted after all that is served.
        good = store.put(builtin_bundle)
        store.set_alias("diabetes", "production", good.version)
        deadline = time.monotonic() + 10
        while send("GET", "/model", {}, b"")[1]["x-model-version"] != f"diabetes:{good.version}":
            assert time.monotonic() < deadline, "the good version was never served"
            time.sleep(0.02)
    app.close()
    assert not marker.exists()


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        ([[1.0]], "weights for 1 features, the manifest has 3"),
        ([{"red": [1.0]}, [1.0], [1.0]], "colour needs a weight for each of its categories"),
        ([[1.0], [1.0], [1.0]], "colour needs a weight for each of its categories"),
        ([{"red": [1.0], HOSTILE_CATEGORY: [1.0]}, {"a": [1.0]}, [1.0]], "size_cm is numeric"),
    ],
)
def test_a_linear_file_of_another_model_is_refused(weights: list[object], reason: str) -> None:
    toy = toy_predictor("regression")
    data = msgspec.json.encode({"kind": "regression", "intercept": [0.0], "weights": weights})
    bundle = _with_files(Bundle(toy.manifest, {}), {"linear.json": data})
    with pytest.raises(BundleError, match=rf"^linear\.json: {reason}"):
        Predictor(bundle)
