"""Precompiled tree code for a Lambda package whose embedded model is a `pipeline.json`.

A large tree model's generated code is compiled in groups when the model loads, which is
most of a cold start. Here the package's builder generates those groups from the embedded
file, as a loader would (`modelapi.formats.pipeline.code_cache`), and an interpreter of the
target Python version compiles them; the result goes into the zip, named by the file's
sha256. Without such an interpreter, or for another format, the package has none, and the
model compiles its code when it loads, as it always could.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from modelapi.bundle import Bundle
from modelapi.deploy.modules import PACKAGE_ROOT

__all__ = ["precompiled_entries"]


def precompiled_entries(bundle: Bundle, python: str | None) -> dict[str, bytes]:
    """Archive name -> bytes of the precompiled groups of the bundle's `pipeline.json`.

    Empty for another format, a model without groups, no target interpreter, or an
    interpreter that fails (the package then works as one without).
    """
    from modelapi.formats.pipeline import FILE_NAME, code_cache
    from modelapi.formats.pipeline.model import decode_spec
    from modelapi.formats.pipeline.validation import check_spec

    manifest = bundle.manifest
    if python is None or manifest.serving != FILE_NAME or FILE_NAME not in bundle.files:
        return {}
    data = bundle.files[FILE_NAME]
    spec = decode_spec(data)
    stages = check_spec(spec, manifest.features, manifest.task, manifest.classes)
    job = code_cache.group_job(spec, stages, tuple(manifest.classes or ()))
    if not any(job):
        return {}
    try:
        done = subprocess.run(
            [python, *code_cache.COMPILE_OPTIONS, "-c", code_cache.COMPILE_SCRIPT],
            input=json.dumps(job).encode(),
            capture_output=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if done.returncode != 0 or len(done.stdout) < 5:
        return {}
    package = Path(code_cache.__file__).resolve().parent.relative_to(PACKAGE_ROOT.parent)
    name = f"{package.as_posix()}/{code_cache.FOLDER_NAME}/{code_cache.cache_name(data)}"
    return {name: code_cache.cache_bytes(data, done.stdout)}
