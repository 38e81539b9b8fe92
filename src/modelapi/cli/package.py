"""`modelapi package`: build deployment packages (AWS Lambda zip + SAM and Serverless templates)."""

from __future__ import annotations

from pathlib import Path

import click

from modelapi.cli.options import ref_argument, store_option
from modelapi.store import load_bundle, open_store, parse_ref

__all__ = ["commands", "package"]


@click.group("package")
def package() -> None:
    """Build deployment packages."""


@package.command("lambda")
@ref_argument(default="diabetes")
@click.option(
    "-o",
    "--out",
    "out_dir",
    default="dist",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for lambda.zip, template.yaml and serverless.yml.",
)
@store_option(
    "Store holding REF: s3://bucket/prefix is read by the function at run time;"
    " any other store is embedded."
)
@click.option(
    "--python",
    "python_version",
    type=click.Choice(["3.11", "3.12", "3.13", "3.14"]),
    default="3.12",
    show_default=True,
    help="Lambda Python runtime the wheels are fetched for and the templates name.",
)
@click.option(
    "--arch",
    type=click.Choice(["x86_64", "arm64"]),
    default="x86_64",
    show_default=True,
    help="Lambda architecture the wheels are fetched for and the templates name.",
)
@click.option(
    "--upload",
    type=click.Choice(["s3", "direct"]),
    default="s3",
    show_default=True,
    help="How the zip reaches Lambda: through S3 (sam deploy, serverless deploy; 250 MB"
    " unzipped) or in the API call itself (aws lambda ... --zip-file; also 50 MB zipped).",
)
@click.option(
    "--embed-model",
    is_flag=True,
    help="Put the bundle in the zip (no S3 at run time); always so for a non-S3 store.",
)
@click.option(
    "--memory",
    "memory_mb",
    type=click.IntRange(128, 10240),
    default=256,
    show_default=True,
    help="Function memory in MB, written into the templates.",
)
@click.option(
    "--local",
    is_flag=True,
    help="Also unpack the zip beside the templates and list serverless-offline in"
    " serverless.yml, so that osls invoke local and osls offline run it here.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the fetched runtime wheels here and reuse them in later builds.",
)
@click.option(
    "--compile-with",
    default=None,
    metavar="PYTHON",
    help="An interpreter of the target Python version, to ship byte code in the zip"
    " (default: python3.X on PATH or under pyenv; without one, cold starts compile at import).",
)
def package_lambda(
    ref: str,
    out_dir: Path,
    store: str,
    python_version: str,
    arch: str,
    upload: str,
    embed_model: bool,
    memory_mb: int,
    local: bool,
    cache_dir: Path | None,
    compile_with: str | None,
) -> None:
    """Build lambda.zip for REF with its SAM and Serverless templates.

    \b
    REF is name, name:3, name@alias or a bundle folder (default: diabetes).
    The zip holds the serving runtime and the wheels the model's format needs,
    built for the Lambda runtime; boto3 comes with Lambda.
    """
    # Imported here: packaging's dependencies are not needed by the other commands' start-up.
    from modelapi.deploy.lambda_zip import (
        MAX_ZIPPED_BYTES,
        LambdaTarget,
        build_lambda_zip,
        unpack_lambda_zip,
        write_templates,
    )

    parsed = parse_ref(ref)
    opened = open_store(store) if parsed.path is None else None
    bundle = load_bundle(parsed, opened, serving_only=True)
    from_s3 = opened is not None and opened.uri.startswith("s3://")
    embed = embed_model or not from_s3
    if embed and not embed_model:
        where = opened.uri if opened is not None else ref
        click.echo(f"embedding {bundle.manifest.model_id}: Lambda cannot read {where}")
    target = LambdaTarget(python_version, "arm64" if arch == "arm64" else "x86_64")
    built = build_lambda_zip(
        bundle,
        out_dir,
        target=target,
        embed=embed,
        cache_dir=cache_dir,
        compile_with=compile_with,
        direct_upload=upload == "direct",
    )
    templates = write_templates(
        out_dir,
        model_ref=bundle.manifest.model_id if embed else str(parsed),
        model_name=bundle.manifest.name,
        store_uri=None if embed or opened is None else opened.uri,
        target=target,
        zip_name=built.zip_path.name,
        memory_mb=memory_mb,
        local=local,
    )
    model = (
        f"{bundle.manifest.model_id} embedded"
        if embed
        else f"{parsed} read from {opened.uri if opened else store}"
    )
    click.echo(
        f"wrote {built.zip_path}: {_kb(built.zipped_bytes)} zipped,"
        f" {_kb(built.unzipped_bytes)} unzipped, {built.n_files} files"
        f" (python{target.python} {target.arch}; {', '.join(built.requirements)}; model {model})"
    )
    if not built.precompiled:
        click.echo(
            f"note: no python{target.python} found to precompile byte code (--compile-with);"
            " cold starts will compile modelapi at import"
        )
    if built.zipped_bytes > MAX_ZIPPED_BYTES:
        click.echo(
            f"note: over the {_kb(MAX_ZIPPED_BYTES)} Lambda takes in a direct upload: deploy with"
            " sam deploy or serverless deploy, which upload through S3"
        )
    click.echo(f"wrote {', '.join(str(path) for path in templates)}")
    if local:
        unpacked = unpack_lambda_zip(built, out_dir)
        click.echo(f"unpacked {', '.join(unpacked)} into {out_dir} for osls invoke local / offline")
    click.echo(
        f"deploy: cd {out_dir} && sam deploy --guided"
        "   (or: npm install && npx osls deploy --stage dev)"
    )


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


commands: list[click.Command] = [package]
