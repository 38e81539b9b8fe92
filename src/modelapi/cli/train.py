"""`modelapi train` and `modelapi import`: make a bundle and store it as a new version.

Results (the data summary, metrics, the stored `name:version`) go to stdout; progress and
warnings go to stderr. Training code is imported inside the commands so that `modelapi
serve` never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelapi.cli.options import store_option

if TYPE_CHECKING:
    from modelapi.training.workflow import TrainResult

__all__ = ["commands", "import_command", "train_command"]

# The names of modelapi.training.workflow.ESTIMATORS, kept here so that --help imports no
# training code.
_MODELS = (
    "logistic_regression",
    "random_forest",
    "extra_trees",
    "decision_tree",
    "gradient_boosting",
    "hist_gradient_boosting",
    "linear_regression",
    "ridge",
    "lasso",
    "elastic_net",
)

_store_option = store_option("Store: a folder, file://PATH or s3://bucket/prefix.")


def _params(
    context: click.Context, parameter: click.Parameter, values: tuple[str, ...]
) -> dict[str, object]:
    """`KEY=VALUE` pairs: each value a JSON scalar (50, 0.1, true, null) or else text."""
    import json

    params: dict[str, object] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item[:40]!r} is not KEY=VALUE, e.g. n_estimators=50")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        if isinstance(value, (list, dict)):
            value = text
        params[key.strip()] = value
    return params


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _print_result(result: TrainResult, store: str) -> None:
    from modelapi.bundle import REPORT_FILE
    from modelapi.cli.models import artifact_location
    from modelapi.store import open_store
    from modelapi.training.preprocessing import describe_pipeline

    click.echo(f"pipeline: {describe_pipeline(result.estimator)}")
    metrics = result.metrics
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse", "r2"):
        value = metrics.get(key)
        if value is not None:
            # repr keeps every digit: 0.7835497835497836, as the notebook prints it.
            click.echo(f"{key}: {value!r}")
    matrix = metrics.get("confusion_matrix")
    labels = metrics.get("labels")
    if isinstance(matrix, list) and isinstance(labels, list):
        click.echo("confusion matrix (rows: true, columns: predicted):")
        width = max(len(str(v)) for v in [*labels, *(n for row in matrix for n in row)])
        click.echo(" " * (width + 2) + " ".join(f"{k!s:>{width}}" for k in labels))
        for label, row in zip(labels, matrix, strict=True):
            click.echo(f"{label!s:>{width}}  " + " ".join(f"{n:>{width}}" for n in row))
    check = metrics.get("format_check")
    if isinstance(check, dict):
        click.echo(f"serving: {check.get('artifact')} ({_checked_rows(check)})")
    click.echo(f"stored: {result.model_id} in {store}")
    manifest = result.manifest
    if manifest.version and REPORT_FILE in manifest.artifacts:
        where = artifact_location(open_store(store), manifest.name, manifest.version, REPORT_FILE)
        click.echo(f"report: {where}")


def _checked_rows(check: dict[str, object]) -> str:
    """What the exported model was checked on: the held-out rows, then the generated ones."""
    said = f"matches scikit-learn on {check.get('rows')} held-out rows"
    generated = check.get("generated_rows")
    if isinstance(generated, dict) and generated:
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in generated.items())
        said += f" and {sum(generated.values()):,} generated rows ({kinds})"
    return f"{said}, largest difference {check.get('max_difference'):.3g}"


@click.command("train")
@click.argument("data")
@click.option("--target", help="Target column (CSV name or JSON key). Default: the last column.")
@click.option(
    "--model",
    type=click.Choice(_MODELS),
    help="Estimator. Default: logistic_regression (classification),"
    " linear_regression (regression).",
)
@click.option(
    "--task",
    type=click.Choice(["auto", "classification", "regression"]),
    default="auto",
    show_default=True,
    help="auto: text or few whole-number values is classification, otherwise regression.",
)
@click.option("--test-size", type=float, default=0.3, show_default=True)
@click.option("--random-state", type=int, default=1, show_default=True)
@click.option("--name", help="Model name in the store. Default: the data file name.")
@click.option(
    "--drop-missing",
    is_flag=True,
    help="Drop rows with a missing feature value instead of imputing them.",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="COLUMN",
    help="Do not use COLUMN (CSV name or JSON key) as a feature. Repeatable.",
)
@click.option(
    "--feature",
    "feature_types",
    multiple=True,
    metavar="COLUMN:TYPE",
    help="Use COLUMN as a feature of TYPE: integer, number, category, boolean or datetime,"
    " instead of the inferred role (identifiers, constants and free text are dropped by"
    " default). Repeatable.",
)
@click.option(
    "--columns",
    metavar="A,B,C",
    help="The column names, in order, of a CSV without a header line.",
)
@click.option(
    "--scale",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Standardize the numeric columns of linear models. auto: when the data has missing"
    " values, or when the fit on the raw values does not converge.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_params,
    help="A hyper-parameter of the estimator (repeatable): n_estimators=200, max_depth=null."
    " VALUE is read as JSON (numbers, true, false, null), else as text.",
)
@_store_option
def train_command(
    data: str,
    target: str | None,
    model: str | None,
    task: str,
    test_size: float,
    random_state: int,
    name: str | None,
    drop_missing: bool,
    ignore: tuple[str, ...],
    feature_types: tuple[str, ...],
    columns: str | None,
    scale: str,
    params: dict[str, object],
    store: str,
) -> None:
    """Train a model on DATA (a CSV path or http(s) URL) and store it as a new version.

    Each column's role is inferred and printed: integer, number, boolean, category or
    datetime features, or identifier, constant and free-text columns, which are dropped.
    """
    from modelapi.store import open_store
    from modelapi.training.data import load_dataset
    from modelapi.training.roles import parse_feature_option

    open_store(store)  # a bad store URI fails before any training is done
    dataset = load_dataset(
        data,
        target=target,
        task=None if task == "auto" else task,  # type: ignore[arg-type]
        drop_missing=drop_missing,
        ignore=ignore,
        feature_types=dict(parse_feature_option(option) for option in feature_types),
        columns=[c.strip() for c in columns.split(",")] if columns else None,
    )
    click.echo(dataset.summary.format())
    from modelapi.training.workflow import train

    result = train(
        dataset,
        model=model,
        test_size=test_size,
        random_state=random_state,
        name=name,
        params=params or None,
        progress=_progress,
        scale=scale,  # type: ignore[arg-type]
    )
    stored = result.store(store)
    _print_result(stored, store)


@click.command("import")
@click.argument("pickle_file", metavar="PKL", type=click.Path(path_type=Path))
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Allow unpickling PKL. Unpickling runs any code the file contains.",
)
@click.option("--data", help="The training data (CSV path or URL): feature table and metrics.")
@click.option("--target", help="Target column in --data (default: the last column).")
@click.option("--name", help="Model name in the store. Default: the file name.")
@click.option("--test-size", type=float, default=0.3, show_default=True)
@click.option("--random-state", type=int, default=1, show_default=True)
@click.option("--drop-missing", is_flag=True, help="Drop rows of --data with missing values.")
@_store_option
def import_command(
    pickle_file: Path,
    trust_pickle: bool,
    data: str | None,
    target: str | None,
    name: str | None,
    test_size: float,
    random_state: int,
    drop_missing: bool,
    store: str,
) -> None:
    """Convert a pickled scikit-learn model (PKL) into a safe bundle and store it.

    Without --data, the estimator must have been fitted on a DataFrame (feature_names_in_).
    """
    from modelapi.store import open_store
    from modelapi.training.pickle_import import PICKLE_WARNING, import_pickle

    open_store(store)
    if trust_pickle:
        click.echo(f"warning: {PICKLE_WARNING}", err=True)
    result = import_pickle(
        pickle_file,
        trust_pickle=trust_pickle,
        data=data,
        target=target,
        name=name,
        test_size=test_size,
        random_state=random_state,
        drop_missing=drop_missing,
        progress=_progress,
    )
    if result.summary is not None:
        click.echo(result.summary.format())
    _print_result(result.store(store), store)


commands: list[click.Command] = [train_command, import_command]
