"""`linear.json`: a linear model with its one-hot encoding folded in, served in pure Python.

No numpy and no scikit-learn: this is what keeps the Lambda package under 1 MB and a single
prediction at a few microseconds. Training checks these numbers against scikit-learn's own
predictions (within 1e-12) before the bundle is written.

Layout: `intercept[k]` and, per feature in feature-table order, either a list of k weights
(a numeric feature) or a map category -> k weights (a one-hot encoded feature). k is 1 for a
regressor and a binary classifier (scikit-learn's decision function), else the class count.

The decision is generated once per model as Python statements, `z0 = b0; z0 += w0_0 * row[0];
...`, summed left to right, and compiled into `decision` (one row) and `predict` (a loop over
rows). It is the only implementation of the decision: a row of floats gives floats, and a row
of numpy columns (`modelapi predict`'s block path) gives columns, with the same operations in
the same order, so the same floats bit for bit. The generated source holds only fixed names;
every number is bound as a value, never written into the text, and the text is built from the
spec's validated shape alone (counts and indexes).
"""

# Annotations stay objects here (no `from __future__ import annotations`): msgspec reads the
# Structs' annotations at their first decode, and evaluating strings then costs milliseconds of
# every cold start.

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import msgspec

from modelapi.bundle import Label, Task
from modelapi.errors import BundleError, TrainingError
from modelapi.formats.base import Prediction
from modelapi.schema import Feature, Row

__all__ = ["FILE_NAME", "LinearModel", "LinearSpec", "expit", "export", "load"]

FILE_NAME = "linear.json"


class LinearSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The contents of `linear.json`."""

    kind: Literal["logistic", "regression"]
    intercept: list[float]
    weights: list[list[float] | dict[str, list[float]]]


def _decision_lines(spec: LinearSpec, names: dict[str, object]) -> list[str]:
    """The statements that set z0..z{k-1} from `row`, binding every number in `names`."""
    lines = []
    for out, intercept in enumerate(spec.intercept):
        names[f"b{out}"] = intercept
        lines.append(f"z{out} = b{out}")
        for index, weights in enumerate(spec.weights):
            name = f"w{index}_{out}"
            if isinstance(weights, dict):
                names[name] = {category: w[out] for category, w in weights.items()}
                # A category the encoder ignores (unknown, or missing) adds nothing, as its
                # all-zero one-hot columns add nothing in scikit-learn.
                lines.append(f"z{out} += {name}.get(row[{index}], 0.0)")
            else:
                names[name] = weights[out]
                lines.append(f"z{out} += {name} * row[{index}]")
    return lines


def _compiled(source: list[str], names: dict[str, object]) -> Callable[[Any], Any]:
    """Compile a generated function named `f` whose numbers are the values bound in `names`."""
    scope: dict[str, object] = {"__builtins__": {}, **names}
    exec("\n".join(source), scope)
    function: Callable[[Any], Any] = scope["f"]  # type: ignore[assignment]
    return function


# The logistic function, split by sign so math.exp never overflows, written once: `expit` and
# the batch column (which inlines it, a call per row being a share of a batch's time) are both
# compiled from this text, with `{z}` the expression that sets z. The condition runs first.
_EXPIT = "1.0 / (1.0 + exp(-z)) if ({z}) >= 0 else (e := exp(z)) / (1.0 + e)"
expit: Callable[[float], float] = _compiled(
    ["def f(z):", f"    return {_EXPIT.format(z='z')}"], {"exp": math.exp}
)


class LinearModel:
    """Predict with a `linear.json` spec; classes come from the manifest."""

    __slots__ = ("_classes", "_column", "_decision", "_predict", "_spec")

    def __init__(self, spec: LinearSpec, classes: Sequence[object] | None) -> None:
        n_outputs = len(spec.intercept)
        if spec.kind == "logistic":
            if not classes or len(classes) < 2:
                raise BundleError(f"{FILE_NAME}: a logistic model needs at least two classes")
            if n_outputs != (1 if len(classes) == 2 else len(classes)):
                raise BundleError(f"{FILE_NAME}: {n_outputs} intercepts for {len(classes)} classes")
        elif n_outputs != 1:
            raise BundleError(f"{FILE_NAME}: a regression model has exactly one intercept")
        for weights in spec.weights:
            rows = weights.values() if isinstance(weights, dict) else [weights]
            if any(len(w) != n_outputs for w in rows):
                raise BundleError(f"{FILE_NAME}: every weight list must have {n_outputs} entries")
        self._spec = spec
        self._classes = tuple(classes or ())
        names: dict[str, object] = {}
        decide = _decision_lines(spec, names)
        z = "z0" if n_outputs == 1 else "(" + ", ".join(f"z{o}" for o in range(n_outputs)) + ",)"
        self._decision = _compiled(
            ["def f(row):", *(f"    {line}" for line in decide), f"    return {z}"], names
        )
        # The whole of `predict` as one function: the decision inlined in a loop over the rows
        # costs a row no call for it.
        if spec.kind == "regression":
            answer = "(z0, None)"
        elif n_outputs == 1:
            names.update(expit=expit, negative=self._classes[0], positive=self._classes[1])
            answer = "(positive if z0 > 0 else negative, (1.0 - (p := expit(z0)), p))"
        else:
            names["softmax"] = self._softmax
            answer = f"softmax({z})"
        self._predict = _compiled(
            [
                "def f(rows):",
                "    answers = []",
                "    append = answers.append",
                "    for row in rows:",
                *(f"        {line}" for line in decide),
                f"        append({answer})",
                "    return answers",
            ],
            names,
        )

        self._column: Callable[[Sequence[Row]], list[float]] | None = None
        if n_outputs == 1:
            # The same sum, written as one expression over the row unpacked into locals:
            # ((b0 + w0_0 * x0) + ...), with no index looked up per value.
            decision = "b0"
            for index, line in enumerate(decide[1:]):
                term = line.removeprefix("z0 += ").replace(f"row[{index}]", f"x{index}")
                decision = f"({decision} + {term})"
            unpacked = "".join(f"x{index}, " for index in range(len(spec.weights)))
            names["exp"] = math.exp
            column = (
                f"[{decision} for ({unpacked}) in rows]"
                if spec.kind == "regression"
                else f"[{_EXPIT.format(z=f'z := {decision}')} for ({unpacked}) in rows]"
            )
            self._column = _compiled(["def f(rows):", f"    return {column}"], names)

    @classmethod
    def from_bytes(cls, data: bytes, classes: Sequence[object] | None) -> "LinearModel":
        """Parse `linear.json` bytes; raise BundleError naming the file if they do not fit."""
        try:
            spec = msgspec.json.decode(data, type=LinearSpec)
        except msgspec.DecodeError as exc:
            raise BundleError(f"{FILE_NAME}: {exc}") from None
        return cls(spec, classes)

    @property
    def spec(self) -> LinearSpec:
        """The `linear.json` contents this model predicts with."""
        return self._spec

    @property
    def classes(self) -> tuple[object, ...]:
        """The class labels in manifest order (empty for a regressor)."""
        return self._classes

    def decision(self, row: Any) -> Any:
        """The decision value(s) of one row, or of a row of numpy columns (one per feature)."""
        return self._decision(row)

    def check_features(self, features: Sequence[Feature]) -> None:
        """Raise BundleError unless the weights fit these features: count, kinds, categories.

        Checked when a bundle is loaded, so a `linear.json` of some other model is refused
        then, rather than failing every prediction.
        """
        if len(self._spec.weights) != len(features):
            raise BundleError(
                f"{FILE_NAME}: weights for {len(self._spec.weights)} features,"
                f" the manifest has {len(features)}"
            )
        for feature, weights in zip(features, self._spec.weights, strict=True):
            if feature.type != "category":
                if isinstance(weights, dict):
                    raise BundleError(f"{FILE_NAME}: {feature.key} is numeric, not a category")
            elif not isinstance(weights, dict) or not set(feature.categories or ()) <= set(weights):
                raise BundleError(
                    f"{FILE_NAME}: {feature.key} needs a weight for each of its categories"
                )

    def column(self, rows: Sequence[Row]) -> list[float] | None:
        """One number per row: a binary classifier's probability of its second class, a
        regressor's value; None for a model of more than two classes.

        The numbers `predict` gives, bit for bit; a probability of exactly 0.5 may come
        from a decision of 0 (the first class) or just above it (the second).
        """
        return None if self._column is None else self._column(rows)

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict each row: (label, probabilities) or (value, None)."""
        answers: list[Prediction] = self._predict(rows)
        return answers

    def _softmax(self, z: tuple[float, ...]) -> Prediction:
        top = max(z)
        exps = [math.exp(v - top) for v in z]
        total = math.fsum(exps)
        return self._classes[z.index(top)], tuple(e / total for e in exps)


def load(
    data: bytes, *, features: Sequence[Feature], task: Task, classes: Sequence[Label] | None
) -> LinearModel:
    """Load `linear.json` for a model's features and classes; raise BundleError if they differ."""
    model = LinearModel.from_bytes(data, classes)
    if (model.spec.kind == "regression") != (task == "regression"):
        raise BundleError(f"{FILE_NAME}: a {model.spec.kind} model cannot do {task}")
    model.check_features(features)
    return model


def export(
    estimator: object, features: Sequence[Feature], task: Task, classes: Sequence[Label] | None
) -> bytes | None:
    """`linear.json` for a linear estimator whose preprocessing folds into its weights, or None."""
    spec = linear_spec(estimator, features, task)
    return None if spec is None else msgspec.json.encode(spec)


def linear_spec(estimator: object, features: Sequence[Feature], task: Task) -> LinearSpec | None:
    """Fold a linear estimator and its preprocessing into a `linear.json` spec, if it can be."""
    import numpy as np
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge

    preprocessor, final = _linear_final(estimator)
    if task == "classification":
        if not isinstance(final, LogisticRegression):
            return None
        # One-vs-rest probabilities are normalised sigmoids, not the softmax linear.json uses.
        if getattr(final, "multi_class", "auto") == "ovr" and len(final.classes_) > 2:
            return None
    elif not isinstance(final, (LinearRegression, Ridge, Lasso, ElasticNet)):
        return None
    slots = _slots(preprocessor, features)
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))
    if slots is None or coef.shape[1] != len(slots) or coef.ndim != 2:
        return None
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64))
    n_outputs = coef.shape[0]
    if intercept.shape[0] != n_outputs:
        intercept = np.broadcast_to(intercept, (n_outputs,))
    numeric: dict[int, list[float]] = {}
    categorical: dict[int, dict[str, list[float]]] = {}
    for slot, (position, category) in enumerate(slots):
        column = [float(w) for w in coef[:, slot]]
        if category is None:
            before = numeric.get(position, [0.0] * n_outputs)
            numeric[position] = [a + b for a, b in zip(before, column, strict=True)]
        else:
            categorical.setdefault(position, {})[category] = column
    weights: list[list[float] | dict[str, list[float]]] = []
    for position, feature in enumerate(features):
        if feature.type != "category":
            weights.append(numeric.get(position, [0.0] * n_outputs))
            continue
        known = categorical.get(position, {})
        table: dict[str, list[float]] = {}
        for category in feature.categories or ():
            if category not in known and position in categorical:
                raise TrainingError(
                    f"feature {feature.column}: category {category[:40]!r} is not known to the"
                    " model's one-hot encoder; give data whose categories it was trained on"
                )
            table[category] = known.get(category, [0.0] * n_outputs)
        weights.append(table)
    kind: Literal["logistic", "regression"] = (
        "logistic" if task == "classification" else "regression"
    )
    return LinearSpec(kind=kind, intercept=[float(v) for v in intercept], weights=weights)


def _linear_final(estimator: object) -> tuple[object | None, object]:
    """Split a pipeline into (preprocessor or None, final step)."""
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline):
        return None, estimator
    steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
    if len(steps) == 1:
        return None, steps[0]
    if len(steps) == 2:
        return steps[0], steps[1]
    return None, None


def _slots(
    preprocessor: object | None, features: Sequence[Feature]
) -> list[tuple[int, str | None]] | None:
    """Map each transformed column to (feature index, category or None); None if not foldable."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    index = {f.column: i for i, f in enumerate(features)}
    if preprocessor is None:
        if any(f.type == "category" for f in features):
            return None
        return [(i, None) for i in range(len(features))]
    if not isinstance(preprocessor, ColumnTransformer):
        return None
    slots: list[tuple[int, str | None]] = []
    for _, transformer, columns in preprocessor.transformers_:
        if transformer == "drop":
            continue
        names = _column_names(columns, features)
        if names is None or any(n not in index for n in names):
            return None
        # A fitted ColumnTransformer holds "passthrough" as an identity FunctionTransformer.
        if transformer == "passthrough" or (
            isinstance(transformer, FunctionTransformer) and transformer.func is None
        ):
            if any(features[index[n]].type == "category" for n in names):
                return None
            slots.extend((index[n], None) for n in names)
        elif isinstance(transformer, OneHotEncoder):
            if transformer.drop_idx_ is not None or transformer.min_frequency is not None:
                return None
            if transformer.max_categories is not None:
                return None
            # A missing value seen at fit is a category of its own: pipeline.json serves that.
            if any(not isinstance(c, str) for cats in transformer.categories_ for c in cats):
                return None
            for name, categories in zip(names, transformer.categories_, strict=True):
                if features[index[name]].type != "category":
                    return None
                slots.extend((index[name], str(c)) for c in categories)
        else:
            return None
    return slots


def _column_names(columns: object, features: Sequence[Feature]) -> list[str] | None:
    import numpy as np

    if isinstance(columns, str):
        return [columns]
    try:
        items = list(columns)  # type: ignore[call-overload]
    except TypeError:
        return None
    names: list[str] = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= int(item) < len(features):
                return None
            names.append(features[int(item)].column)
        else:
            return None
    return names
