"""What training gives back: the bundle, the fitted estimator and its metrics, short to show."""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass

from modelapi.bundle import Bundle, Manifest
from modelapi.store import open_store
from modelapi.training.data import DataSummary

__all__ = ["TrainResult"]

# The metrics a one-line summary shows, in this order, when the model has them.
_HEADLINE = ("accuracy", "f1", "roc_auc", "r2", "rmse", "mae")


@dataclass(frozen=True, repr=False)
class TrainResult:
    """A trained model: its bundle (stored once `store` was called), estimator and metrics.

    Its repr is one line and its HTML (a notebook cell) a short table: the bundle's bytes are
    never shown.
    """

    bundle: Bundle
    estimator: object
    metrics: dict[str, object]
    summary: DataSummary | None = None
    notes: tuple[str, ...] = ()

    @property
    def manifest(self) -> Manifest:
        """The bundle's manifest (version 0 until stored)."""
        return self.bundle.manifest

    @property
    def model_id(self) -> str:
        """`name:version`."""
        return self.bundle.manifest.model_id

    def store(self, uri: str) -> TrainResult:
        """Put the bundle in a store as a new version; return the result with that version."""
        manifest = open_store(uri).put(self.bundle)
        return dataclasses.replace(self, bundle=Bundle(manifest, self.bundle.files))

    def headline(self) -> dict[str, float]:
        """The main metrics of the held-out check, e.g. accuracy, f1 and roc_auc."""
        return {
            name: value for name in _HEADLINE if isinstance(value := self.metrics.get(name), float)
        }

    def __repr__(self) -> str:
        manifest = self.manifest
        version = "not stored" if manifest.version == 0 else f"version {manifest.version}"
        metrics = ", ".join(f"{name} {value:.4g}" for name, value in self.headline().items())
        return (
            f"<TrainResult {manifest.name} ({version}): {manifest.estimator}, served from"
            f" {manifest.serving}{'; ' + metrics if metrics else ''}>"
        )

    def _repr_html_(self) -> str:
        manifest = self.manifest
        rows = [
            ("model", manifest.model_id if manifest.version else f"{manifest.name} (not stored)"),
            ("estimator", manifest.estimator),
            ("task", manifest.task),
            ("served from", manifest.serving),
            ("features", str(len(manifest.features))),
        ]
        if self.summary is not None:
            rows.append(("rows", f"{self.summary.n_rows:,} ({self.summary.source})"))
        rows.extend((name, f"{value:.4g}") for name, value in self.headline().items())
        rows.extend(("note", note) for note in self.notes)
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<table>{cells}</table>"
