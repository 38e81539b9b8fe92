"""The JSON schemas of a model's wire bodies: one row of features, one answer, a CSV body.

Request schemas are as strict as the validation core and no stricter, so a schema-driven
fuzzer that follows them only sends what the service accepts. Training ranges are hints in the
descriptions, never constraints: a value outside them is still predicted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from modelapi.bundle import Manifest
from modelapi.schema import Feature

__all__ = [
    "answer_schema",
    "csv_example",
    "csv_pattern",
    "example_row",
    "feature_schema",
    "range_hint",
    "request_schema",
]

# The body the built-in Pima model's users have always sent; shown as the example whenever a
# model has exactly these inputs. Other models get an example from their training ranges.
_PIMA_EXAMPLE: dict[str, object] = {
    "pregnancies": 2,
    "glucose": 148,
    "blood_pressure": 72,
    "skin_thickness": 35,
    "insulin": 0,
    "bmi": 33.6,
    "diabetes_pedigree_function": 0.674,
    "age": 22,
}
# Numeric strings the validation core reads as numbers (the original service cast with
# int()/float()). The patterns describe a plain, ASCII, bounded subset of what it accepts, so
# every string a generator draws from them is accepted and can never overflow to infinity.
_INTEGER_TEXT = r"^[+-]?[0-9]{1,15}$"
_NUMBER_TEXT = r"^[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,15})?|\.[0-9]{1,15})(?:[eE][+-]?[0-9]{1,2})?$"


def example_row(features: Sequence[Feature]) -> dict[str, object]:
    """An example request body: the Pima example for its model, else mid-range values."""
    if {f.key for f in features} == set(_PIMA_EXAMPLE):
        return {f.key: _PIMA_EXAMPLE[f.key] for f in features}
    return {f.key: _example_value(f) for f in features}


def _example_value(feature: Feature) -> object:
    if feature.type == "category":
        return (feature.categories or ("",))[0]
    if feature.min is None or feature.max is None:
        return 0
    middle = (feature.min + feature.max) / 2
    return round(middle) if feature.type == "integer" else round(middle, 3)


def range_hint(feature: Feature) -> str:
    """The training range as words, e.g. `0 to 199`, or '' when unknown."""
    if feature.min is None or feature.max is None:
        return ""
    return f"{_number(feature.min)} to {_number(feature.max)}"


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def feature_schema(feature: Feature) -> dict[str, object]:
    """The JSON schema of one feature's value; its training range is a hint, not a limit."""
    words = [f"CSV column `{feature.column}`."]
    if feature.type == "category":
        words.append("One of the training categories.")
        return {
            "type": "string",
            "enum": list(feature.categories or ()),
            "description": " ".join(words),
        }
    hint = range_hint(feature)
    if hint:
        words.append(f"Training range {hint} (a hint: other values are predicted too).")
    words.append('A numeric string such as "148" is read as its number.')
    integer = feature.type == "integer"
    return {
        "anyOf": [
            {"type": "integer" if integer else "number"},
            {"type": "string", "pattern": _INTEGER_TEXT if integer else _NUMBER_TEXT},
        ],
        "description": " ".join(words),
    }


def request_schema(features: Sequence[Feature]) -> dict[str, object]:
    """The JSON schema of one row: every feature required, nothing else allowed."""
    return {
        "type": "object",
        "title": "Features",
        "description": "One row to predict. The CSV column names are accepted in place of the"
        " JSON names; a number may also be sent as a numeric string.",
        "properties": {f.key: feature_schema(f) for f in features},
        "required": [f.key for f in features],
        "additionalProperties": False,
        "examples": [example_row(features)],
    }


def answer_schema(manifest: Manifest) -> dict[str, object]:
    """The JSON schema of one answer: the label (and class probabilities) or the value."""
    key = manifest.target.key
    if manifest.classes is None:
        # JSON has no infinity: a prediction past the range of a double is refused (422).
        value = {"type": "number", "description": "The predicted value."}
        return {
            "type": "object",
            "title": "Answer",
            "properties": {key: value},
            "required": [key],
            "additionalProperties": False,
        }
    names = [str(c) for c in manifest.classes]
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    return {
        "type": "object",
        "title": "Answer",
        "properties": {
            key: {"enum": list(manifest.classes), "description": "The predicted class."},
            "probabilities": {
                "type": "object",
                "description": "The probability of each class.",
                "properties": dict.fromkeys(names, probability),
                "required": names,
                "additionalProperties": False,
            },
        },
        "required": [key, "probabilities"],
        "additionalProperties": False,
    }


def csv_example(features: Sequence[Feature]) -> str:
    """An example CSV body: the JSON names as header, then the example row."""
    example = example_row(features)
    header = ",".join(f.key for f in features) + "\n"
    return header + ",".join(str(example[f.key]) for f in features) + "\n"


def csv_pattern(features: Sequence[Feature], max_rows: int) -> str:
    """A CSV body with the JSON names as header and plain values, as a regular expression."""
    cells = []
    for feature in features:
        if feature.type == "category":
            quoted = ('"' + c.replace('"', '""') + '"' for c in feature.categories or ())
            cells.append("(?:" + "|".join(re.escape(q) for q in quoted) + ")")
        elif feature.type == "integer":
            cells.append("-?[0-9]{1,15}")
        else:
            cells.append(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")
    header = re.escape(",".join(f.key for f in features))
    return f"^{header}\\n(?:{','.join(cells)}\\n){{0,{max_rows}}}$"
