"""`modelapi models`: list, show, alias and copy the versions in a store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
import msgspec

from modelapi.bundle import (
    MANIFEST,
    REPORT_FILE,
    Manifest,
    decode_manifest,
    encode_manifest,
    read_bundle,
)
from modelapi.cli.options import ref_argument, store_option
from modelapi.errors import BundleError, BundleNotFound, StoreError
from modelapi.store import (
    ModelStore,
    check_name,
    check_version,
    locate,
    open_store,
    parse_ref,
)
from modelapi.store.copy import copy_model
from modelapi.store.local import LocalStore

__all__ = ["commands", "models"]

_MAX_CATEGORIES_CHARS = 60


@click.group("models")
def models() -> None:
    """List, inspect, alias and copy stored model versions.

    \b
    References: name (newest), name:3, name@production, or a bundle folder path.
    """


@models.command("list")
@store_option()
def list_models(store: str) -> None:
    """List the models in a store with their versions and aliases."""
    opened = open_store(store)
    if isinstance(opened, LocalStore) and not opened.root.exists():
        # Most often a mistyped path: "no models" would hide it.
        raise StoreError(
            f"no store at {opened.uri}: the folder does not exist"
            f" ('modelapi train DATA --store {opened.uri}' creates it)"
        )
    rows = []
    for name in opened.names():
        versions = opened.versions(name)
        aliases = opened.aliases(name)
        rows.append(
            [
                name,
                _ranges(versions),
                str(versions[-1]) if versions else "-",
                ", ".join(f"{alias}={v}" for alias, v in sorted(aliases.items())) or "-",
            ]
        )
    if not rows:
        click.echo(f"no models in {opened.uri}")
        return
    click.echo(_table(["NAME", "VERSIONS", "NEWEST", "ALIASES"], rows))


@models.command("show")
@ref_argument()
@store_option()
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--verify", is_flag=True, help="Also read every artifact and check its sha256.")
def show(ref: str, store: str, as_json: bool, verify: bool) -> None:
    """Show a model version: features, metrics, artifacts and checksums."""
    parsed = parse_ref(ref)
    aliases: dict[str, int] = {}
    if parsed.path is not None:
        where = parsed.path
        manifest = _folder_manifest(Path(parsed.path), verify=verify)
        report = str(Path(parsed.path) / REPORT_FILE)
    else:
        found, version = locate(parsed, open_store(store))
        where = found.uri
        if verify:
            manifest = found.read(parsed.name, version).manifest
        else:
            manifest = found.read_manifest(parsed.name, version)
        aliases = {a: v for a, v in found.aliases(parsed.name).items() if v == version}
        report = artifact_location(found, parsed.name, version, REPORT_FILE)
    if as_json:
        click.echo(encode_manifest(manifest).decode(), nl=False)
        return
    click.echo(_describe(manifest, where, aliases, verified=verify, report_path=report))


@models.command("alias")
@click.argument("name")
@click.argument("version")
@click.argument("alias")
@store_option()
def alias(name: str, version: str, alias: str, store: str) -> None:
    """Point ALIAS of model NAME at VERSION (promote, or roll back)."""
    check_name("model name", name)
    check_name("alias", alias)
    number = check_version(version, f"{name}:{version}")
    opened = open_store(store)
    previous = opened.resolve_alias(name, alias)
    opened.set_alias(name, alias, number)
    was = "" if previous is None or previous == number else f" (was {name}:{previous})"
    click.echo(f"{name}@{alias} -> {name}:{number}{was}")


@models.command("copy")
@ref_argument()
@click.option("--to", "destination", required=True, metavar="URI", help="Destination store.")
@store_option()
def copy(ref: str, destination: str, store: str) -> None:
    """Copy a model (all versions and aliases), a version, or a bundle folder to another store.

    Version numbers and sha256 checksums are kept; a version already present with the
    same checksums is left alone.
    """
    parsed = parse_ref(ref)
    target = open_store(destination)
    source: ModelStore | None = None if parsed.path is not None else open_store(store)
    click.echo(f"copying {parsed} to {target.uri}")
    for step in copy_model(parsed, source, target):
        click.echo(f"  {step}")


commands: list[click.Command] = [models]


def _folder_manifest(folder: Path, *, verify: bool) -> Manifest:
    if folder.name == MANIFEST and folder.is_file():
        folder = folder.parent
    if verify:
        return read_bundle(folder).manifest
    path = folder / MANIFEST
    if not path.is_file():
        raise BundleNotFound(f"{folder}: no {MANIFEST} here; is this a bundle folder?")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{path}: cannot be read ({exc.strerror})") from exc
    return decode_manifest(data, str(path))


def artifact_location(store: ModelStore, name: str, version: int, file: str) -> str:
    """Where a stored version's artifact is: a path in a folder store, a URL in S3."""
    from modelapi.store.local import LocalStore

    if isinstance(store, LocalStore):  # the built-in store's uri is a description
        return str(store.root / name / str(version) / file)
    return f"{store.uri.rstrip('/')}/{name}/{version}/{file}"


def _describe(
    manifest: Manifest,
    where: str,
    aliases: dict[str, int],
    *,
    verified: bool,
    report_path: str = "",
) -> str:
    target = manifest.target
    facts = [
        ["model", f"{manifest.model_id}  ({where})"],
        ["task", manifest.task],
        ["estimator", manifest.estimator],
        ["created_at", manifest.created_at],
        ["target", f"{target.column} (json key {target.key})"],
    ]
    if manifest.classes is not None:
        facts.append(["classes", ", ".join(str(c) for c in manifest.classes)])
    facts.append(["serving", manifest.serving])
    if aliases:
        facts.append(["aliases", ", ".join(sorted(aliases))])
    if manifest.data is not None:
        data = manifest.data
        source = f", source {data.source}" if data.source else ""
        facts.append(["data", f"{data.n_rows} rows{source}, sha256 {data.sha256}"])
    if manifest.library_versions:
        versions = sorted(manifest.library_versions.items())
        facts.append(["libraries", ", ".join(f"{k} {v}" for k, v in versions)])
    if verified:
        facts.append(["verified", "every artifact matches its sha256 and size"])
    if REPORT_FILE in manifest.artifacts:
        facts.append(["report", report_path])
    features = [
        [f.column, f.key, f.type, _feature_values(f.categories, f.min, f.max)]
        for f in manifest.features
    ]
    metrics = [[key, _metric(value)] for key, value in manifest.metrics.items()]
    artifacts = [
        [file, f"{entry.size} B", entry.sha256]
        for file, entry in sorted(manifest.artifacts.items())
    ]
    sections = [
        _table(None, facts),
        "features\n" + _indent(_table(["COLUMN", "JSON KEY", "TYPE", "VALUES"], features)),
        "metrics\n" + _indent(_table(None, metrics) if metrics else "(none)"),
        "artifacts\n" + _indent(_table(["FILE", "SIZE", "SHA256"], artifacts)),
    ]
    return "\n\n".join(sections)


def _feature_values(categories: Sequence[str] | None, low: float | None, high: float | None) -> str:
    if categories is not None:
        text = ", ".join(categories)
        if len(text) > _MAX_CATEGORIES_CHARS:
            text = text[: _MAX_CATEGORIES_CHARS - 3] + "..."
        return f"{len(categories)} categories: {text}"
    if low is None and high is None:
        return "-"
    return f"{_number(low)} .. {_number(high)}"


def _number(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def _metric(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str | int):
        return str(value)
    return msgspec.json.encode(value).decode()


def _ranges(versions: list[int]) -> str:
    """`1-3, 5` for [1, 2, 3, 5]."""
    parts: list[str] = []
    start = previous = None
    for version in [*versions, None]:
        if version is not None and previous is not None and version == previous + 1:
            previous = version
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = version
    return ", ".join(parts) or "-"


def _table(headers: list[str] | None, rows: list[list[str]]) -> str:
    lines = [headers, *rows] if headers else rows
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))] if lines else []
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
