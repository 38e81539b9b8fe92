"""Predictor: a verified bundle turned into something that answers, built once per load."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import isfinite
from typing import NoReturn

from modelapi.answers import AnswerEncoder, AnswerTexts
from modelapi.bundle import Bundle, Manifest
from modelapi.errors import BundleError, FieldError, InvalidInput
from modelapi.formats import Model, Prediction, format_of
from modelapi.schema import FeatureTable, Row

__all__ = ["OUT_OF_RANGE", "Predictor"]

OUT_OF_RANGE = (
    "prediction is out of range (not a finite number); "
    "send feature values nearer those the model was trained on"
)


def _build_model(bundle: Bundle) -> Model:
    manifest = bundle.manifest
    served = format_of(manifest.serving)
    data = bundle.files.get(served.file_name)
    if data is None:
        raise BundleError(f"{served.file_name}: the serving artifact was not read")
    return served.load(
        data, features=manifest.features, task=manifest.task, classes=manifest.classes
    )


class Predictor:
    """A loaded model with its feature table; safe to share between requests and threads."""

    __slots__ = (
        "_classifier",
        "_column",
        "_names",
        "_texts",
        "answers",
        "features",
        "manifest",
        "model",
        "model_id",
    )

    def __init__(self, bundle: Bundle, *, warm: bool = True) -> None:
        """`warm`: make the model ready for single rows now (a server's first request must
        not wait for it), not when the first comes; whole-file scoring may never need it."""
        self.manifest: Manifest = bundle.manifest
        self.features = FeatureTable(bundle.manifest.features)
        self.model: Model = _build_model(bundle)
        if warm and (ready := getattr(self.model, "warm", None)) is not None:
            ready()
        self.answers = AnswerEncoder(bundle.manifest)
        self.model_id = bundle.manifest.model_id
        self._classifier = bundle.manifest.classes is not None
        self._names = [str(c) for c in bundle.manifest.classes or ()]
        # A model that gives a whole batch's numbers as one column (linear.json's binary
        # classifiers and regressors) answers batches from it, without an object per row.
        column: Callable[[Sequence[Row]], list[float] | None] | None = getattr(
            self.model, "column", None
        )
        self._texts = AnswerTexts.of(self.manifest, self.answers) if column else None
        self._column = column if self._texts is not None else None

    def answer_many(self, rows: Sequence[Row]) -> tuple[bytes, dict[str, int]] | None:
        """The JSON array of answers to validated rows (the bytes of `answers.many` of
        `predict`), and the predictions counted by label name; None where `predict` must
        answer: a model without a column, a number that is not finite, a probability of
        exactly 0.5 (its label is the decision's to tell).
        """
        texts, numbers = self._texts, self._column(rows) if self._column else None
        if texts is None or numbers is None or not isfinite(sum(numbers)):
            return None
        if not self._classifier:
            return texts.values(numbers), {"value": len(numbers)} if numbers else {}
        if 0.5 in numbers:
            return None
        labels = [p > 0.5 for p in numbers]
        n_positive = labels.count(True)
        counts = zip(self._names, (len(labels) - n_positive, n_positive), strict=True)
        body = texts.binary(labels, [1.0 - p for p in numbers], numbers)
        return body, {name: n for name, n in counts if n}

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict rows already validated by `self.features`.

        Raises InvalidInput naming each row (`body` for a single one) whose prediction is not a
        finite number: features far enough outside the training data can overflow a double,
        and JSON would carry that as null, an answer that looks like one but is not.
        """
        predictions = self.model.predict(rows)
        # A plain loop that stops at the first bad answer: the rows are named only then.
        if self._classifier:
            for _, probabilities in predictions:
                if not isfinite(sum(probabilities)):  # type: ignore[arg-type]
                    self._refuse(predictions)
        else:
            for value, _ in predictions:
                if type(value) is float and not isfinite(value):
                    self._refuse(predictions)
        return predictions

    def _refuse(self, predictions: list[Prediction]) -> NoReturn:
        bad = [i for i, (v, p) in enumerate(predictions) if not _is_finite(v, p)]
        where = ["body"] if len(predictions) == 1 else [f"[{index}]" for index in bad]
        raise InvalidInput.of([FieldError(field, OUT_OF_RANGE) for field in where])


def _is_finite(value: object, probabilities: tuple[float, ...] | None) -> bool:
    if probabilities is not None:
        return isfinite(sum(probabilities))
    return type(value) is not float or isfinite(value)
