"""The JSON schemas of a model's wire bodies: one row of features, one answer, a CSV body.

Request schemas are as strict as the validation core and no stricter, so a schema-driven
fuzzer that follows them only sends what the service accepts, with one exception: a category
with more than `MAX_LISTED_CATEGORIES` training categories is documented as text, because
listing them would publish training data. Training ranges are hints in the descriptions,
never constraints: a value outside them is still predicted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from modelapi.bundle import Manifest
from modelapi.schema import Feature, listed_categories
from modelapi.values import date_text

__all__ = [
    "answer_schema",
    "category_hint",
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
# The boolean texts, in any case (JSON Schema patterns have no case-insensitive flag).
_BOOLEAN_TEXT = "^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|1|0)$"
_DATE_WORDS = (
    "An ISO 8601 date or date-time (2024-05-31, 2024-05-31T14:30, 2024-05-31 14:30:00+02:00,"
    " ...Z); a date alone is midnight UTC, a time without a zone is UTC."
)


def example_row(features: Sequence[Feature]) -> dict[str, object]:
    """An example request body: the Pima example for its model, else mid-range values.

    A category whose training categories are too many to publish is shown as other text
    where the model answers it, as null where it answers missing values, and else left out
    (the caller knows their own values; the example must not show one).
    """
    if {f.key for f in features} == set(_PIMA_EXAMPLE):
        return {f.key: _PIMA_EXAMPLE[f.key] for f in features}
    example: dict[str, object] = {}
    for feature in features:
        if feature.type == "category" and listed_categories(feature) is None:
            if feature.accepts_unknown:
                example[feature.key] = "other"
            elif feature.accepts_missing:
                example[feature.key] = None
            continue
        example[feature.key] = _example_value(feature)
    return example


def _example_value(feature: Feature) -> object:
    if feature.type == "category":
        return (feature.categories or ("",))[0]
    if feature.type == "boolean":
        return True
    if feature.min is None or feature.max is None:
        return "2024-05-31" if feature.type == "datetime" else 0
    middle = (feature.min + feature.max) / 2
    if feature.type == "datetime":
        return date_text(float(round(middle)))
    return round(middle) if feature.type == "integer" else round(middle, 3)


def range_hint(feature: Feature) -> str:
    """The training range as words, e.g. `0 to 199` (dates as dates), or '' when unknown."""
    if feature.min is None or feature.max is None:
        return ""
    if feature.type == "datetime":
        return f"{date_text(feature.min)} to {date_text(feature.max)}"
    return f"{_number(feature.min)} to {_number(feature.max)}"


def category_hint(feature: Feature) -> str:
    """The categories a caller may see: all of a few, or how many; and if others are taken."""
    listed = listed_categories(feature)
    count = len(feature.categories or ())
    words = (
        f"One of the training categories: {', '.join(listed)}."
        if listed is not None
        else f"One of {count} training categories (too many to list)."
    )
    if feature.accepts_unknown:
        words += " Another text is answered too, as none of them."
    return words


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def feature_schema(feature: Feature) -> dict[str, object]:
    """The JSON schema of one feature's value; its training range is a hint, not a limit.

    A category lists its training categories only when there are few of them (they are
    training data); a feature whose model answers missing values is nullable.
    """
    words = [f"CSV column `{feature.column}`."]
    options: list[dict[str, object]]
    if feature.type == "category":
        words.append(category_hint(feature))
        listed = listed_categories(feature)
        option: dict[str, object] = {"type": "string"}
        if listed is not None and not feature.accepts_unknown:
            option["enum"] = list(listed)
        options = [option]
    elif feature.type == "boolean":
        words.append("true or false; also 1 or 0, and the texts true, false, yes, no, 1, 0.")
        options = [
            {"type": "boolean"},
            {"enum": [0, 1]},
            {"type": "string", "pattern": _BOOLEAN_TEXT},
        ]
    elif feature.type == "datetime":
        words.append(_DATE_WORDS)
        options = [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
    else:
        integer = feature.type == "integer"
        words.append('A numeric string such as "148" is read as its number.')
        options = [
            {"type": "integer" if integer else "number"},
            {"type": "string", "pattern": _INTEGER_TEXT if integer else _NUMBER_TEXT},
        ]
    hint = range_hint(feature)
    if hint:
        words.append(f"Training range {hint} (a hint: other values are predicted too).")
    if feature.accepts_missing:
        words.append("null (or leaving it out) is a missing value, which the model answers.")
        options.append({"type": "null"})
    schema: dict[str, object] = dict(options[0]) if len(options) == 1 else {"anyOf": options}
    schema["description"] = " ".join(words)
    return schema


def request_schema(features: Sequence[Feature], *, forbid_extra: bool = False) -> dict[str, object]:
    """The JSON schema of one row: the features (required unless nullable), and extra
    fields ignored, or refused with `forbid_extra`."""
    extra = (
        " Other fields are refused."
        if forbid_extra
        else " Other fields are ignored, and named in the X-Ignored-Fields header."
    )
    return {
        "type": "object",
        "title": "Features",
        "description": "One row to predict. The CSV column names are accepted in place of the"
        " JSON names; a number may also be sent as a numeric string." + extra,
        "properties": {f.key: feature_schema(f) for f in features},
        "required": [f.key for f in features if not f.accepts_missing],
        "additionalProperties": not forbid_extra,
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
    cells = [_csv_cell(example.get(f.key, "")) for f in features]
    return header + ",".join(cells) + "\n"


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_pattern(features: Sequence[Feature], max_rows: int) -> str:
    """A CSV body with the JSON names as header and plain values, as a regular expression.

    Categories are listed only when few; a longer list (or one open to other text) is any
    quoted text. An empty cell is allowed where the model answers missing values.
    """
    cells = []
    for feature in features:
        listed = listed_categories(feature)
        if feature.type == "category" and listed is not None and not feature.accepts_unknown:
            quoted = ('"' + c.replace('"', '""') + '"' for c in listed)
            cell = "(?:" + "|".join(re.escape(q) for q in quoted) + ")"
        elif feature.type == "category":
            cell = '"[A-Za-z0-9 _.-]{1,40}"'
        elif feature.type == "boolean":
            cell = "(?:true|false)"
        elif feature.type == "datetime":
            cell = "20[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
        elif feature.type == "integer":
            cell = "-?[0-9]{1,15}"
        else:
            cell = r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?"
        cells.append(f"(?:{cell})?" if feature.accepts_missing else cell)
    header = re.escape(",".join(f.key for f in features))
    return f"^{header}\\n(?:{','.join(cells)}\\n){{0,{max_rows}}}$"
