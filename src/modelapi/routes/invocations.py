"""`POST /invocations`: the SageMaker container contract, answered as `mlflow models serve` does.

A JSON body is read exactly as `/predict` reads it: one object, an array of objects, or an
MLflow body (`modelapi.bodies.mlflow`). A `text/csv` body whose first line names columns is
`/predict`'s CSV too (`has_header`); any other has no header, as SageMaker Batch Transform
sends it: each line holds the features in the
model's order, and the answer is one CSV line per line, in the same order and without a
header (`label,probability_<class>...`, or the value), the rows `/predict` answers to the
same lines under a header.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping

from modelapi.bodies.mlflow_rows import check_rows
from modelapi.errors import FieldError, InvalidInput, MalformedBody, PayloadTooLarge
from modelapi.metrics import label_counts
from modelapi.predictor import Predictor
from modelapi.schema import FeatureTable, Row
from modelapi.service import Request, Response, Service, media_type
from modelapi.values import looks_like_data

__all__ = ["has_header", "headerless_answer", "headerless_rows", "invocations"]

_CSV_TYPES = frozenset({"text/csv", "application/csv"})
_BOM = b"\xef\xbb\xbf"


def invocations(service: Service, request: Request) -> Response:
    """Predict as SageMaker and MLflow call a container: /predict's bodies, and CSV lines
    without a header."""
    if media_type(request.headers) not in _CSV_TYPES:
        return service.predict(request)
    settings = service.settings
    if len(request.body) > settings.max_body_bytes:
        raise PayloadTooLarge("body", f"must be at most {settings.max_body_bytes} bytes")
    predictor = service.predictor()
    body = request.body.removeprefix(_BOM)
    if has_header(predictor.features, body):
        return service.predict(request)
    text, counts = headerless_answer(predictor, body, settings.max_batch_rows)
    if service.metrics is not None:
        service.metrics.count_labels(counts())
    headers = {"x-model-version": predictor.model_id}
    return Response(200, text, "text/csv; charset=utf-8", headers)


def has_header(table: FeatureTable, body: bytes) -> bool:
    """Whether a CSV body's first line names columns rather than holding values.

    It does when a cell names a feature (JSON key or CSV name), and, for a model whose
    features are all numbers, when a cell is not a number (so the header errors name what is
    missing). A line that is not UTF-8, that a quote leaves open or that the csv module
    refuses (a lone carriage return inside it) is left to /predict's CSV, which names why.
    """
    first = body.split(b"\n", 1)[0].rstrip(b"\r")
    if first.count(b'"') % 2:
        return True
    try:
        cells = next(csv.reader([first.decode("utf-8")]), [])
    except (UnicodeDecodeError, csv.Error):
        return True
    if any(table.feature_named(cell) for cell in cells):
        return True
    numeric = all(f.type in ("integer", "number") for f in table.features)
    return numeric and not looks_like_data(cells)


def headerless_answer(
    predictor: Predictor, body: bytes, max_rows: int
) -> tuple[bytes, Callable[[], Mapping[str, int]]]:
    """The answer lines to CSV lines of feature values, and (for metrics) the predictions
    counted by label name."""
    try:
        from modelapi.scoring.block_bodies import lines_answer
    except ImportError:  # the Lambda package: no numpy, no block path
        pass
    else:
        fast = lines_answer(predictor, body, max_rows)
        if fast is not None:
            return fast
    predictions = predictor.predict(headerless_rows(predictor.features, body, max_rows))
    text = predictor.answers.csv(predictions).partition(b"\n")[2]
    return text, lambda: label_counts(predictions)


def headerless_rows(table: FeatureTable, body: bytes, max_rows: int) -> list[Row]:
    """Validate CSV lines of feature values in order; raise InvalidInput naming every bad cell.

    Cells are read as a CSV body's are (`FeatureTable.parse_record`: `NA` and empty cells are
    missing values); `[i]` is the i-th line that is not blank, from 0.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedBody("body", "is not UTF-8 text") from None
    try:
        records = [record for record in csv.reader(io.StringIO(text, newline="")) if record]
    except csv.Error:
        raise MalformedBody("body", "is not valid CSV") from None
    if not records:
        raise MalformedBody("body", "holds no lines; send one line of feature values per row")
    check_rows(len(records), max_rows)
    keys = table.keys
    errors: list[FieldError] = []
    rows: list[Row] = []
    for index, record in enumerate(records):
        if len(record) != len(keys):
            errors.append(
                FieldError(
                    f"[{index}]",
                    f"has {len(record)} values; a line without a header holds the"
                    f" {len(keys)} features in the model's order",
                )
            )
            continue
        rows.append(table.parse_record(dict(zip(keys, record, strict=True)), f"[{index}].", errors))
    if errors:
        raise InvalidInput.of(errors)
    return rows
