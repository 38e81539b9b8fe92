"""Every command in README.md and docs/*.md runs as written, in order, as a reader runs it.

Each document runs in its own temporary folder with the Pima copy as `pima.csv`, its own moto
S3 server holding the buckets it names, and, first, the server that the README's first
command starts (the built-in model on port 8000, here a free port): the documents assume it.
"""

from __future__ import annotations

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
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server of this document alone (documents reuse bucket names)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


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
