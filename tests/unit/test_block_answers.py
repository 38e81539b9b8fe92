"""The numpy block path of columnar bodies answers the same bytes as the single-row path.

Random rows (many digits, signs, whole numbers, values that push probabilities to 1e-300 and
regression values past 1e16) through `Service.handle`: a `dataframe_split` body and CSV lines
without a header, with numpy and with numpy not importable, against the array-of-objects
answer and the CSV answer, for a binary classifier, a regressor and a three-class model.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelapi.answers import format_probability
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.schema import Feature
from modelapi.scoring import block_bodies
from modelapi.service import Request, Service
from modelapi.source import ModelSource
from tests.adversarial.budget import scaled
from tests.gap_model import gap_predictor, gap_rows
from tests.linear_models import linear_predictor

FEATURES = (
    Feature(column="A", key="a", type="number"),
    Feature(column="B", key="b", type="integer"),
    Feature(column="C", key="c", type="number"),
)
MODELS = {
    "binary": (
        {"kind": "logistic", "intercept": [0.25], "weights": [[3.5], [-0.75], [40.0]]},
        (0, 1),
    ),
    "regression": (
        {"kind": "regression", "intercept": [1.5], "weights": [[1e9], [-2.0], [1e-9]]},
        None,
    ),
    "three classes": (
        {
            "kind": "logistic",
            "intercept": [0.1, -0.2, 0.3],
            "weights": [[1.0, -1.0, 0.5], [0.2, 0.1, -0.3], [-2.0, 3.0, 1.0]],
        },
        ("x", "y", "z"),
    ),
}
JSON = {"content-type": "application/json"}
CSV = {"content-type": "text/csv"}


def _service(name: str) -> Service:
    spec, classes = MODELS[name]
    predictor: Predictor = linear_predictor(spec, FEATURES, classes)
    return Service(ModelSource.of(predictor), Settings(store="/nonexistent/models"))


SERVICES = {name: _service(name) for name in MODELS}


@contextmanager
def _without_numpy() -> Iterator[None]:
    saved = sys.modules.get("numpy")
    sys.modules["numpy"] = None  # type: ignore[assignment]
    block_bodies._blocks.clear()
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["numpy"] = saved
        block_bodies._blocks.clear()


decimal_text = st.builds(
    lambda whole, digits, negative: (
        ("-" if negative and (whole or digits.strip("0")) else "")
        + str(whole)
        + ("." + digits if digits else "")
    ),
    # Mostly small: decisions near 0, where numpy's exp and math.exp part ways most.
    st.integers(0, 3) | st.integers(0, 10**6),
    st.text("0123456789", max_size=9),
    st.booleans(),
)
whole_text = (st.integers(-3, 3) | st.integers(-(10**9), 10**9)).map(str)
rows = st.lists(st.tuples(decimal_text, whole_text, decimal_text), min_size=1, max_size=40)


def _answers(service: Service, lines: list[tuple[str, str, str]]) -> dict[str, bytes]:
    data = "[" + ",".join("[" + ",".join(row) + "]" for row in lines) + "]"
    split = b'{"dataframe_split":{"columns":["a","b","c"],"data":' + data.encode() + b"}}"
    objects = "[" + ",".join(f'{{"a":{a},"b":{b},"c":{c}}}' for a, b, c in lines) + "]"
    text = "".join(",".join(row) + "\n" for row in lines).encode()
    answered = {}
    for name, request in (
        ("split", Request("POST", "/predict", JSON, split)),
        ("objects", Request("POST", "/predict", JSON, objects.encode())),
        ("csv", Request("POST", "/invocations", CSV, text)),
        ("csv header", Request("POST", "/predict", CSV, b"a,b,c\n" + text)),
    ):
        response = service.handle(request)
        assert response.status == 200, response.body
        answered[name] = response.body
    return answered


@pytest.mark.parametrize("model", list(MODELS))
@settings(max_examples=scaled(60, 2000), deadline=None)
@given(lines=rows)
def test_the_block_path_answers_the_single_row_bytes(
    model: str, lines: list[tuple[str, str, str]]
) -> None:
    service = SERVICES[model]
    block_bodies._blocks.clear()
    with_numpy = _answers(service, lines)
    with _without_numpy():
        without = _answers(service, lines)
    assert with_numpy == without
    assert with_numpy["split"] == b'{"predictions":' + with_numpy["objects"] + b"}"
    assert with_numpy["csv"] == with_numpy["csv header"].partition(b"\n")[2]
    assert len(json.loads(with_numpy["split"])["predictions"]) == len(lines)


@pytest.mark.parametrize("model", list(MODELS))
def test_moderate_decisions_answer_the_single_row_bytes(model: str) -> None:
    # Decisions between -10 and 10: a few in a hundred differ if numpy's exp is used.
    rng = random.Random(7)
    lines = [
        (f"{rng.uniform(-1, 1):.6f}", str(rng.randint(-3, 3)), f"{rng.uniform(-0.1, 0.1):.5f}")
        for _ in range(500)
    ]
    block_bodies._blocks.clear()
    answered = _answers(SERVICES[model], lines)
    assert answered["split"] == b'{"predictions":' + answered["objects"] + b"}"
    assert answered["csv"] == answered["csv header"].partition(b"\n")[2]


def test_the_block_path_is_taken_for_numeric_linear_models() -> None:
    for name, service in SERVICES.items():
        predictor = service.predictor()
        block = block_bodies.block_answers(predictor)
        assert block is not None, name


@pytest.mark.parametrize("model", list(MODELS))
def test_tiny_probabilities_and_huge_values_are_written_as_repr(model: str) -> None:
    # 1e-5 and 1e16 are where msgspec's shortest text and repr() part ways.
    lines = [("-40", "7", "1.5"), ("12", "0", "-0.5"), ("10000000.5", "1", "2"), ("9", "-3", "0")]
    service = SERVICES[model]
    block_bodies._blocks.clear()
    with_numpy = _answers(service, lines)
    with _without_numpy():
        assert _answers(service, lines) == with_numpy
    cells = [cell for line in with_numpy["csv"].decode().split() for cell in line.split(",")]
    if model == "regression":
        # A value is written as repr() writes it, exponent and all.
        assert [repr(float(cell)) for cell in cells] == cells
        assert any("e" in cell for cell in cells)
    else:
        # Probabilities with 15 decimals (format_probability), however small.
        probabilities = [cell for cell in cells if cell not in ("0", "1", "x", "y", "z")]
        assert all(re.fullmatch(r"[01]\.[0-9]{15}", cell) for cell in probabilities)
        assert "0.000000000000000" in probabilities


def test_empty_cells_of_a_model_with_gaps_answer_as_nulls() -> None:
    """CSV lines with empty cells and dataframe_split rows with nulls take the block path
    for a model that answers missing values, with the bytes of the general path and of JSON
    objects with nulls."""
    predictor = gap_predictor()
    service = Service(ModelSource.of(predictor), Settings(store="/nonexistent/models"))
    lines = [line.split(",", 1)[1] for line in gap_rows(700)]  # past the block threshold
    text = ("".join(line + "\n" for line in lines)).encode()
    keys = [f.key for f in predictor.manifest.features]
    objects = [
        {k: (float(v) if v else None) for k, v in zip(keys, line.split(","), strict=True)}
        for line in lines
    ]
    import numpy

    from modelapi.scoring.block_answers import BlockAnswers

    block = BlockAnswers.of(numpy, predictor)
    assert block is not None
    assert block.values(text, 3, [0, 1, 2]) is not None  # the block path reads the gaps
    data = json.dumps([list(row.values()) for row in objects]).encode()
    assert block_bodies.number_lines(data) is not None
    split = b'{"dataframe_split":{"columns":' + json.dumps(keys).encode() + b',"data":'
    answered = {}
    for name, request in (
        ("csv", Request("POST", "/invocations", CSV, text)),
        ("objects", Request("POST", "/predict", JSON, json.dumps(objects).encode())),
        ("split", Request("POST", "/predict", JSON, split + data + b"}}")),
    ):
        block_bodies._blocks.clear()
        response = service.handle(request)
        assert response.status == 200, response.body
        answered[name] = response.body
        with _without_numpy():
            assert service.handle(request).body == response.body
    csv_rows = [row.split(",") for row in answered["csv"].decode().splitlines()]
    predictions = json.loads(answered["objects"])
    assert answered["split"] == b'{"predictions":' + answered["objects"] + b"}"
    assert len(csv_rows) == len(predictions) == len(lines)
    assert csv_rows == [
        [str(p["churned"]), *map(format_probability, p["probabilities"].values())]
        for p in predictions
    ]
