"""A row's Prediction from its model outputs: the output rules of `pipeline.json`.

`value` is the first output; `exp` its exponential; `proba` the outputs as probabilities with
the first largest as the label; `logistic` the sigmoid of one output, positive when it is
above (or, for GradientBoosting, at least) zero; `softmax` and `ovr` (scikit-learn's
one-vs-rest normalisation) probabilities with the label of the first largest output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

__all__ = ["answer_function", "exp_or_inf", "expit", "helper_for"]

Answer = tuple[object, tuple[float, ...] | None]


def answer_function(
    rule: str, positive: str, classes: Sequence[object]
) -> Callable[[tuple[float, ...]], tuple[object, tuple[float, ...] | None]]:
    """The Prediction of a row from its model outputs: what the generated code computes."""
    labels = tuple(classes)
    if rule == "value":
        return lambda z: (z[0], None)
    if rule == "exp":
        return lambda z: (exp_or_inf(z[0]), None)
    if rule == "logistic":
        at_zero = positive == ">="

        def logistic(z: tuple[float, ...]) -> tuple[object, tuple[float, ...]]:
            p = expit(z[0])
            is_positive = z[0] >= 0.0 if at_zero else z[0] > 0.0
            return labels[1 if is_positive else 0], (1.0 - p, p)

        return logistic
    return helper_for(rule, labels)


def helper_for(
    rule: str, classes: tuple[object, ...]
) -> Callable[[tuple[float, ...]], tuple[object, tuple[float, ...]]]:
    """The function answering a `proba`, `softmax` or `ovr` row from its outputs."""
    helper = {"proba": _highest, "softmax": _softmax, "ovr": _one_vs_rest}[rule]
    return _bound(helper, classes)


def expit(z: float) -> float:
    """The logistic function as scipy.special.expit computes it: 1 / (1 + exp(-z))."""
    # The same formula, so the same float (scikit-learn's probabilities come from scipy);
    # where exp(-z) overflows, scipy's answer is 1 / inf, 0.0.
    try:
        return 1.0 / (1.0 + math.exp(-z))
    except OverflowError:
        return 0.0


def exp_or_inf(z: float) -> float:
    """exp(z), or infinity where it overflows (math.exp raises there)."""
    try:
        return math.exp(z)
    except OverflowError:
        return math.inf


def _bound(
    helper: Callable[[tuple[object, ...], tuple[float, ...]], tuple[object, tuple[float, ...]]],
    classes: tuple[object, ...],
) -> Callable[[tuple[float, ...]], tuple[object, tuple[float, ...]]]:
    def answer(values: tuple[float, ...]) -> tuple[object, tuple[float, ...]]:
        return helper(classes, values)

    return answer


def _highest(classes: tuple[object, ...], p: tuple[float, ...]) -> tuple[object, tuple[float, ...]]:
    # max() and index() both take the first of equal values, as numpy's argmax does.
    return classes[p.index(max(p))], p


def _softmax(classes: tuple[object, ...], z: tuple[float, ...]) -> tuple[object, tuple[float, ...]]:
    top = max(z)
    exps = [math.exp(v - top) for v in z]
    # Summed in order, as scikit-learn's softmax does for a row.
    total = 0.0
    for e in exps:
        total += e
    return classes[z.index(top)], tuple(e / total for e in exps)


def _one_vs_rest(
    classes: tuple[object, ...], z: tuple[float, ...]
) -> tuple[object, tuple[float, ...]]:
    # scikit-learn's OvR normalisation: each class's sigmoid over their sum, uniform if all 0.
    p = [expit(v) for v in z]
    total = sum(p)
    if total == 0.0:
        return classes[z.index(max(z))], tuple(1.0 / len(p) for _ in p)
    return classes[z.index(max(z))], tuple(v / total for v in p)
