"""The peers modelapi races, and the wire each server takes rows on and answers labels in.

Three peers, each in its own virtualenv under benchmarks/.work/ (pinned in
baselines/requirements-<peer>.txt) and serving the contract's model saved in its own format:

- **naive**: FastAPI + pydantic + a pickle (baselines/naive_app.py), the same JSON as modelapi.
- **mlserver**: MLServer's scikit-learn runtime on a joblib file, one process
  (`parallel_workers=0`), the V2 inference protocol with one `[n, 8]` FP64 tensor.
- **bentoml**: a `@bentoml.service` (baselines/bentoml_service.py) on a model in BentoML's own
  store, a sync `@bentoml.api` for one row and one taking an `[n, 8]` array.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.contract import Row, row_values

__all__ = [
    "MLSERVER_MODEL",
    "PEERS",
    "WIRES",
    "Wire",
    "check_labels",
    "parse_peers",
    "write_mlserver_config",
]

PEERS: tuple[str, ...] = ("naive", "mlserver", "bentoml")
MLSERVER_MODEL = "pima"


def parse_peers(text: str) -> tuple[str, ...]:
    """`--peers`: names from PEERS joined by commas, or `none`; the chosen ones in PEERS order.

    Raises ValueError naming the known peers for anything else.
    """
    names = {name.strip() for name in text.split(",")}
    if names == {"none"}:
        return ()
    unknown = sorted(names - set(PEERS))
    if unknown:
        raise ValueError(
            f"the peers must be a comma-separated list of {', '.join(PEERS)}, or none;"
            f" not {', '.join(repr(name) for name in unknown)}"
        )
    return tuple(name for name in PEERS if name in names)


@dataclass(frozen=True, slots=True)
class Wire:
    """How one server takes rows and gives labels: its paths, its two bodies, its two answers.

    `row_labels` reads the answer to one row, `labels` the answer to a batch (decoded JSON).
    """

    row_path: str
    batch_path: str
    row_body: Callable[[Row], bytes]
    batch_body: Callable[[Sequence[Row]], bytes]
    row_labels: Callable[[object], list[int]]
    labels: Callable[[object], list[int]]


def _object_body(row: Row) -> bytes:
    return json.dumps(row).encode()


def _objects_body(rows: Sequence[Row]) -> bytes:
    return json.dumps(list(rows)).encode()


def _label(value: object) -> int:
    # A label may come back as 1 or 1.0 (MLServer's FP64 output), never as anything else.
    if isinstance(value, bool) or not isinstance(value, int | float) or value not in (0, 1):
        raise ValueError("a label must be 0 or 1")
    return int(value)


def _outcomes(answer: object) -> list[int]:
    """`{"outcome": n}` for one row, a list of them for several (modelapi, naive, BentoML)."""
    answers = answer if isinstance(answer, list) else [answer]
    labels = []
    for item in answers:
        if not isinstance(item, dict) or "outcome" not in item:
            raise ValueError('the answer must be {"outcome": n} or a list of them')
        labels.append(_label(item["outcome"]))
    return labels


def _tensor_body(rows: Sequence[Row]) -> bytes:
    data = [value for row in rows for value in row_values(row)]
    tensor = {"name": "input-0", "shape": [len(rows), 8], "datatype": "FP64", "data": data}
    return json.dumps({"inputs": [tensor]}).encode()


def _tensor_labels(answer: object) -> list[int]:
    """The first output tensor's data of a V2 inference answer."""
    outputs = answer.get("outputs") if isinstance(answer, dict) else None
    if not isinstance(outputs, list) or not outputs or not isinstance(outputs[0], dict):
        raise ValueError("a V2 answer must have a list of outputs")
    data = outputs[0].get("data")
    if not isinstance(data, list):
        raise ValueError("a V2 output must carry its data as a list")
    return [_label(value) for value in data]


def _array_body(rows: Sequence[Row]) -> bytes:
    return json.dumps({"rows": [row_values(row) for row in rows]}).encode()


def _array_labels(answer: object) -> list[int]:
    """A bare JSON list of labels (BentoML's answer for an array)."""
    if not isinstance(answer, list):
        raise ValueError("the answer must be a list of labels")
    return [_label(value) for value in answer]


def _tensor_row(row: Row) -> bytes:
    return _tensor_body([row])


def _outcome(answer: object) -> list[int]:
    """`{"outcome": n}`: the answer to one row."""
    if isinstance(answer, list):
        raise ValueError('the answer to one row must be {"outcome": n}')
    return _outcomes(answer)


_OBJECTS = Wire("/predict", "/predict", _object_body, _objects_body, _outcome, _outcomes)
WIRES: dict[str, Wire] = {
    "modelapi": _OBJECTS,
    "naive": _OBJECTS,
    "mlserver": Wire(
        f"/v2/models/{MLSERVER_MODEL}/infer",
        f"/v2/models/{MLSERVER_MODEL}/infer",
        _tensor_row,
        _tensor_body,
        _tensor_labels,
        _tensor_labels,
    ),
    # One row is the exact example body (the API's parameters are the wire names).
    "bentoml": Wire(
        "/predict", "/predict_batch", _object_body, _array_body, _outcome, _array_labels
    ),
}


def check_labels(
    name: str, found: Sequence[int], expected: Sequence[int], what: str, oracle: str = "modelapi"
) -> None:
    """Raise RuntimeError unless `name` labelled every one of `what` as `oracle` did."""
    if len(found) != len(expected):
        raise RuntimeError(
            f"{name} answered {len(found)} labels for the {len(expected)} {what};"
            f" it must answer one per row, as {oracle} does"
        )
    wrong = [i for i, (a, b) in enumerate(zip(found, expected, strict=True)) if a != b]
    if wrong:
        raise RuntimeError(
            f"{name} disagrees with {oracle} on {len(wrong)} of the {len(expected)} {what}"
            f" (first at row {wrong[0]}): it must serve the same model, trained the contract's way"
        )


def write_mlserver_config(
    folder: Path, model_file: Path, http_port: int, grpc_port: int, metrics_port: int
) -> Path:
    """Write MLServer's settings.json and the model's model-settings.json; return the folder.

    One process (`parallel_workers=0`), every server on 127.0.0.1, and `debug` off so that
    MLServer logs no access line per request (modelapi and the naive app log none either).
    """
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": 0,
        "load_models_at_startup": True,
    }
    (folder / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    model = folder / MLSERVER_MODEL
    model.mkdir(exist_ok=True)
    model_settings = {
        "name": MLSERVER_MODEL,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_file.resolve()), "version": "1"},
    }
    (model / "model-settings.json").write_text(json.dumps(model_settings, indent=2) + "\n")
    return folder
