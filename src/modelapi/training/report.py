"""`report.html`: one self-contained page per trained version (inline CSS, plots as inline PNG).

Nothing is fetched when the page is opened: no scripts, fonts or images from the network, so
it can be read offline or attached to a ticket. Plots are drawn with matplotlib's Agg canvas
directly (no pyplot), so a notebook's backend and figures are left alone.

The page shows the data (each column's role, what was dropped and why), the pipeline, what
the model weighs (`weights`), the metrics and the plots. It holds counts, statistics and
feature names, never a training value: it is served at `/model/report`.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from modelapi.schema import Feature
from modelapi.training.preprocessing import describe_pipeline
from modelapi.training.summary import DataSummary
from modelapi.training.weights import Weights, model_weights

__all__ = ["ReportInput", "render_report"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:960px;padding:0 1rem;color:#1d232a}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .6rem}
th{background:#f3f5f7;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#59636e}.plots{display:flex;flex-wrap:wrap;gap:1rem}img{max-width:100%}
"""


@dataclass(frozen=True)
class ReportInput:
    """What the report shows: the model, its data summary, metrics and test-split answers."""

    title: str
    estimator: str
    task: str
    summary: DataSummary | None
    metrics: Mapping[str, object]
    classes: Sequence[object] | None
    y_true: Sequence[object]
    y_pred: Sequence[object]
    scores: Sequence[Sequence[float]] | None = None
    created_at: str = ""
    notes: Sequence[str] = ()
    fitted: object | None = None
    features: Sequence[Feature] = ()


def render_report(report: ReportInput) -> bytes:
    """Render the report page as UTF-8 HTML bytes."""
    esc = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{esc(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1>",
        f"<p class=muted>{esc(report.estimator)}, {esc(report.task)}"
        f"{', created ' + esc(report.created_at) if report.created_at else ''}</p>",
    ]
    parts.extend(f"<p class=muted>{esc(note)}</p>" for note in report.notes)
    if report.summary is not None:
        parts.append(_summary_html(report.summary))
    if report.fitted is not None:
        parts.append(f"<h2>Pipeline</h2><p>{esc(describe_pipeline(report.fitted))}</p>")
        weights = model_weights(report.fitted, report.features)
        if weights is not None:
            parts.append(_weights_html(weights))
    parts.append("<h2>Metrics (test split)</h2>" + _metrics_html(report.metrics))
    plots = _plots(report)
    if plots:
        parts.append("<h2>Plots</h2><div class=plots>")
        parts.extend(
            f'<img alt="{esc(alt)}" src="data:image/png;base64,{png}">' for alt, png in plots
        )
        parts.append("</div>")
    parts.append("</body></html>\n")
    return "".join(parts).encode()


def _summary_html(summary: DataSummary) -> str:
    esc = html.escape
    rows = []
    for c in summary.columns:
        head = f"<th>{esc(c.column)}</th><td>{esc(c.role)}</td>"
        counts = f"<td class=n>{c.count}</td><td class=n>{c.n_missing}</td>"
        if c.note or c.n_categories is not None or c.role == "datetime":
            cells = f"<td colspan=3>{esc(c.values_text())}</td>"
        else:
            cells = "".join(
                f"<td class=n>{'' if v is None else f'{v:.6g}'}</td>"
                for v in (c.mean, c.min, c.max)
            )
        rows.append(f"<tr>{head}{counts}{cells}</tr>")
    dropped_rows = []
    if summary.n_no_target:
        dropped_rows.append(f"{summary.n_no_target} rows without a target value dropped")
    if summary.n_dropped:
        dropped_rows.append(f"{summary.n_dropped} rows with missing values dropped")
    text = (
        f"<h2>Data</h2><p>{esc(summary.source)}: {summary.n_rows} rows,"
        f" target <b>{esc(summary.target)}</b> ({esc(summary.task)})"
        f"{''.join(', ' + d for d in dropped_rows)}</p>"
        "<table><tr><th>column</th><th>role</th><th>count</th><th>missing</th><th>mean</th>"
        "<th>min</th><th>max</th></tr>" + "".join(rows) + "</table>"
    )
    if summary.dropped:
        text += "<p>Not used as features:</p><ul>" + "".join(
            f"<li><b>{esc(r.column)}</b>: {esc(r.role)}, {esc(r.reason)}</li>"
            for r in summary.dropped
        )
        text += "</ul><p class=muted>Keep a column with --feature COLUMN:TYPE.</p>"
    if summary.class_balance is not None:
        total = sum(n for _, n in summary.class_balance) or 1
        text += (
            "<p>Class balance</p><table><tr><th>class</th><th>rows</th><th>share</th></tr>"
            + "".join(
                f"<tr><th>{esc(str(k))}</th><td class=n>{n}</td>"
                f"<td class=n>{100 * n / total:.1f}%</td></tr>"
                for k, n in summary.class_balance
            )
        )
        text += "</table>"
    return text


def _weights_html(weights: Weights) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><th>{esc(name)}</th><td class=n>{value:.6g}</td></tr>"
        for name, value in weights.values
    )
    return (
        f"<h2>{esc(weights.title)}</h2><p class=muted>{esc(weights.note)}</p>"
        f"<table><tr><th>feature</th><th>{esc(weights.kind)}</th></tr>{rows}</table>"
    )


def _metrics_html(metrics: Mapping[str, object]) -> str:
    esc = html.escape
    rows = []
    for key, value in metrics.items():
        if key == "confusion_matrix" or isinstance(value, dict):
            continue
        shown = repr(value) if isinstance(value, float) else str(value)
        rows.append(f"<tr><th>{esc(key)}</th><td class=n>{esc(shown)}</td></tr>")
    text = "<table>" + "".join(rows) + "</table>"
    matrix = metrics.get("confusion_matrix")
    labels = metrics.get("labels")
    if isinstance(matrix, list) and isinstance(labels, list):
        head = "".join(f"<th>{esc(str(k))}</th>" for k in labels)
        body = "".join(
            f"<tr><th>{esc(str(k))}</th>" + "".join(f"<td class=n>{n}</td>" for n in row) + "</tr>"
            for k, row in zip(labels, matrix, strict=True)
        )
        text += (
            "<p>Confusion matrix (rows: true class, columns: predicted)</p>"
            f"<table><tr><th></th>{head}</tr>{body}</table>"
        )
    return text


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(report: ReportInput) -> list[tuple[str, str]]:
    plots: list[tuple[str, str]] = []
    if report.task == "regression":
        truth = np.asarray(report.y_true, dtype=float)
        predicted = np.asarray(report.y_pred, dtype=float)
        figure = Figure(figsize=(5, 4), dpi=80)
        ax = figure.add_subplot()
        ax.scatter(predicted, truth - predicted, s=10, alpha=0.6)
        ax.axhline(0.0, color="#888", linewidth=1)
        ax.set(xlabel="predicted", ylabel="residual (true - predicted)", title="Residuals")
        figure.tight_layout()
        plots.append(("residual plot", _png(figure)))
        return plots
    labels = list(report.classes or ())
    matrix = report.metrics.get("confusion_matrix")
    if isinstance(matrix, list) and labels:
        figure = Figure(figsize=(5, 4), dpi=80)
        ax = figure.add_subplot()
        values = np.asarray(matrix, dtype=float)
        ax.imshow(values, cmap="Blues")
        for (i, j), n in np.ndenumerate(values):
            color = "white" if n > values.max() / 2 else "black"
            ax.text(j, i, str(int(n)), ha="center", va="center", color=color)
        ticks = range(len(labels))
        ax.set_xticks(list(ticks), [str(k) for k in labels])
        ax.set_yticks(list(ticks), [str(k) for k in labels])
        ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
        figure.tight_layout()
        plots.append(("confusion matrix", _png(figure)))
    if report.scores is not None and labels:
        plots.append(("ROC curve", _png(_roc_figure(report, labels))))
    return plots


def _roc_figure(report: ReportInput, labels: list[object]) -> Figure:
    from sklearn.metrics import auc, roc_curve

    scores = np.asarray(report.scores, dtype=float)
    truth = [str(v) for v in report.y_true]
    figure = Figure(figsize=(5, 4), dpi=80)
    ax = figure.add_subplot()
    # Binary: the positive class only; multiclass: one curve per class against the rest.
    shown = labels[1:] if len(labels) == 2 else labels
    for label in shown:
        column = labels.index(label)
        positive = np.asarray([t == str(label) for t in truth])
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, scores[:, column])
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], color="#888", linewidth=1, linestyle="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    ax.legend(loc="lower right", title="positive class")
    figure.tight_layout()
    return figure
