"""Fitted scikit-learn estimators as `pipeline.json` (training side: imports sklearn).

`pipeline_spec` follows a Pipeline (or a bare estimator) through `sklearn_steps.Builder` to
its final estimator, and reads that estimator's numbers exactly as scikit-learn predicts with
them: coefficients, tree nodes in depth-first order, leaf values, the starting values of
boosting and its learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelapi.bundle import Label, Task
from modelapi.formats.pipeline.sklearn_steps import Builder, Unsupported
from modelapi.formats.pipeline.spec import (
    FORMAT_VERSION,
    Linear,
    Model,
    PipelineSpec,
    Tree,
    Trees,
)
from modelapi.schema import Feature

__all__ = ["pipeline_spec"]

_LARGEST = float(np.finfo(np.float64).max)


def pipeline_spec(
    estimator: object, features: Sequence[Feature], task: Task, classes: Sequence[Label] | None
) -> PipelineSpec | None:
    """The spec of a fitted estimator or pipeline, or None if a part of it is not covered."""
    from sklearn.pipeline import Pipeline

    builder = Builder(features)
    try:
        builder.inputs_of(estimator)
        final = estimator
        if isinstance(estimator, Pipeline):
            steps = [step for _, step in estimator.steps]
            for step in steps[:-1]:
                builder.transformer(step, 0, len(builder.kinds))
            final = steps[-1]
        model = _model(final, builder, task)
    except Unsupported:
        return None
    if "text" in builder.kinds:
        return None
    return PipelineSpec(
        format="modelapi.pipeline",
        version=FORMAT_VERSION,
        inputs=builder.inputs,
        steps=builder.steps,
        model=model,
    )


def _model(final: Any, builder: Builder, task: Task) -> Model:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    classifier = task == "classification"
    if classifier and not hasattr(final, "classes_"):
        raise Unsupported("a classifier without classes")
    if isinstance(final, (DecisionTreeClassifier, DecisionTreeRegressor)):
        return _forest([final], classifier, average=False)
    if isinstance(
        final,
        (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor),
    ):
        return _forest(list(final.estimators_), classifier, average=True)
    if isinstance(final, (GradientBoostingClassifier, GradientBoostingRegressor)):
        return _gradient_boosting(final, len(builder.kinds), classifier)
    if isinstance(final, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
        return _hist_gradient_boosting(final, builder, classifier)
    return _linear(final, len(builder.kinds), classifier)


def _linear(final: Any, width: int, classifier: bool) -> Linear:
    from sklearn.linear_model import (
        ElasticNet,
        Lasso,
        LinearRegression,
        LogisticRegression,
        Ridge,
        SGDClassifier,
        SGDRegressor,
    )

    if classifier:
        if isinstance(final, SGDClassifier):
            if final.loss != "log_loss":
                raise Unsupported("an SGDClassifier without log_loss has no probabilities")
            multiclass = "ovr"
        elif isinstance(final, LogisticRegression):
            multiclass = "ovr" if getattr(final, "multi_class", "auto") == "ovr" else "softmax"
        else:
            raise Unsupported(type(final).__name__)
        n_classes = len(final.classes_)
        output = "logistic" if n_classes == 2 else multiclass
    elif isinstance(final, (LinearRegression, Ridge, Lasso, ElasticNet, SGDRegressor)):
        output = "value"
    else:
        raise Unsupported(type(final).__name__)
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64))
    if coef.ndim != 2 or coef.shape[1] != width or intercept.shape != (coef.shape[0],):
        raise Unsupported("coefficients of another shape than the columns")
    return Linear(
        coef=[[_finite(w) for w in row] for row in coef],
        intercept=[_finite(b) for b in intercept],
        output=output,  # type: ignore[arg-type]
    )


def _finite(value: object) -> float:
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise Unsupported("a non-finite number")
    return number


def _forest(trees: list[Any], classifier: bool, *, average: bool) -> Trees:
    converted = []
    for tree in trees:
        if tree.n_outputs_ != 1:
            raise Unsupported("a tree with several outputs")
        t = tree.tree_
        n_values = t.value.shape[2] if classifier else 1
        # A classifier's tree holds class fractions (predict_proba reads them as they are).
        values = t.value[:, 0, :n_values]
        missing = getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=bool))
        converted.append(
            _tree(t.feature, t.threshold, t.children_left, t.children_right, missing, values)
        )
    n_outputs = len(converted[0].values[0])
    return Trees(
        compare="float32",
        trees=converted,
        init=[0.0] * n_outputs,
        average=average,
        output="proba" if classifier else "value",
    )


def _tree(
    feature: Any,
    threshold: Any,
    left: Any,
    right: Any,
    missing_left: Any,
    values: Any,
    categorical: dict[int, tuple[list[int], list[int]]] | None = None,
    output: int = 0,
) -> Tree:
    """A tree in depth-first order (children after parents, left subtree first)."""
    order: list[int] = []
    stack = [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if left[node] != -1:
            stack.append(int(right[node]))
            stack.append(int(left[node]))
    new = {old: index for index, old in enumerate(order)}
    leaf = [left[old] == -1 for old in order]
    categorical = categorical or {}
    category_nodes = [new[old] for old in order if old in categorical]
    return Tree(
        feature=[
            -1 if is_leaf else int(feature[old]) for old, is_leaf in zip(order, leaf, strict=True)
        ],
        threshold=[
            0.0 if is_leaf or old in categorical else _threshold(threshold[old])
            for old, is_leaf in zip(order, leaf, strict=True)
        ],
        left=[
            -1 if is_leaf else new[int(left[old])] for old, is_leaf in zip(order, leaf, strict=True)
        ],
        right=[
            -1 if is_leaf else new[int(right[old])]
            for old, is_leaf in zip(order, leaf, strict=True)
        ],
        missing_left=[
            bool(missing_left[old]) and not is_leaf
            for old, is_leaf in zip(order, leaf, strict=True)
        ],
        values=[
            [_finite(v) for v in np.atleast_1d(values[old])]
            for old, is_leaf in zip(order, leaf, strict=True)
            if is_leaf
        ],
        output=output,
        category_nodes=category_nodes,
        left_codes=[categorical[old][0] for old in order if old in categorical],
        right_codes=[categorical[old][1] for old in order if old in categorical],
    )


def _threshold(value: object) -> float:
    number = float(value)  # type: ignore[arg-type]
    # A split that sends every number left (and only missing values right) has threshold
    # +inf; the largest float sends every finite number left too.
    if number == math.inf:
        return _LARGEST
    return _finite(number)


def _gradient_boosting(final: Any, width: int, classifier: bool) -> Trees:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    init = final.init_
    if isinstance(init, str) and init == "zero":
        start = [0.0] * final.estimators_.shape[1]
    elif isinstance(init, (DummyClassifier, DummyRegressor)):
        # The init estimator predicts a constant: its raw prediction for any row.
        row = np.zeros((1, width), dtype=np.float32)
        start = [_finite(v) for v in final._raw_predict_init(row)[0]]
    else:
        raise Unsupported("a GradientBoosting init estimator")
    trees = []
    for stage in final.estimators_:
        for k, regressor in enumerate(stage):
            t = regressor.tree_
            # predict_stages compares with `<=` alone, so a missing value always goes right.
            never = np.zeros(t.node_count, dtype=bool)
            trees.append(
                _tree(
                    t.feature,
                    t.threshold,
                    t.children_left,
                    t.children_right,
                    never,
                    t.value[:, 0, :1],
                    output=k,
                )
            )
    n_classes = len(final.classes_) if classifier else 0
    output = "value" if not classifier else "logistic" if n_classes == 2 else "softmax"
    return Trees(
        compare="float32",
        trees=trees,
        init=start,
        scale=_finite(final.learning_rate),
        output=output,  # type: ignore[arg-type]
        positive=">=",
    )


def _hist_gradient_boosting(final: Any, builder: Builder, classifier: bool) -> Trees:
    from sklearn.compose import ColumnTransformer

    preprocessor = getattr(final, "_preprocessor", None)
    if preprocessor is not None:
        if not isinstance(preprocessor, ColumnTransformer):
            raise Unsupported("a HistGradientBoosting preprocessor")
        builder.column_transformer(preprocessor, 0, len(builder.kinds))
    known, feature_map = final._bin_mapper.make_known_categories_bitsets()
    trees = []
    for iteration in final._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            categorical: dict[int, tuple[list[int], list[int]]] = {}
            for index, node in enumerate(nodes):
                if node["is_leaf"] or not node["is_categorical"]:
                    continue
                left = _bits(predictor.raw_left_cat_bitsets[node["bitset_idx"]])
                seen = _bits(known[feature_map[node["feature_idx"]]])
                categorical[index] = (left, [c for c in seen if c not in set(left)])
            leaf = nodes["is_leaf"].astype(bool)
            children_left = np.where(leaf, -1, nodes["left"].astype(np.int64))
            children_right = np.where(leaf, -1, nodes["right"].astype(np.int64))
            trees.append(
                _tree(
                    nodes["feature_idx"],
                    nodes["num_threshold"],
                    children_left,
                    children_right,
                    nodes["missing_go_to_left"].astype(bool),
                    nodes["value"],
                    categorical,
                    output=k,
                )
            )
    # raw_predict starts from zeros and adds the baseline: 0.0 + b, as it does.
    start = [_finite(0.0 + float(v)) for v in np.ravel(final._baseline_prediction)]
    link = type(final._loss.link).__name__
    if classifier:
        output = "logistic" if len(final.classes_) == 2 else "softmax"
    elif link == "IdentityLink":
        output = "value"
    elif link == "LogLink":
        output = "exp"
    else:
        raise Unsupported(f"a HistGradientBoosting link {link}")
    return Trees(compare="float64", trees=trees, init=start, output=output)  # type: ignore[arg-type]


def _bits(words: Any) -> list[int]:
    """The codes set in a bitset of 32-bit words (code c is bit c % 32 of word c // 32)."""
    return [
        32 * w + b
        for w, word in enumerate(np.asarray(words).tolist())
        for b in range(32)
        if word >> b & 1
    ]
