"""Rendered bodies that depend only on the loaded model, cached per model.

The OpenAPI document and the form page are rendered once per loaded model (keyed on
`name:version` and the served artifact's checksum) and then served from here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from modelapi.predictor import Predictor

__all__ = ["RenderCache", "model_key"]


class RenderCache:
    """Rendered bodies keyed on what they depend on (a model id first); bounded, thread-safe."""

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._bodies: dict[Hashable, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """Return the body for `key`, rendering it on the first call for that key."""
        body = self._bodies.get(key)
        if body is None:
            body = render()
            with self._lock:
                if len(self._bodies) >= self.max_entries:
                    # A hot reload retires old models; dropping everything is simplest.
                    self._bodies.clear()
                self._bodies[key] = body
        return body


def model_key(predictor: Predictor) -> tuple[str, str]:
    """What a rendered body depends on: `name:version`, and the served artifact's sha256.

    The checksum tells apart two bundles that share a name and version (two folders, two
    stores), which `name:version` alone cannot.
    """
    manifest = predictor.manifest
    return predictor.model_id, manifest.artifacts[manifest.serving].sha256
