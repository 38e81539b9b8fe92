"""The doc-test harness itself: blocks, modes, wildcards, and failures that fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.harness import Block, DocumentRun, blocks_of, matches


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ("a\nb", "a\nb\n", True),
        ("a\n...\nd", "a\nb\nc\nd", True),
        ("a\n...\nd", "a\nd", True),
        ("accuracy: 0.78...", "accuracy: 0.7835497835497836", True),
        ("a\nb", "a\nc", False),
        ("a", "a\nb", False),
        ("...\nz", "a\nb", False),
    ],
)
def test_matches_reads_ellipses_as_wildcards(expected: str, actual: str, ok: bool) -> None:
    assert matches(expected, actual) is ok


def test_a_failing_block_fails_the_run(tmp_path: Path, pima_csv: Path) -> None:
    run = DocumentRun.start(tmp_path, pima_csv, None, {})
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```console test\n$ echo one \\\n  two\none two\n$ echo three\nfour\n```\n"
        "```sh test\nfalse\n```\n"
    )
    console, shell = blocks_of(doc)
    with pytest.raises(AssertionError, match="`echo three` printed"):
        run.run(console)
    with pytest.raises(AssertionError, match=r"doc\.md:8 exited 1"):
        run.run(shell)


def test_an_export_holds_for_the_commands_after_it(tmp_path: Path, pima_csv: Path) -> None:
    run = DocumentRun.start(tmp_path, pima_csv, None, {})
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```console test\n$ export GREETING=hello   # a comment\n$ echo $GREETING\nhello\n```\n"
        "```console test\n$ echo $GREETING\nbye\n```\n"
    )
    first, second = blocks_of(doc)
    run.run(first)
    with pytest.raises(AssertionError, match="`echo \\$GREETING` printed:\nhello"):
        run.run(second)


def test_blocks_know_their_mode_and_reason(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "<!-- not run: needs AWS -->\n```sh no-test\nsam deploy\n```\n\n```\nplain\n```\n"
    )
    first, second = blocks_of(doc)
    assert (first.language, first.mode, first.not_run_reason, first.text) == (
        "sh",
        "no-test",
        "needs AWS",
        "sam deploy",
    )
    assert (second.language, second.mode, second.line) == ("", "", 6)
    assert isinstance(first, Block)
