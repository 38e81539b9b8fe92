"""What a client sends for a prediction, and what it makes of the answers: no I/O here.

A prediction is a plan, a generator that yields the requests to send, `(path, body,
content type)`, is sent each answer's bytes, and returns the result. `Client` and
`AsyncClient` only run plans, so both split and join the same way:

- one row (a mapping) is one JSON request, answered with one object;
- many rows (a list of mappings) go as JSON arrays of at most `batch_rows` rows and come back
  as one list in order;
- a pandas DataFrame goes as CSV (empty cells for missing values) and comes back as a DataFrame
  of the answer columns with the input's index;
- a CSV body goes in pieces of whole lines under its header, and comes back as one CSV answer.

A piece the server refuses as too large (413) is halved and sent again, and the smaller size is
kept for the rest; a refused row's field (`[3].glucose`) is named by its place in the whole
input (`[1003].glucose`). Progress goes to `progress(rows_done, rows_total)` when given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import msgspec

from modelapi.errors import FieldError, InvalidInput, PayloadTooLarge, ServerError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_BATCH_ROWS", "Plan", "Progress", "Request", "csv_plan", "predict_plan"]

# Rows per request: well under the server's default limits (10,000 rows, 1 MiB).
DEFAULT_BATCH_ROWS = 1000
JSON = "application/json"
CSV = "text/csv; charset=utf-8"
Request = tuple[str, bytes, str]
Plan = Generator[Request, bytes, object]
Progress = Callable[[int, int], None]
_ROW_FIELD = re.compile(r"\[(\d+)\](.*)", re.S)
Item = TypeVar("Item")


def _encode_hook(value: object) -> object:
    # numpy scalars (from DataFrame.to_dict or arrays) encode as their Python values.
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise NotImplementedError(f"cannot send a {type(value).__name__} as JSON")


_encode = msgspec.json.Encoder(enc_hook=_encode_hook).encode
_decode = msgspec.json.Decoder().decode


def is_frame(value: object) -> bool:
    """Whether a value is a pandas DataFrame (without importing pandas)."""
    return type(value).__module__.startswith("pandas") and hasattr(value, "to_csv")


def predict_plan(
    features: object, *, batch_rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None
) -> Plan:
    """The plan for `Client.predict`: a mapping, a list of mappings, or a DataFrame."""
    if is_frame(features):
        return _frame_plan(features, batch_rows, progress)
    if isinstance(features, Mapping):
        return _one_plan(dict(features))
    if isinstance(features, Sequence) and not isinstance(features, str | bytes):
        rows = [dict(row) if isinstance(row, Mapping) else row for row in features]
        if not all(isinstance(row, dict) for row in rows):
            raise TypeError(
                "predict() takes a dict of features, a list of such dicts or a DataFrame"
            )
        return _rows_plan(rows, batch_rows, progress)
    raise TypeError("predict() takes a dict of features, a list of such dicts or a DataFrame")


def csv_plan(
    body: bytes, *, batch_rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None
) -> Plan:
    """The plan for `Client.predict_csv`: a CSV body (header line + rows) in pieces of lines."""
    header, _, rest = body.partition(b"\n")
    lines = rest.splitlines(keepends=True)
    # Quoted cells may hold newlines; a body without rows is the server's to judge.
    if b'"' in rest or not lines:
        answer = yield ("/predict", body, CSV)
        return answer
    return (yield from _csv_pieces(header + b"\n", lines, batch_rows, progress))


def _one_plan(row: dict[str, object]) -> Plan:
    answer = _decode((yield ("/predict", _encode(row), JSON)))
    if not isinstance(answer, dict):
        raise ServerError("/predict answered an unexpected shape", 200)
    return answer


def _rows_plan(rows: list[dict[str, object]], batch_rows: int, progress: Progress | None) -> Plan:
    sent = yield from _send_pieces(rows, batch_rows, progress, _encode, JSON)
    answers: list[object] = []
    for _, part, data in sent:
        answer = _decode(data)
        if not isinstance(answer, list) or len(answer) != len(part):
            raise ServerError(
                f"/predict answered an unexpected shape, not {len(part)} answers", 200
            )
        answers.extend(answer)
    return answers


def _frame_plan(frame: pd.DataFrame, batch_rows: int, progress: Progress | None) -> Plan:
    import io

    import pandas as pd

    def body_of(part: list[int]) -> bytes:
        text: str = frame.iloc[part].to_csv(index=False)
        return text.encode()

    sent = yield from _send_pieces(list(range(len(frame))), batch_rows, progress, body_of, CSV)
    pieces = []
    for start, part, data in sent:
        answered = pd.read_csv(io.BytesIO(data))
        if len(answered) != len(part):
            raise ServerError(
                f"/predict answered an unexpected shape, not {len(part)} answers", 200
            )
        answered.index = frame.index[start : start + len(part)]
        pieces.append(answered)
    return pd.concat(pieces) if pieces else pd.DataFrame()


def _csv_pieces(
    header: bytes, lines: list[bytes], batch_rows: int, progress: Progress | None
) -> Plan:
    def body_of(part: list[bytes]) -> bytes:
        return header + b"".join(part)

    sent = yield from _send_pieces(lines, batch_rows, progress, body_of, CSV)
    answers: list[bytes] = []
    for _, _, data in sent:
        first, _, rows = data.partition(b"\n")
        if not answers:
            answers.append(first + b"\n")
        answers.append(rows)
    return b"".join(answers)


def _send_pieces(
    items: list[Item],
    batch_rows: int,
    progress: Progress | None,
    body_of: Callable[[list[Item]], bytes],
    content_type: str,
) -> Generator[Request, bytes, list[tuple[int, list[Item], bytes]]]:
    """Send the items in pieces; (start, items, answer) for each piece, in order.

    A PayloadTooLarge thrown in at the `yield` (the server's 413) halves the piece, which is
    sent again; one item that is too large is re-raised.
    """
    size = max(1, batch_rows)
    start = 0
    sent: list[tuple[int, list[Item], bytes]] = []
    while start < len(items):
        part = items[start : start + size]
        try:
            answer = yield ("/predict", body_of(part), content_type)
        except PayloadTooLarge:
            if len(part) == 1:
                raise
            size = max(1, len(part) // 2)
            continue
        except InvalidInput as exc:
            raise _shifted(exc, start) from None
        sent.append((start, part, answer))
        start += len(part)
        if progress is not None:
            progress(start, len(items))
    return sent


def _shifted(exc: InvalidInput, offset: int) -> InvalidInput:
    """The same error with `[i]` fields counted from the start of the whole input."""
    details = []
    for detail in exc.details:
        found = _ROW_FIELD.fullmatch(detail.field)
        field = detail.field
        if found is not None:
            field = f"[{int(found.group(1)) + offset}]{found.group(2)}"
        details.append(FieldError(field, detail.reason))
    return type(exc).of(details)
