"""The pipeline.json forest served: over HTTP against its ONNX copy, and in a Lambda zip.

Two bundle folders hold the same 100-tree forest: one served from `pipeline.json` (as trained),
one from `model.onnx` (the forest converted by modelapi's ONNX exporter, as pipeline_run does).
`modelapi serve FOLDER` runs each on the server core, both up at once; each counts as up at
its first answer with scikit-learn's label for the example, and the single-row load goes to
them in interleaved rounds: the ratio is the median of the per-round ratios.

The Lambda zip embeds the pipeline.json bundle. Its size is judged without the model's own
JSON (the zip's size minus that entry's compressed size); its cold starts are lambda_run's.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from benchmarks.contract import PIMA_EXAMPLE
from benchmarks.lambda_run import base_env, build_zip, lambda_figures, write_event
from benchmarks.options import add_data_argument
from benchmarks.pipeline_run import predict_file_figures, row_figures, train_models
from benchmarks.processes import Answer, Server, free_port, pinned, start_server
from benchmarks.wrk import merged, ratios, run_rounds

__all__ = [
    "SERVED",
    "example_label",
    "measure_forest_lambda",
    "measure_pipeline",
    "race_forest",
    "write_forest_bundles",
    "zip_without",
]

# The two ways the forest is served, the pipeline.json one first.
SERVED = ("pipeline", "onnx")


def write_forest_bundles(forest: object, folder: Path) -> dict[str, Path]:
    """Write the forest's bundle folder twice: served from pipeline.json, and from model.onnx."""
    import msgspec

    from modelapi.bundle import Bundle, artifact_entry, write_bundle
    from modelapi.formats.onnx import FILE_NAME
    from modelapi.formats.onnx import export as onnx_export

    bundle = forest.bundle  # type: ignore[attr-defined]
    manifest = msgspec.structs.replace(bundle.manifest, version=1)
    graph = onnx_export(
        forest.estimator,  # type: ignore[attr-defined]
        manifest.features,
        manifest.task,
        manifest.classes,
    )
    onnx_files = {FILE_NAME: graph}
    onnx_manifest = msgspec.structs.replace(
        manifest, serving=FILE_NAME, artifacts={FILE_NAME: artifact_entry(graph)}
    )
    pipeline_files = {manifest.serving: bundle.files[manifest.serving]}
    pipeline_manifest = msgspec.structs.replace(
        manifest, artifacts={manifest.serving: manifest.artifacts[manifest.serving]}
    )
    folders = {}
    for name, written in (
        ("pipeline", Bundle(pipeline_manifest, pipeline_files)),
        ("onnx", Bundle(onnx_manifest, onnx_files)),
    ):
        target = folder / f"forest-{name}"
        shutil.rmtree(target, ignore_errors=True)
        folders[name] = write_bundle(written, target)
    return folders


def example_label(forest: object, dataset: object) -> int:
    """scikit-learn's label for the example, from the fitted forest itself."""
    import pandas as pd

    from benchmarks.contract import FIELDS

    columns = list(dataset.X.columns)  # type: ignore[attr-defined]
    example = json.loads(PIMA_EXAMPLE)
    frame = pd.DataFrame([[example[name] for name in FIELDS]], columns=columns)
    return int(forest.estimator.predict(frame)[0])  # type: ignore[attr-defined]


def _launch(
    modelapi: list[str],
    name: str,
    folder: Path,
    expected: int,
    *,
    env: Mapping[str, str],
    logs: Path,
) -> Server:
    def is_correct(answer: Answer) -> bool:
        if answer.status != 200:
            return False
        found = answer.json()
        return isinstance(found, dict) and found.get("outcome") == expected

    port = free_port()
    command = [*modelapi, "serve", str(folder), "--port", str(port), "--log-level", "warning"]
    return start_server(
        f"forest {name}",
        pinned(command),
        port,
        PIMA_EXAMPLE,
        is_correct,
        log=logs / f"forest-{name}.log",
        env=env,
        cwd=folder.parent,
    )


def race_forest(
    modelapi: list[str],
    folders: Mapping[str, Path],
    expected: int,
    example_body: Path,
    *,
    env: Mapping[str, str],
    logs: Path,
    rounds: int,
    warmup_s: float,
    duration_s: float,
    connections: int,
) -> dict[str, object]:
    """Both servers up at once; interleaved single-row rounds: figures and pipeline_to_onnx."""
    servers: dict[str, Server] = {}
    try:
        for name in SERVED:
            servers[name] = _launch(modelapi, name, folders[name], expected, env=env, logs=logs)
        targets = {name: (servers[name].url + "/predict", example_body) for name in SERVED}
        loaded = run_rounds(
            targets,
            rounds=rounds,
            warmup_s=warmup_s,
            duration_s=duration_s,
            connections=connections,
        )
    finally:
        for server in servers.values():
            server.stop()
    found: dict[str, object] = {name: merged(runs) for name, runs in loaded.items()}
    found["ratios"] = ratios(loaded, ("onnx",), of="pipeline")
    return found


def zip_without(zip_path: Path, suffix: str) -> tuple[int, int]:
    """(the zip's size, the compressed size of its one entry whose name ends with `suffix`).

    Raises RuntimeError unless exactly one entry ends so.
    """
    with zipfile.ZipFile(zip_path) as archive:
        entries = [i for i in archive.infolist() if i.filename.endswith(suffix)]
    if len(entries) != 1:
        raise RuntimeError(f"{zip_path.name} has {len(entries)} entries named *{suffix}, not one")
    return zip_path.stat().st_size, entries[0].compress_size


def measure_forest_lambda(
    modelapi: list[str],
    folder: Path,
    expected: int,
    *,
    work: Path,
    scratch: Path,
    runtime: Path,
    env: Mapping[str, str],
    n_cold: int,
) -> dict[str, object]:
    """`modelapi package lambda FOLDER --embed-model`: sizes and cold starts of the forest's zip."""
    out = work / "lambda-forest"
    cache = ["--cache-dir", str(work / "wheels")]
    sizes = build_zip(
        modelapi, out, args=[str(folder), "--embed-model", *cache], env=env, cwd=scratch
    )
    zipped, model_bytes = zip_without(out / "lambda.zip", "pipeline.json")

    def check(answer: object) -> bool:
        if not isinstance(answer, dict) or answer.get("statusCode") != 200:
            return False
        body = json.loads(answer["body"])
        return isinstance(body, dict) and body.get("outcome") == expected

    event = write_event(scratch / "event-forest.json", PIMA_EXAMPLE)
    colds = lambda_figures(
        "forest", out / "lambda.zip", event, work, runtime, {}, check, n_cold=n_cold, n_warm=0
    )
    return {
        **sizes,
        "pipeline_json_compressed_bytes": model_bytes,
        "zip_without_model_bytes": zipped - model_bytes,
        **colds,
    }


Phase = Callable[[str], AbstractContextManager[None]]


def measure_pipeline(
    modelapi: list[str],
    data: Path,
    phase: Phase,
    *,
    work: Path,
    scratch: Path,
    logs: Path,
    runtime: Path,
    example_body: Path,
    server_env: Mapping[str, str],
    per_row: tuple[int, int],
    load: tuple[int, float, float, int],
    n_cold: int,
) -> dict[str, object]:
    """Every pipeline.json figure of a run, each part in its own `phase` (a failure is kept there).

    `per_row` is (rows, repeats) for the in-process times; `load` is (rounds, warm-up s,
    seconds per round, connections) for the race over HTTP.
    """
    found: dict[str, object] = {}
    trained = []
    with phase("pipeline in process"):
        models = train_models(data)
        trained.append(models)
        n_rows, repeats = per_row
        found["in_process"] = row_figures(models, n_rows=n_rows, repeats=repeats)
        found["predict_file"] = predict_file_figures(models.forest, work, 1_000_000)
        print(f"  in process: {json.dumps(found)}", flush=True)
    if not trained:
        return found
    folders = write_forest_bundles(models.forest, scratch)
    label = example_label(models.forest, models.dataset)
    rounds, warmup_s, duration_s, connections = load
    with phase("pipeline http"):
        found["http"] = race_forest(
            modelapi,
            folders,
            label,
            example_body,
            env=server_env,
            logs=logs,
            rounds=rounds,
            warmup_s=warmup_s,
            duration_s=duration_s,
            connections=connections,
        )
    with phase("pipeline lambda"):
        env = {k: v for k, v in base_env().items() if not k.startswith("MODELAPI_")}
        found["lambda"] = measure_forest_lambda(
            modelapi,
            folders["pipeline"],
            label,
            work=work,
            scratch=scratch,
            runtime=runtime,
            env=env,
            n_cold=n_cold,
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """Train the forest, package it for Lambda and print its sizes and cold starts as JSON."""
    import argparse
    import sys

    from benchmarks.install import ensure_lambda_runtime

    repo = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description="the forest's Lambda zip: sizes, cold starts")
    parser.add_argument("--cold", type=int, default=10, help="cold starts (median reported)")
    add_data_argument(parser)
    parser.add_argument("--work", type=Path, default=repo / "benchmarks" / ".work")
    args = parser.parse_args(argv)
    work: Path = args.work
    scratch = work / "run" / "forest-lambda"
    scratch.mkdir(parents=True, exist_ok=True)
    models = train_models(args.data)
    folders = write_forest_bundles(models.forest, scratch)
    env = {k: v for k, v in base_env().items() if not k.startswith("MODELAPI_")}
    figures = measure_forest_lambda(
        [str(Path(sys.executable).parent / "modelapi")],
        folders["pipeline"],
        example_label(models.forest, models.dataset),
        work=work,
        scratch=scratch,
        runtime=ensure_lambda_runtime(work),
        env=env,
        n_cold=args.cold,
    )
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
