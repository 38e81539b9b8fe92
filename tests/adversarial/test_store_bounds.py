"""A store can never make a process hold more than a bundle may: every read has a bound.

A gibibyte-sized artifact beside a good manifest (a sparse file: no disk used), a manifest or
an alias far over its limit, an S3 object sent without a Content-Length that does not end:
each is refused after reading at most its bound, measured as the peak of Python's allocations
(tracemalloc) while the read runs. Before the bounds, these reads took a gibibyte and more.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from modelapi.bundle import MANIFEST, MAX_ARTIFACT_BYTES, MAX_MANIFEST_BYTES, Bundle
from modelapi.errors import BundleError
from modelapi.source import ModelSource
from modelapi.store import MAX_ALIAS_BYTES
from modelapi.store.local import LocalStore
from modelapi.store.s3 import S3Store
from tests.adversarial.s3_faults import FaultProxy, fault_proxy

GIB = 1024**3
# Far above any bound below that is not MAX_MANIFEST_BYTES, far below what an unbounded read takes.
PEAK_BYTES = 8 * 1024 * 1024


def _peak(action: Callable[[], object]) -> int:
    """The peak of Python's allocations, in bytes, while `action` runs (its errors are kept)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _refused(action: Callable[[], object], match: str) -> Callable[[], object]:
    def run() -> None:
        with pytest.raises(BundleError, match=match):
            action()

    return run


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)


@pytest.fixture
def store(tmp_path: Path, builtin_bundle: Bundle) -> LocalStore:
    """diabetes:1 and diabetes:2 in a folder; production points at 1."""
    store = LocalStore(tmp_path / "models")
    store.put(builtin_bundle)
    store.put(builtin_bundle)
    store.set_alias("diabetes", "production", 1)
    return store


def test_a_gibibyte_artifact_beside_a_good_manifest_is_refused_unread_at_each_reload(
    store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    source = ModelSource("diabetes@production", store.uri)
    assert source.load()
    _sparse(store.root / "diabetes" / "2" / "linear.json", GIB)
    store.set_alias("diabetes", "production", 2)
    with caplog.at_level(logging.ERROR):
        for _ in range(3):  # as a reload interval would
            assert _peak(source.refresh) < PEAK_BYTES
    assert source.predictor is not None
    assert source.predictor.model_id == "diabetes:1"
    assert f"linear.json: size {GIB} bytes, manifest says" in caplog.text


def test_a_manifest_declaring_an_artifact_over_the_cap_is_refused_unread(
    store: LocalStore,
) -> None:
    folder = store.root / "diabetes" / "2"
    manifest = msgspec.json.decode((folder / MANIFEST).read_bytes())
    manifest["artifacts"]["linear.json"]["size"] = MAX_ARTIFACT_BYTES + 1
    (folder / MANIFEST).write_bytes(msgspec.json.encode(manifest))
    _sparse(folder / "linear.json", MAX_ARTIFACT_BYTES + 1)
    read = _refused(
        lambda: store.read("diabetes", 2, serving_only=True),
        rf"linear.json is said to hold {MAX_ARTIFACT_BYTES + 1} bytes.*MAX_ARTIFACT_BYTES",
    )
    assert _peak(read) < PEAK_BYTES


def test_a_gibibyte_manifest_or_alias_is_refused_unread(store: LocalStore) -> None:
    _sparse(store.root / "diabetes" / "2" / MANIFEST, GIB)
    _sparse(store.root / "diabetes" / "aliases" / "huge", GIB)
    manifest = _refused(
        lambda: store.read_manifest("diabetes", 2), rf"size {GIB} bytes, limit {MAX_MANIFEST_BYTES}"
    )
    bundle = _refused(
        lambda: store.read("diabetes", 2), rf"size {GIB} bytes, limit {MAX_MANIFEST_BYTES}"
    )
    alias = _refused(
        lambda: store.resolve_alias("diabetes", "huge"),
        rf"size {GIB} bytes, limit {MAX_ALIAS_BYTES}",
    )
    for read in (manifest, bundle, alias):
        assert _peak(read) < PEAK_BYTES


def test_a_named_pipe_posing_as_an_artifact_is_refused_without_waiting(store: LocalStore) -> None:
    artifact = store.root / "diabetes" / "2" / "linear.json"
    artifact.unlink()
    os.mkfifo(artifact)  # opened for reading, it would wait for a writer forever
    with pytest.raises(BundleError, match="not a regular file"):
        store.read("diabetes", 2, serving_only=True)


# -- S3, both ways of reading ----------------------------------------------------------------

# In a process of its own, away from moto's allocations: one read that passes (so that a
# botocore client is made and warm), then the read that is measured.
_READ = """
import json, sys, tracemalloc
from modelapi.errors import BundleError
from modelapi.store.s3 import S3Store
store = S3Store(sys.argv[1])
calls = {"alias": lambda: store.resolve_alias("diabetes", "production"),
         "manifest": lambda: store.read_manifest("diabetes", 1),
         "artifact": lambda: store.read("diabetes", 1, serving_only=True)}
calls[sys.argv[2]]()
tracemalloc.start()
try:
    calls[sys.argv[3]]()
    outcome = "read"
except BundleError as exc:
    outcome = str(exc)
print(json.dumps([outcome, tracemalloc.get_traced_memory()[1]]))
"""


def _peak_in_a_process(uri: str, warm_up: str, read: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _READ, uri, warm_up, read],
        capture_output=True, text=True, timeout=120, env=os.environ, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    outcome, peak = json.loads(done.stdout)
    return str(outcome), int(peak)


@pytest.fixture
def flood(
    s3_read_path: str, s3_store_uri: str, builtin_bundle: Bundle, aws_env: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FaultProxy]:  # fmt: skip
    """diabetes:1 in moto behind a proxy that floods answers without a Content-Length."""
    writer = S3Store(s3_store_uri)
    writer.put(builtin_bundle)
    writer.set_alias("diabetes", "production", 1)
    with fault_proxy(aws_env) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        proxy.mode = "flood"
        yield proxy


def test_an_endless_s3_alias_is_read_no_further_than_its_bound(
    flood: FaultProxy, s3_store_uri: str
) -> None:
    flood.flood_only = "/aliases/"
    outcome, peak = _peak_in_a_process(s3_store_uri, "manifest", "alias")
    assert outcome == f"production: size over {MAX_ALIAS_BYTES} bytes, limit {MAX_ALIAS_BYTES}"
    assert peak < PEAK_BYTES
    assert flood.flooded < flood.flood_bytes


def test_an_endless_s3_artifact_is_read_no_further_than_its_declared_size(
    flood: FaultProxy, s3_store_uri: str, builtin_bundle: Bundle
) -> None:
    flood.flood_only = "/linear.json"
    size = builtin_bundle.manifest.artifacts["linear.json"].size
    outcome, peak = _peak_in_a_process(s3_store_uri, "manifest", "artifact")
    assert outcome == f"linear.json: size over {size} bytes, manifest says {size}"
    assert peak < PEAK_BYTES
    assert flood.flooded < flood.flood_bytes


def test_an_endless_s3_manifest_is_read_no_further_than_the_manifest_limit(
    flood: FaultProxy, s3_store_uri: str
) -> None:
    flood.flood_only = "/manifest.json"
    flood.flood_bytes = 256 * 1024 * 1024
    outcome, peak = _peak_in_a_process(s3_store_uri, "alias", "manifest")
    limit = MAX_MANIFEST_BYTES
    assert outcome == f"manifest.json: size over {limit} bytes, limit {limit}"
    # The limit read, and one copy of it joined: nowhere near the 256 MiB sent.
    assert peak < 3 * limit
    assert flood.flooded < flood.flood_bytes
