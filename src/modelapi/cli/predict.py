"""`modelapi predict`: score a CSV file with a model in this process or on a server."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

import click
import msgspec

from modelapi.answers import answer_columns
from modelapi.bundle import decode_manifest
from modelapi.cli.options import store_option
from modelapi.config import Settings
from modelapi.errors import InvalidInput
from modelapi.predictor import Predictor
from modelapi.schema import Feature

if TYPE_CHECKING:
    from modelapi.scoring.stream import BlockScorer

    ScorerFor = Callable[[list[str]], tuple[BlockScorer, list[str]]]

__all__ = ["commands"]


def _usable_cpus() -> int:
    # The CPUs this process may run on (taskset, cgroup cpusets), not all the machine's.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


@click.command()
@click.argument("model", metavar="REF_OR_URL")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Where to write the scored CSV; '-' is standard output.  [default: -]",
)
@store_option()
@click.option(
    "--chunk-rows",
    type=click.IntRange(1, 10_000_000),
    default=32_768,
    show_default=True,
    help="Rows read and scored at a time; memory grows with it, not with the file.",
)
@click.option(
    "--api-key",
    help="The server's API key, for a URL (prefer MODELAPI_API_KEY: flags are visible to "
    "other local users).",
)
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to wait for each answer from a server.",
)
@click.option(
    "--workers",
    "--threads",
    "workers",
    type=click.IntRange(1, 64),
    default=min(4, _usable_cpus()),
    show_default="CPUs this process may use, at most 4",
    help="Processes scoring blocks at once (forked on Linux; threads elsewhere), for a model"
    " scored in this process; the output stays in file order. --threads is its old name.",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr.")
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="fail: the first invalid line stops the run. skip: invalid lines are left out of the"
    " output and listed (line number, field, reason; never their values) in --errors-file.",
)
@click.option(
    "--errors-file",
    type=click.Path(dir_okay=False),
    help="Where --on-error skip lists the invalid lines, as CSV.  [default: OUTPUT.errors.csv,"
    " or errors.csv when OUTPUT is standard output]",
)
@click.option(
    "--no-header",
    is_flag=True,
    help="INPUT has no header line: its first columns are the model's features in the model's"
    " order (see `modelapi models show`); any further columns are carried through.",
)
def predict(
    model: str,
    input_path: str,
    output: str,
    store: str,
    chunk_rows: int,
    api_key: str | None,
    timeout_s: float,
    workers: int,
    progress: bool,
    on_error: str,
    errors_file: str | None,
    no_header: bool,
) -> None:
    """Score INPUT (a CSV file, '-' for stdin) with a model; write its columns plus answers.

    REF_OR_URL is a model reference (name, name:3, name@alias, a bundle folder), scored in this
    process, or the http(s) URL of a running modelapi server. The features are found in the
    header by CSV name or JSON key; other columns (an id, the target) are carried through. The
    output has every input column, then the prediction (the target's JSON key; written
    predicted_<key> when an input column already has that name) and, for a classifier, one
    probability_<class> column per class. The file is read in chunks, so its size does not
    matter; the first invalid line stops the run with `line N, field: reason`, unless
    --on-error skip.
    """
    settings = Settings.from_env().replace(store=store, api_key=api_key)
    skip = on_error == "skip"
    errors_path = errors_file or (f"{output}.errors.csv" if output != "-" else "errors.csv")
    started = time.perf_counter()
    with (
        _scorer_for(model, settings, timeout_s, skip=skip) as (scorer_for, features, model_id),
        _opened(input_path) as (source, total_bytes),
        _output(output) as out,
        _rejects(errors_path if skip else None) as rejected,
        _progress_bar(total_bytes if progress and sys.stderr.isatty() else None) as update,
    ):
        from modelapi.scoring.scorers import headerless_names
        from modelapi.scoring.stream import score_csv

        try:
            n_rows = score_csv(
                source,
                out,
                scorer_for,
                chunk_rows=chunk_rows,
                workers=workers,
                progress=update,
                rejected=rejected,
                header_names=(
                    (lambda width: headerless_names(features, width)) if no_header else None
                ),
            )
        except BrokenExecutor:
            if output == "-":
                where = "standard output holds the lines before it"
            else:
                where = f"{output} was not written"
            raise click.ClickException(
                "a scoring worker process stopped before its block was done (killed, or out"
                f" of memory?); {where}. Run again, with fewer --workers or --chunk-rows if"
                " memory is short."
            ) from None
    seconds = time.perf_counter() - started
    rate = f", {n_rows / seconds:,.0f} rows/s" if seconds > 0 and n_rows else ""
    where = "standard output" if output == "-" else output
    click.echo(
        f"scored {n_rows} rows with {model_id} in {seconds:.2f} s{rate} -> {where}", err=True
    )
    if skip:
        assert rejected is not None
        click.echo(
            f"skipped {rejected.count} invalid lines (line numbers and reasons: {errors_path})",
            err=True,
        )


class _RejectWriter:
    """Writes each refused line of `--on-error skip` as `line,field,reason` rows, and counts."""

    def __init__(self, out: TextIO) -> None:
        import csv

        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow(["line", "field", "reason"])
        self.count = 0

    def __call__(self, error: InvalidInput) -> None:
        self.count += 1
        for detail in error.details:
            line, _, field = detail.field.partition(", ")
            self._writer.writerow([line.removeprefix("line "), field, detail.reason])


@contextmanager
def _rejects(path: str | None) -> Iterator[_RejectWriter | None]:
    """The writer of the errors file (always written with skip, so none is ever stale)."""
    if path is None:
        yield None
        return
    try:
        handle = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InvalidInput(path, f"cannot be written ({exc.strerror})") from None
    with handle:
        yield _RejectWriter(handle)


@contextmanager
def _progress_bar(total_bytes: int | None) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr over the input's bytes; none when the size is unknown."""
    if not total_bytes:
        yield None
        return
    with click.progressbar(length=total_bytes, label="scoring", file=sys.stderr) as bar:
        yield bar.update


@contextmanager
def _scorer_for(
    model: str, settings: Settings, timeout_s: float, *, skip: bool
) -> Iterator[tuple[ScorerFor, tuple[Feature, ...], str]]:
    """A scorer factory for the file's header, the model's features, and its id."""
    # Imported on use, so that the other commands start without the scoring machinery.
    from modelapi.scoring.scorers import LocalScorer, RemoteScorer, output_columns

    if model.startswith(("http://", "https://")):
        from modelapi.client import Client

        with Client(model, settings.api_key, timeout_s=timeout_s) as client:
            where = f"{client.url}/model"
            manifest = decode_manifest(msgspec.json.encode(client.model()), where)

            def remote(header: list[str]) -> tuple[BlockScorer, list[str]]:
                scorer = RemoteScorer(
                    client.predict_csv, manifest, header, skip_bad_lines=skip, header_fix=_FIX
                )
                return scorer, output_columns(answer_columns(manifest), header)

            yield remote, manifest.features, manifest.model_id
        return
    from modelapi.store import load_bundle, locate, open_store, parse_ref
    from modelapi.store.builtin import BUILTIN_STORE

    ref = parse_ref(model)
    store = None if ref.path else open_store(settings.store)
    model_id = None
    if store is not None and ref.version is None:
        found, version = locate(ref, store)
        bundle = found.read(ref.name, version, serving_only=True)
        if found is BUILTIN_STORE:  # said as `modelapi serve` says it: a store may lack it
            model_id = f"{bundle.manifest.model_id} (built in: {store.uri} has no model {ref.name})"
    else:
        bundle = load_bundle(ref, store, serving_only=True)
    predictor = Predictor(bundle, warm=False)

    def local(header: list[str]) -> tuple[BlockScorer, list[str]]:
        scorer = LocalScorer(predictor, header, skip_bad_lines=skip, header_fix=_FIX)
        return scorer, output_columns(answer_columns(predictor.manifest), header)

    yield local, predictor.manifest.features, model_id or predictor.model_id


_FIX = (
    "give the file a header line naming the columns, or pass --no-header to read its first"
    " columns as the model's features in order"
)


@contextmanager
def _opened(path: str) -> Iterator[tuple[BinaryIO, int | None]]:
    """The input as a binary stream and its size in bytes (None for stdin)."""
    if path == "-":
        yield sys.stdin.buffer, None
        return
    try:
        source = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise InvalidInput(path, "does not exist") from None
    except OSError as exc:
        raise InvalidInput(path, f"cannot be read ({exc.strerror})") from None
    with source:
        yield source, os.fstat(source.fileno()).st_size


@contextmanager
def _output(path: str) -> Iterator[BinaryIO]:
    """Standard output, or a temporary file renamed to `path` only when scoring succeeds."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
    except OSError as exc:
        raise InvalidInput(path, f"cannot be written ({exc.strerror})") from None
    try:
        with os.fdopen(handle, "wb", buffering=1024 * 1024) as out:
            yield out
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


commands: list[click.Command] = [predict]
