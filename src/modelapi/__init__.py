"""modelapi: a scikit-learn model from a CSV to a production prediction API.

The names here are the slim runtime plus thin entry points for notebooks; training code is
imported only when `train` or `save` is called, and the HTTP client (`Client`, `AsyncClient`)
when it is first named: every `import modelapi.x` runs this module, and a server or a
Lambda function serving a model never calls one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Literal

from modelapi._version import __version__
from modelapi.errors import (
    BundleError,
    BundleNotFound,
    ConfigError,
    DataError,
    FieldError,
    InvalidInput,
    MalformedBody,
    MethodNotAllowed,
    MissingExtra,
    ModelapiError,
    ModelUnavailable,
    NotFound,
    PackagingError,
    PayloadTooLarge,
    ServerError,
    ServerUnreachable,
    StoreError,
    TrainingError,
    Unauthorized,
    UnsupportedMediaType,
)

if TYPE_CHECKING:
    import pandas as pd

    from modelapi.client import AsyncClient, Client
    from modelapi.training.workflow import TrainResult


__all__ = [
    "AsyncClient",
    "BundleError",
    "BundleNotFound",
    "Client",
    "ConfigError",
    "DataError",
    "FieldError",
    "InvalidInput",
    "MalformedBody",
    "MethodNotAllowed",
    "MissingExtra",
    "ModelUnavailable",
    "ModelapiError",
    "NotFound",
    "PackagingError",
    "PayloadTooLarge",
    "ServerError",
    "ServerUnreachable",
    "StoreError",
    "TrainingError",
    "Unauthorized",
    "UnsupportedMediaType",
    "__version__",
    "save",
    "train",
]


_CLIENT_NAMES = frozenset({"AsyncClient", "Client"})


def __getattr__(name: str) -> object:
    # Called only for names not defined here (PEP 562): the client's, on first use.
    if name in _CLIENT_NAMES:
        from modelapi import client

        found: object = getattr(client, name)
        globals()[name] = found
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # What `dir(modelapi)` and tab completion show: the public names, not the imports.
    return sorted(__all__)


def train(
    data: str | PathLike[str] | pd.DataFrame,
    *,
    target: str | None = None,
    model: str | None = None,
    task: Literal["classification", "regression"] | None = None,
    test_size: float = 0.3,
    random_state: int = 1,
    name: str | None = None,
    drop_missing: bool = False,
    params: Mapping[str, object] | None = None,
    store: str | None = "./models",
    ignore: Sequence[str] = (),
    feature_types: Mapping[str, str] | None = None,
    columns: Sequence[str] | None = None,
    scale: Literal["auto", "always", "never"] = "auto",
) -> TrainResult:
    """Train on a DataFrame or a CSV path/URL as `modelapi train` does; store it unless store=None.

    Raises DataError for unusable data and TrainingError when an export disagrees with
    scikit-learn. `params` are passed to the estimator (e.g. {"n_estimators": 50}).
    `ignore`, `feature_types` ({"zip": "category"}), `columns` (names for a CSV without a
    header) and `scale` are `--ignore`, `--feature`, `--columns` and `--scale`.
    """
    from modelapi.training.data import load_dataset
    from modelapi.training.roles import parse_feature_option
    from modelapi.training.workflow import train as train_dataset

    dataset = load_dataset(
        data,
        target=target,
        task=task,
        drop_missing=drop_missing,
        ignore=ignore,
        feature_types=dict(
            parse_feature_option(f"{column}:{kind}")
            for column, kind in (feature_types or {}).items()
        ),
        columns=columns,
    )
    result = train_dataset(
        dataset,
        model=model,
        test_size=test_size,
        random_state=random_state,
        name=name,
        params=params,
        scale=scale,
    )
    return result if store is None else result.store(store)


def save(
    estimator: object,
    X_sample: pd.DataFrame,
    *,
    name: str,
    store: str | None = "./models",
    y_sample: pd.Series | Sequence[object] | None = None,
    target: str | None = None,
) -> TrainResult:
    """Store a fitted scikit-learn estimator as a new version of `name`, in the safe formats.

    The feature table (names, types, ranges, categories) comes from `X_sample`; every exported
    format is checked against the estimator on those rows. With `y_sample` the bundle gets
    metrics on them. `store=None` returns the bundle without storing it.
    """
    from modelapi.training.pickle_import import save_estimator

    result = save_estimator(estimator, X_sample, name=name, y_sample=y_sample, target=target)
    return result if store is None else result.store(store)
