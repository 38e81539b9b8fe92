"""The deploy templates beside a Lambda zip: `template.yaml` (AWS SAM) and `serverless.yml` (v3).

Both grant read access to the model's keys only. Beside them goes a `package.json` that pins
the Serverless Framework v3 line (osls; `npx osls` alone fetches v4, which refuses
`frameworkVersion: "3"`) and serverless-offline, the last line whose peer is v3. With
`local`, `serverless.yml` also lists serverless-offline, for the unpacked layout that
`osls invoke local` and `osls offline` run (`modelapi package lambda --local`).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from modelapi.deploy.target import LambdaTarget, check_built_for, wheel_tags
from modelapi.errors import ConfigError, PackagingError

__all__ = ["NPM_TOOLS", "check_store_for_lambda", "write_templates"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"
# The npm packages (and exact versions) the generated project runs with; the test suite's
# tools/package.json pins the same ones.
NPM_TOOLS = {"osls": "3.77.1", "serverless-offline": "13.10.1"}
_PLACEHOLDER = re.compile(r"\{\{[a-z_]+\}\}")
_PREFIX = re.compile(r"([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)?")


def check_store_for_lambda(store_uri: str) -> tuple[str, str]:
    """Split an `s3://bucket/prefix` store into (bucket, prefix); refuse anything else."""
    if not store_uri.startswith("s3://"):
        raise ConfigError(f"store {store_uri[:80]!r} is not an s3:// store that Lambda can read")
    bucket, _, prefix = store_uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ConfigError("the store needs a bucket name, as in s3://bucket/models")
    return bucket, prefix.strip("/")


def write_templates(
    out_dir: Path,
    *,
    model_ref: str,
    model_name: str,
    store_uri: str | None,
    target: LambdaTarget | None = None,
    zip_name: str = "lambda.zip",
    memory_mb: int = 256,
    local: bool = False,
) -> list[Path]:
    """Write template.yaml (AWS SAM) and serverless.yml (v3) for the zip; None = embedded model.

    Both name `target`'s runtime and architecture. Raises PackagingError when the zip already
    in `out_dir` was built for another one.
    """
    target = target or LambdaTarget()
    if (out_dir / zip_name).is_file():
        _check_zip(out_dir / zip_name, target)
    bucket, prefix = check_store_for_lambda(store_uri) if store_uri else ("", "")
    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(
            f"store prefix {prefix[:80]!r} cannot be used in an IAM policy: use letters, digits,"
            " '_', '.', '-' and '/' only"
        )
    keys = f"{prefix}/{model_name}" if prefix else model_name
    environment = [f"    MODELAPI_MODEL: {json.dumps(model_ref)}"]
    iam = ""
    if store_uri:
        environment.append(f"    MODELAPI_STORE: {json.dumps(f's3://{bucket}/{prefix}')}")
        iam = _SERVERLESS_IAM.format(
            objects=json.dumps(f"arn:aws:s3:::{bucket}/{keys}/*"),
            bucket=json.dumps(f"arn:aws:s3:::{bucket}"),
            prefix=json.dumps(f"{keys}/*"),
        )
    values = {
        "model_ref": model_ref,
        "model_name": model_name,
        "bucket": bucket,
        "prefix": prefix,
        "service": "modelapi-" + re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-"),
        "runtime": target.runtime,
        "arch": target.arch,
        "zip_name": zip_name,
        "memory_mb": str(memory_mb),
        "environment": "\n".join(environment),
        "iam": iam,
        "plugins": _LOCAL_PLUGINS if local else "",
    }
    written = []
    for name in ("template.yaml", "serverless.yml"):
        text = (_TEMPLATES / name).read_text()
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        if _PLACEHOLDER.search(text):
            raise PackagingError(f"{name}: a placeholder was left unfilled; this is a bug")
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    package_json = {
        "name": values["service"],
        "private": True,
        "description": "Serverless Framework v3 tools for serverless.yml: npm install; npx osls",
        "devDependencies": NPM_TOOLS,
    }
    (out_dir / "package.json").write_text(json.dumps(package_json, indent=2) + "\n")
    # serverless-offline names `serverless` as its peer; osls is that peer under another name.
    (out_dir / ".npmrc").write_text("legacy-peer-deps=true\n")
    written += [out_dir / "package.json", out_dir / ".npmrc"]
    return written


def _check_zip(zip_path: Path, target: LambdaTarget) -> None:
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = archive.namelist()
            tags = [
                (name, wheel_tags(archive.read(name).decode("utf-8", "replace")))
                for name in names
                if name.endswith(".dist-info/WHEEL")
            ]
    except zipfile.BadZipFile:
        raise PackagingError(
            f"{zip_path} is not a zip file: build it with modelapi package lambda"
        ) from None
    check_built_for(target, names, tags)


# serverless-offline runs the handlers from the unpacked files beside serverless.yml.
_LOCAL_PLUGINS = """
plugins:
  - serverless-offline
"""

# Same statements as template.yaml: this model's keys only, listing limited to them too.
_SERVERLESS_IAM = """  iam:
    role:
      statements:
        - Effect: Allow
          Action: s3:GetObject
          Resource: {objects}
        - Effect: Allow
          Action: s3:ListBucket
          Resource: {bucket}
          Condition:
            StringLike:
              s3:prefix: {prefix}
"""
