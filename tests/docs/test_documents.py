"""Every command in README.md and docs/*.md runs as written, in order, as a reader runs it.

Each document runs in its own temporary folder with the Pima copy as `pima.csv`, its own moto
S3 server holding the buckets it names, and, first, the server that the README's first
command starts (the built-in model on port 8000, here a free port): the documents assume it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.docs.harness import COMMAND_LANGUAGES, Block, DocumentRun, blocks_of

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
_RUN_MODES = frozenset({"test", "test-background"})


def _command_blocks(document: Path) -> list[Block]:
    return [b for b in blocks_of(document) if b.language in COMMAND_LANGUAGES]


@pytest.fixture
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    """A moto S3 server of this document alone, in its own process: documents reuse bucket
    names, and moto's state is shared by every server of one process."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    log = (tmp_path / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "moto.log").read_text()
                assert time.monotonic() < deadline, "moto did not start within 30 s"
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)
        log.close()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_command_block_is_run_or_says_why_not(document: Path) -> None:
    for block in _command_blocks(document):
        if block.mode == "no-test":
            assert block.not_run_reason, f"{block.where}: a no-test block needs <!-- not run: -->"
        else:
            assert block.mode in _RUN_MODES, (
                f"{block.where}: mark it test, test-background or no-test"
            )


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "document",
    [d for d in DOCUMENTS if any(b.mode in _RUN_MODES for b in _command_blocks(d))],
    ids=lambda p: p.name,
)
def test_the_document_runs_as_written(
    document: Path, tmp_path: Path, pima_csv: Path, s3_endpoint: str
) -> None:
    import boto3

    run = DocumentRun.start(tmp_path, pima_csv, s3_endpoint, {})
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in sorted(run.buckets(document.read_text())):
        s3.create_bucket(Bucket=bucket)
    readme_server = Block(
        REPO_ROOT / "README.md", 3, "sh", "test-background", "modelapi serve --port 8000"
    )
    try:
        run.run(readme_server)
        for block in _command_blocks(document):
            if block.mode in _RUN_MODES:
                run.run(block)
    finally:
        run.close()
