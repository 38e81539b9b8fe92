"""Fitted scikit-learn transformers as `pipeline.json` steps (training side: imports sklearn).

A `Builder` follows the vector of columns from the estimator's input to its final estimator,
appending one step per transformer. Encoders are read by asking the fitted encoder itself:
each known value, an unseen one and a missing one are transformed once, and the outputs are
the tables, so infrequent categories, dropped columns and unknown-value rules are whatever
scikit-learn does. Anything outside the covered steps raises `Unsupported`, and the exporter
then gives None (the next format is tried).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelapi.formats.pipeline.spec import (
    Affine,
    CellKind,
    Encoding,
    Impute,
    Lookup,
    LookupColumn,
    OneHot,
    Select,
    Standardize,
    Step,
)
from modelapi.schema import Feature

__all__ = ["Builder", "Unsupported"]

# A value no encoder was fitted on: scikit-learn's answer for it is its unknown-value rule.
_UNSEEN_TEXT = "\x00modelapi unseen category"


class Unsupported(Exception):
    """The estimator holds something `pipeline.json` cannot express."""


def _is_nan(value: object) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def _finite(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Unsupported("a number that is not one") from None
    if not math.isfinite(number):
        raise Unsupported("a non-finite number")
    return number


class Builder:
    """The steps so far and the kind of each column of the vector they produce."""

    def __init__(self, features: Sequence[Feature]) -> None:
        self.features = tuple(features)
        self.inputs: list[CellKind] = [
            "text" if f.type == "category" else "number" for f in self.features
        ]
        self.kinds: list[CellKind] = list(self.inputs)
        self.steps: list[Step] = []

    def add(self, step: Step, out_kinds: list[CellKind], width: int) -> int:
        """Append a step reading `width` columns from its `at`; return its output width."""
        self.steps.append(step)
        self.kinds[step.at : step.at + width] = out_kinds
        return len(out_kinds)

    def select(self, at: int, width: int, columns: Sequence[int]) -> int:
        """Append a Select unless it keeps the columns as they are."""
        columns = [int(c) for c in columns]
        if columns == list(range(width)):
            return width
        group = self.kinds[at : at + width]
        return self.add(
            Select(at=at, width=width, columns=columns), [group[c] for c in columns], width
        )

    def inputs_of(self, estimator: object) -> None:
        """Order the inputs as the estimator was fitted: by its feature names, if it has them."""
        names = getattr(estimator, "feature_names_in_", None)
        if names is None:
            return
        index = {f.column: i for i, f in enumerate(self.features)}
        if any(str(n) not in index for n in names):
            raise Unsupported("the estimator was fitted on columns the features do not name")
        self.select(0, len(self.kinds), [index[str(n)] for n in names])

    def transformer(self, transformer: object, at: int, width: int) -> int:
        """Append the steps of a fitted transformer on columns [at, at + width)."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import (
            MaxAbsScaler,
            MinMaxScaler,
            OneHotEncoder,
            OrdinalEncoder,
            RobustScaler,
            StandardScaler,
            TargetEncoder,
        )

        if transformer is None or _is_identity(transformer):
            return width
        if isinstance(transformer, Pipeline):
            for _, step in transformer.steps:
                width = self.transformer(step, at, width)
            return width
        if isinstance(transformer, ColumnTransformer):
            return self.column_transformer(transformer, at, width)
        if getattr(transformer, "n_features_in_", width) != width:
            raise Unsupported("a transformer fitted on another number of columns")
        if isinstance(transformer, SimpleImputer):
            return self._imputer(transformer, at, width)
        if isinstance(transformer, (StandardScaler, RobustScaler, MaxAbsScaler, MinMaxScaler)):
            return self._scaler(transformer, at, width)
        if isinstance(transformer, (OneHotEncoder, OrdinalEncoder, TargetEncoder)):
            return self._encoder(transformer, at, width)
        raise Unsupported(type(transformer).__name__)

    def column_transformer(self, transformer: Any, at: int, width: int) -> int:
        """Select each branch's columns side by side, then append each branch's steps."""
        indices: dict[str, list[int]] = getattr(transformer, "_transformer_to_input_indices", {})
        branches: list[tuple[object, list[int]]] = []
        for name, branch, _ in transformer.transformers_:
            columns = [int(i) for i in indices.get(name, [])]
            if (isinstance(branch, str) and branch == "drop") or not columns:
                continue
            if any(not 0 <= c < width for c in columns):
                raise Unsupported("a column transformer reading columns it was not given")
            branches.append((branch, columns))
        total = self.select(at, width, [c for _, columns in branches for c in columns])
        offset = at
        for branch, columns in branches:
            offset += self.transformer(branch, offset, len(columns))
        out = offset - at
        expected = max((s.stop for s in transformer.output_indices_.values()), default=0)
        if out != expected or total != sum(len(c) for _, c in branches):
            raise Unsupported("the column transformer's output width is not the one expected")
        return out

    def _imputer(self, imputer: Any, at: int, width: int) -> int:
        kinds = self.kinds[at : at + width]
        marker = imputer.missing_values
        missing: float | str | None
        if _is_nan(marker):
            missing = None
        elif isinstance(marker, str):
            missing = marker
        elif isinstance(marker, int | float | np.number) and not isinstance(marker, bool):
            missing = _finite(marker)
        else:
            raise Unsupported("an imputer's missing value marker")
        fills: list[float | str] = []
        kept: list[int] = []
        for index, (kind, statistic) in enumerate(zip(kinds, imputer.statistics_, strict=True)):
            empty = _is_nan(statistic) and not imputer.keep_empty_features
            if not empty:
                kept.append(index)
            if kind == "text":
                if not isinstance(statistic, str) and not empty:
                    raise Unsupported("a text column filled with a number")
                fills.append(statistic if isinstance(statistic, str) else "")
            else:
                fills.append(0.0 if empty else _finite(statistic))
        indicators: list[int] = []
        if imputer.add_indicator:
            if (
                imputer.indicator_.features != "missing-only"
                and imputer.indicator_.features != "all"
            ):
                raise Unsupported("a missing indicator")
            indicators = [int(i) for i in imputer.indicator_.features_]
        step = Impute(at=at, fill=fills, missing=missing, indicators=indicators)
        out = self.add(step, kinds + ["number"] * len(indicators), width)
        if len(kept) == width:
            return out
        # Columns with no value at fit are dropped from the output, their indicators kept.
        return self.select(at, out, kept + list(range(width, out)))

    def _scaler(self, scaler: Any, at: int, width: int) -> int:
        from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler

        if "text" in self.kinds[at : at + width]:
            raise Unsupported("a scaler given text")
        ones = [1.0] * width
        zeros = [0.0] * width
        if isinstance(scaler, MinMaxScaler):
            low, high = (_finite(v) for v in scaler.feature_range)
            step: Step = Affine(
                at=at,
                multiply=[_finite(v) for v in scaler.scale_],
                add=[_finite(v) for v in scaler.min_],
                clip=(low, high) if scaler.clip else None,
            )
        else:
            if isinstance(scaler, RobustScaler):
                center = scaler.center_ if scaler.with_centering else zeros
                scale = scaler.scale_ if scaler.with_scaling else ones
                clip = None
            elif isinstance(scaler, MaxAbsScaler):
                center, scale = zeros, scaler.scale_
                clip = (-1.0, 1.0) if getattr(scaler, "clip", False) else None
            else:
                center = scaler.mean_ if scaler.with_mean else zeros
                scale = scaler.scale_ if scaler.with_std and scaler.scale_ is not None else ones
                clip = None
            # x - 0.0 and x / 1.0 are x exactly, so the disabled halves are the identity.
            step = Standardize(
                at=at,
                subtract=[_finite(v) for v in center],
                divide=[_finite(v) for v in scale],
                clip=clip,
            )
        return self.add(step, ["number"] * width, width)

    def _encoder(self, encoder: Any, at: int, width: int) -> int:
        from sklearn.preprocessing import OneHotEncoder

        kinds = self.kinds[at : at + width]
        categories = [list(c) for c in encoder.categories_]
        known = self._probe(encoder, kinds, categories, [c for c in categories])
        widths = _block_widths(encoder, known.shape[1], width)
        unseen = [[_unseen(kind, c)] for kind, c in zip(kinds, categories, strict=True)]
        unknown = self._try_probe(encoder, kinds, categories, unseen)
        missing = self._try_probe(encoder, kinds, categories, [[None] for _ in kinds])
        encodings: list[Encoding] = []
        lookups: list[LookupColumn] = []
        offset = 0
        for j, (kind, values) in enumerate(zip(kinds, categories, strict=True)):
            block = slice(offset, offset + widths[j])
            offset += widths[j]
            keys = [v for v in values if not _is_nan(v)]
            rows = [known[r, block] for r, v in enumerate(values) if not _is_nan(v)]
            nan_rows = [known[r, block] for r, v in enumerate(values) if _is_nan(v)]
            missing_row = nan_rows[0] if nan_rows else _row(missing, block)
            unknown_row = _row(unknown, block)
            text, numbers = _key_lists(kind, keys)
            if isinstance(encoder, OneHotEncoder):
                encodings.append(
                    Encoding(
                        text=text,
                        numbers=numbers,
                        codes=[_position(r) for r in rows],
                        unknown=-1 if unknown_row is None else _position(unknown_row),
                        missing=-1 if missing_row is None else _position(missing_row),
                    )
                )
            else:
                nans = [math.nan] * widths[j]
                lookups.append(
                    LookupColumn(
                        text=text,
                        numbers=numbers,
                        values=[_numbers(r) for r in rows],
                        unknown=_numbers(nans if unknown_row is None else unknown_row),
                        missing=_numbers(nans if missing_row is None else missing_row),
                    )
                )
        step: Step = (
            OneHot(at=at, columns=encodings)
            if isinstance(encoder, OneHotEncoder)
            else Lookup(at=at, columns=lookups)
        )
        return self.add(step, ["number"] * sum(widths), width)

    def _probe(
        self,
        encoder: Any,
        kinds: list[CellKind],
        categories: list[list[object]],
        values: list[list[object]],
    ) -> Any:
        """Transform rows where column j takes values[j] in turn (then its first category)."""
        n_rows = max(len(v) for v in values)
        columns = []
        for kind, column, fallback in zip(kinds, values, categories, strict=True):
            cells = [column[r] if r < len(column) else fallback[0] for r in range(n_rows)]
            if kind == "number":
                columns.append(np.asarray([np.nan if _is_nan(c) else c for c in cells], float))
            else:
                columns.append(np.asarray([None if _is_nan(c) else c for c in cells], object))
        names = getattr(encoder, "feature_names_in_", None)
        if names is not None:
            import pandas as pd

            probe: object = pd.DataFrame(dict(zip(names, columns, strict=True)))
        elif all(kind == "number" for kind in kinds):
            probe = np.column_stack(columns)
        else:
            probe = np.column_stack([c.astype(object) for c in columns])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = encoder.transform(probe)
        if hasattr(out, "toarray"):
            out = out.toarray()
        return np.asarray(out, dtype=np.float64)

    def _try_probe(
        self,
        encoder: Any,
        kinds: list[CellKind],
        categories: list[list[object]],
        values: list[list[object]],
    ) -> Any | None:
        """The probe's output, or None where scikit-learn refuses the values."""
        try:
            return self._probe(encoder, kinds, categories, values)
        except (ValueError, TypeError):
            return None


def _is_identity(transformer: object) -> bool:
    """ "passthrough", or a FunctionTransformer that returns its input (or only checks it)."""
    from functools import partial

    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils.validation import check_array

    if isinstance(transformer, str):
        if transformer == "passthrough":
            return True
        raise Unsupported(f"transformer {transformer!r}")
    if not isinstance(transformer, FunctionTransformer):
        return False
    func = transformer.func
    # HistGradientBoosting's own preprocessor checks its numeric columns with check_array.
    checks = isinstance(func, partial) and func.func is check_array
    return func is None or checks


def _block_widths(encoder: Any, total: int, width: int) -> list[int]:
    widths = getattr(encoder, "_n_features_outs", None)
    if widths is None:
        if total % width:
            raise Unsupported("an encoder whose output widths cannot be told apart")
        widths = [total // width] * width
    widths = [int(w) for w in widths]
    if sum(widths) != total or len(widths) != width:
        raise Unsupported("an encoder whose output widths are not the ones expected")
    return widths


def _unseen(kind: CellKind, categories: list[object]) -> object:
    if kind == "text":
        return _UNSEEN_TEXT
    finite = [float(c) for c in categories if not _is_nan(c)]  # type: ignore[arg-type]
    return (max(finite) if finite else 0.0) + 1.5


def _row(out: Any | None, block: slice) -> Any | None:
    return None if out is None else out[0, block]


def _key_lists(kind: CellKind, keys: list[object]) -> tuple[list[str] | None, list[float] | None]:
    if kind == "text":
        if not all(isinstance(k, str) for k in keys):
            raise Unsupported("text categories that are not all strings")
        return [str(k) for k in keys], None
    if any(isinstance(k, str | bool | np.bool_) for k in keys):
        raise Unsupported("number categories that are not all numbers")
    return None, [_finite(k) for k in keys]


def _position(row: Any) -> int:
    """The position of the single 1.0 in a one-hot row, or -1 for a row of zeros."""
    ones = np.flatnonzero(row)
    if ones.size == 0:
        return -1
    if ones.size != 1 or row[ones[0]] != 1.0:
        raise Unsupported("a one-hot encoder output that is not one-hot")
    return int(ones[0])


def _numbers(row: Any) -> list[float | None]:
    values: list[float | None] = []
    for value in row:
        number = float(value)
        if math.isnan(number):
            values.append(None)
        elif math.isinf(number):
            raise Unsupported("an encoder giving an infinite value")
        else:
            values.append(number)
    return values
