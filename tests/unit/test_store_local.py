"""What only the local store has: separate processes racing, crashes, and stray files.

The behaviour it shares with the S3 store is tested for both in tests/live/test_store_s3.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import msgspec
import pytest

from modelapi import bundle as bundle_module
from modelapi.bundle import Bundle, write_bundle
from modelapi.errors import StoreError
from modelapi.store import open_store
from modelapi.store.local import LocalStore
from tests.conftest import REPO_ROOT


@pytest.fixture
def bundle(builtin_bundle: Bundle) -> Bundle:
    return Bundle(msgspec.structs.replace(builtin_bundle.manifest, name="m"), builtin_bundle.files)


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import msgspec
    from modelapi.bundle import Bundle, read_bundle
    from modelapi.store.local import LocalStore
    from modelapi.store.builtin import BUILTIN_ROOT

    root, go, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    builtin = read_bundle(BUILTIN_ROOT / "diabetes" / "1")
    bundle = Bundle(msgspec.structs.replace(builtin.manifest, name="m"), builtin.files)
    store = LocalStore(root)
    while not go.exists():
        time.sleep(0.001)
    print(" ".join(str(store.put(bundle).version) for _ in range(count)))
    """
)


def test_processes_putting_one_name_get_distinct_versions(tmp_path: Path) -> None:
    root, go, count, n_writers = tmp_path / "models", tmp_path / "go", 30, 4
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root), str(go), str(count)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        for _ in range(n_writers)
    ]
    time.sleep(0.5)  # let all start and wait on the same signal
    go.touch()
    outputs = [writer.communicate(timeout=120)[0] for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * n_writers
    claimed = [int(v) for out in outputs for v in out.split()]
    assert sorted(claimed) == list(range(1, n_writers * count + 1))
    store = LocalStore(root)
    assert store.versions("m") == sorted(claimed)
    for version in store.versions("m"):
        assert store.read("m", version).manifest.version == version


def test_a_put_that_dies_before_its_manifest_leaves_no_version(
    tmp_path: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "models")
    store.put(bundle)

    def crash(manifest: object) -> bytes:
        raise KeyboardInterrupt  # the process is interrupted right before the manifest

    monkeypatch.setattr(bundle_module, "encode_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        store.put(bundle)
    monkeypatch.undo()
    assert (tmp_path / "models" / "m" / "2" / "linear.json").is_file()
    assert store.versions("m") == [1]
    assert store.put(bundle).version == 3


def test_stray_files_and_folders_are_ignored(tmp_path: Path, bundle: Bundle) -> None:
    store = LocalStore(tmp_path / "models")
    store.put(bundle)
    store.set_alias("m", "production", 1)
    root = tmp_path / "models"
    (root / "notes.txt").write_text("not a model")
    (root / ".cache").mkdir()
    (root / "bad name").mkdir()
    (root / "m" / "draft").mkdir()
    (root / "m" / "aliases" / ".production.123.tmp").write_text("9\n")
    (root / "m" / "aliases" / "broken").write_text("not a number")
    (root / "m" / "aliases" / "folder").mkdir()
    assert store.names() == ["m"]
    assert store.versions("m") == [1]
    assert store.aliases("m") == {"production": 1}


def test_a_bundle_folder_copied_in_by_hand_counts_once_it_has_its_manifest(
    tmp_path: Path, bundle: Bundle
) -> None:
    store = LocalStore(tmp_path / "models")
    write_bundle(
        Bundle(msgspec.structs.replace(bundle.manifest, version=4), bundle.files),
        tmp_path / "models" / "m" / "4",
    )
    assert store.versions("m") == [4]
    assert store.put(bundle).version == 5


def test_concurrent_alias_moves_leave_one_complete_value(tmp_path: Path, bundle: Bundle) -> None:
    store = LocalStore(tmp_path / "models")
    for _ in range(4):
        store.put(bundle)
    errors: list[BaseException] = []

    def move(version: int) -> None:
        try:
            for _ in range(50):
                store.set_alias("m", "production", version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(v,)) for v in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert store.resolve_alias("m", "production") in {1, 2, 3, 4}
    assert [p.name for p in (tmp_path / "models" / "m" / "aliases").iterdir()] == ["production"]


def test_a_root_that_is_a_file_is_a_store_error(tmp_path: Path, bundle: Bundle) -> None:
    root = tmp_path / "models"
    root.write_text("a file, not a folder")
    store = open_store(str(root))
    assert store.names() == []
    with pytest.raises(StoreError, match=r"cannot hold a new version"):
        store.put(bundle)
