"""ModelSource: the model a serving process answers with, loaded once and swapped atomically.

Both the ASGI server and the Lambda handler hold one ModelSource. It loads the referenced
bundle (reading and verifying only the serving artifact), keeps the reason when it cannot,
retries on a later call, and can re-check an alias so a promoted version is served without a
restart. A swap is a single attribute assignment: a request sees the old or the new
predictor, never a mix. A re-check never runs in a request's way: the ASGI app's watcher
thread makes them, and on Lambda `refresh_if_due` starts one in a thread of its own.
"""

from __future__ import annotations

import logging
import threading
import time

from modelapi.bundle import read_bundle
from modelapi.errors import BundleNotFound, ModelapiError, ModelUnavailable, NotFound
from modelapi.predictor import Predictor
from modelapi.store import ModelRef, ModelStore, locate, open_store, parse_ref

__all__ = ["ModelSource"]

logger = logging.getLogger(__name__)


class ModelSource:
    """The current predictor for one model reference, with load, retry and alias reload."""

    def __init__(
        self,
        ref: str,
        store: str | None,
        *,
        reload_interval_s: float = 0.0,
        store_deadline_s: float | None = None,
    ) -> None:
        self.ref: ModelRef = parse_ref(ref)
        self.store_uri = store
        self.reload_interval_s = reload_interval_s
        self.store_deadline_s = store_deadline_s
        self.predictor: Predictor | None = None
        self.reason = "the model has not been loaded yet"
        self._store: ModelStore | None = None
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._origin: tuple[str, int] | None = None
        # Whether the last load failed because the store answered that there is no such
        # model (as against a store that could not be reached): a start-up refuses that.
        self.is_missing = False
        self._artifact: tuple[str, str, bytes] | None = None
        self._origin_store: ModelStore | None = None
        self._refreshing: threading.Thread | None = None

    @classmethod
    def of(cls, predictor: Predictor) -> ModelSource:
        """A source that always serves the given predictor (tests, embedded use)."""
        source = cls(predictor.manifest.name, None)
        source.predictor = predictor
        return source

    def model_labels(self) -> tuple[str, str] | None:
        """The (name, version) of the model being served, or None while none is loaded."""
        predictor = self.predictor
        if predictor is None:
            return None
        return predictor.manifest.name, str(predictor.manifest.version)

    @property
    def is_loading(self) -> bool:
        """Whether a load is running now (in any thread)."""
        return self._lock.locked()

    def get(self) -> Predictor:
        """The current predictor; try loading again if none is loaded; raise ModelUnavailable."""
        predictor = self.predictor
        if predictor is None:
            self.load()
            predictor = self.predictor
            if predictor is None:
                raise ModelUnavailable(self.reason)
        return predictor

    def load(self) -> bool:
        """Load the referenced model now; on failure keep the old one and the reason."""
        return self._load(None)

    def refresh(self) -> bool:
        """Load the version the reference names now, if it differs; return whether it swapped."""
        self._checked_at = time.monotonic()
        current = self.predictor
        if current is None:
            return self.load()
        if self.ref.path is not None or self.ref.version is not None:
            return False
        try:
            located = locate(self.ref, self._open_store())
        except Exception as exc:  # a store fault must not stop serving the current model
            logger.warning(
                "model check failed for %s, keeping %s: %s", self.ref, current.model_id, exc
            )
            return False
        if (located[0].uri, located[1]) == self._origin:
            return False
        return self._load(located)

    def _load(self, located: tuple[ModelStore, int] | None) -> bool:
        with self._lock:
            try:
                origin_store: ModelStore | None = None
                if self.ref.path is not None:
                    bundle = read_bundle(self.ref.path, serving_only=True)
                    origin = (self.ref.path, bundle.manifest.version)
                else:
                    store, version = located or locate(self.ref, self._open_store())
                    bundle = store.read(self.ref.name, version, serving_only=True)
                    origin = (store.uri, version)
                    origin_store = store
                predictor = Predictor(bundle)
            except Exception as exc:  # boto3/OS faults arrive as many types; the reason is logged.
                self._fail(exc)
                return False
            self._swap(predictor)
            self._origin = origin
            self._origin_store = origin_store
            return True

    def read_artifact(self, name: str) -> bytes:
        """Another artifact of the version being served (the report), read and verified.

        Serving loads only the serving artifact; this one is read from the same folder or
        store on the first call and kept. Raise NotFound when the version has none, or was
        not loaded from a store; ModelUnavailable when the store cannot be read now.
        """
        predictor = self.get()
        manifest = predictor.manifest
        entry = manifest.artifacts.get(name)
        origin = self._origin
        if entry is None or origin is None:
            raise NotFound(f"model {predictor.model_id} has no {name} to serve")
        kept = self._artifact
        if kept is not None and kept[:2] == (name, entry.sha256):
            return kept[2]
        try:
            if self.ref.path is not None:
                bundle = read_bundle(self.ref.path)
            else:
                store = self._origin_store or self._open_store()
                bundle = store.read(manifest.name, manifest.version)
        except Exception as exc:  # boto3/OS faults arrive as many types; the reason is logged.
            logger.warning("%s of %s could not be read: %s", name, predictor.model_id, exc)
            raise ModelUnavailable(
                f"{name} of {predictor.model_id} cannot be read now; try again"
            ) from None
        data = bundle.files[name]
        if bundle.manifest.artifacts.get(name) != entry:
            raise ModelUnavailable(f"{name} of {predictor.model_id} changed in the store")
        self._artifact = (name, entry.sha256, data)
        return data

    def refresh_if_due(self) -> None:
        """Start a refresh in a thread when the reload interval has passed (0 = never).

        The caller goes on answering with the current model: a slow store delays the new
        version, never an answer. Nothing starts while no model is loaded (get() loads one)
        or while the last refresh is still running.
        """
        if (
            self.reload_interval_s <= 0
            or self.predictor is None
            or time.monotonic() - self._checked_at < self.reload_interval_s
        ):
            return
        running = self._refreshing
        if running is not None and running.is_alive():
            return
        self._checked_at = time.monotonic()
        thread = threading.Thread(target=self.refresh, name="modelapi-refresh", daemon=True)
        self._refreshing = thread
        thread.start()

    def _open_store(self) -> ModelStore:
        if self._store is None:
            self._store = open_store(
                self.store_uri or "./models", read_deadline_s=self.store_deadline_s
            )
        return self._store

    @property
    def served_from(self) -> str | None:
        """The store (or folder) the served version was read from; None before a load."""
        return None if self._origin is None else self._origin[0]

    def _fail(self, exc: BaseException) -> None:
        self.reason = _reason(exc)
        self.is_missing = isinstance(exc, BundleNotFound)
        # modelapi's own errors say all there is in their message; anything else is a bug or a
        # library's fault, whose traceback is worth the log lines.
        trace = None if isinstance(exc, ModelapiError) else exc
        if self.predictor is None:
            logger.error("model %s could not be loaded: %s", self.ref, self.reason, exc_info=trace)
        else:
            logger.error(
                "model %s could not be reloaded, still serving %s: %s",
                self.ref,
                self.predictor.model_id,
                self.reason,
                exc_info=trace,
            )

    def _swap(self, predictor: Predictor) -> None:
        previous = self.predictor
        self.predictor = predictor
        self.reason = ""
        self.is_missing = False
        self._checked_at = time.monotonic()
        if previous is None:
            logger.info("serving model %s", predictor.model_id)
        elif previous.model_id != predictor.model_id:
            logger.info("serving model %s (was %s)", predictor.model_id, previous.model_id)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ModelapiError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
