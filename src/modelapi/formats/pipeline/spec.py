"""The schema of `pipeline.json`: plain JSON numbers, strings and lists, decoded by msgspec.

`docs/PIPELINE_FORMAT.md` is the specification; these Structs are its types, and the loader
(`modelapi.formats.pipeline.validate`) checks everything the types alone cannot (indexes, sizes,
finite numbers). A value of None in a list of numbers stands for NaN, which JSON cannot write.
"""

# Annotations stay objects here (no `from __future__ import annotations`): msgspec reads the
# Structs' annotations at their first decode, and evaluating strings then costs milliseconds of
# every cold start.

from typing import Literal

import msgspec

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Affine",
    "CellKind",
    "Encoding",
    "Header",
    "Impute",
    "Linear",
    "Lookup",
    "LookupColumn",
    "Model",
    "OneHot",
    "PipelineSpec",
    "Select",
    "Standardize",
    "Step",
    "Tree",
    "Trees",
]

FORMAT_NAME = "modelapi.pipeline"
FORMAT_VERSION = 1

CellKind = Literal["number", "text"]


class _Step(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="step"
):
    """A step replaces the columns [at, at + its input width) of the vector by its output."""

    at: int


class Select(_Step, frozen=True, kw_only=True, tag="select"):
    """Take `width` columns and put `columns` (indexes into them) in their place."""

    width: int
    columns: list[int]


class Impute(_Step, frozen=True, kw_only=True, tag="impute"):
    """Fill missing cells; then one indicator column (1.0 missing, else 0.0) per `indicators`.

    `missing` is the value that counts as missing: None means NaN for numbers and null for
    text. The input width is `len(fill)`.
    """

    fill: list[float | str]
    missing: float | str | None = None
    indicators: list[int] = msgspec.field(default_factory=list)


class Standardize(_Step, frozen=True, kw_only=True, tag="standardize"):
    """`(x - subtract) / divide` per column, then clipped to `clip` if given: StandardScaler,
    RobustScaler, MaxAbsScaler."""

    subtract: list[float]
    divide: list[float]
    clip: tuple[float, float] | None = None


class Affine(_Step, frozen=True, kw_only=True, tag="affine"):
    """`x * multiply + add` per column, then clipped to `clip` if given: MinMaxScaler."""

    multiply: list[float]
    add: list[float]
    clip: tuple[float, float] | None = None


class Encoding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One column of a one-hot encoder: each known value's output position, or -1 (all zero).

    Exactly one of `text` and `numbers` lists the known values; `codes` is parallel to it.
    The outputs of the column are positions 0 .. max(code) (its width).
    """

    text: list[str] | None = None
    numbers: list[float] | None = None
    codes: list[int]
    unknown: int = -1
    missing: int = -1


class OneHot(_Step, frozen=True, kw_only=True, tag="onehot"):
    """One-hot encode each column; each column's outputs follow the previous column's."""

    columns: list[Encoding]


class LookupColumn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One column of a lookup: each known value's output numbers (all of one length)."""

    text: list[str] | None = None
    numbers: list[float] | None = None
    values: list[list[float | None]]
    unknown: list[float | None]
    missing: list[float | None]


class Lookup(_Step, frozen=True, kw_only=True, tag="lookup"):
    """Replace each column by the numbers its value maps to: OrdinalEncoder, TargetEncoder."""

    columns: list[LookupColumn]


Step = Select | Impute | Standardize | Affine | OneHot | Lookup


class _Model(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="model"
):
    pass


class Linear(_Model, frozen=True, kw_only=True, tag="linear"):
    """`z[k] = sum(x[j] * coef[k][j]) + intercept[k]`, then the output rule."""

    coef: list[list[float]]
    intercept: list[float]
    output: Literal["value", "logistic", "softmax", "ovr"]
    positive: Literal[">", ">="] = ">"


class Tree(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One decision tree as parallel node lists; node 0 is the root, children point forward.

    A leaf has feature, left and right -1. `values` holds one list per leaf, in node order,
    added to the model's outputs `output`, `output + 1`, ... A categorical node (listed in
    `category_nodes`) sends the codes `left_codes[i]` left and `right_codes[i]` right, and any
    other value the way missing values go.
    """

    feature: list[int]
    threshold: list[float]
    left: list[int]
    right: list[int]
    missing_left: list[bool]
    values: list[list[float]]
    output: int = 0
    category_nodes: list[int] = msgspec.field(default_factory=list)
    left_codes: list[list[int]] = msgspec.field(default_factory=list)
    right_codes: list[list[int]] = msgspec.field(default_factory=list)


class Trees(_Model, frozen=True, kw_only=True, tag="trees"):
    """A sum of trees: `init`, plus each tree's leaf values (times `scale`), in tree order.

    `compare`: float32 rounds the input to float32 before `x <= threshold` (scikit-learn's
    trees, forests and GradientBoosting); float64 compares it as it is (HistGradientBoosting).
    `average` divides the sums by the number of trees (forests).
    """

    compare: Literal["float32", "float64"]
    trees: list[Tree]
    init: list[float]
    output: Literal["value", "exp", "proba", "logistic", "softmax"]
    scale: float | None = None
    average: bool = False
    positive: Literal[">", ">="] = ">"


Model = Linear | Trees


class Header(msgspec.Struct, frozen=True):
    """What any version of `pipeline.json` starts with: read to name a newer version."""

    format: str = ""
    version: int = 0


class PipelineSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The contents of `pipeline.json`."""

    format: Literal["modelapi.pipeline"]
    version: int
    inputs: list[CellKind]
    steps: list[Step]
    model: Model
