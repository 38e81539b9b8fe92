"""pipeline.json in process: one row through each runtime, blocks through numpy, and a 1 M-row file.

Measured in one run, on the same models: a 100-tree random forest of depth 10 and a
100-iteration HistGradientBoosting, both trained on Pima. One row is answered by modelapi's
compiled pipeline.json, by the same file walked by a plain loop (every tree interpreted),
by onnxruntime serving the same forest in modelapi (`model.onnx`, converted without the
check: skl2onnx's missing-value rule differs, the speed does not), and by scikit-learn
itself. Blocks go through the numpy evaluator; `modelapi predict MODEL file.csv -o out.csv`
is timed from launch to exit on a generated 1 M-row file.

    python3 -m uv run --locked --all-extras python -m benchmarks.pipeline_run [--rows N]

`pipeline_figures(pima_csv, work)` returns the figures as a dict; `benchmarks/run` trains the
models once (`train_models`) and takes `row_figures` and `predict_file_figures` into its table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.options import add_data_argument

__all__ = ["Models", "pipeline_figures", "predict_file_figures", "row_figures", "train_models"]

REPO = Path(__file__).resolve().parent.parent
_REPEATS = 5


def _per_row_us(predict: Callable[..., object], rows: Sequence[object], repeats: int) -> float:
    """Median over repeats of the mean time to answer one row alone (`predict([row])`), in µs.

    The time is this process's CPU time: on a shared machine, wall-clock time also counts the
    other processes' turns. (The thread pools of onnxruntime and scikit-learn are counted in
    full.)
    """
    times = []
    for _ in range(repeats):
        started = time.process_time()
        for row in rows:
            predict([row])
        times.append((time.process_time() - started) / len(rows))
    return round(statistics.median(times) * 1e6, 2)


@dataclass(frozen=True, slots=True)
class Models:
    """The Pima data set and the two models trained on it (modelapi's TrainResults, untyped)."""

    dataset: object
    forest: object
    boosting: object


def train_models(pima_csv: Path) -> Models:
    """Train the 100-tree forest (depth 10) and the 100-iteration HistGradientBoosting."""
    from modelapi.training.data import load_dataset
    from modelapi.training.workflow import train

    dataset = load_dataset(pima_csv)
    forest = train(
        dataset,
        model="random_forest",
        params={"n_estimators": 100, "max_depth": 10},
        name="forest",
    )
    boosting = train(dataset, model="hist_gradient_boosting", params={"max_iter": 100})
    return Models(dataset, forest, boosting)


def row_figures(models: Models, *, n_rows: int = 500, repeats: int = _REPEATS) -> dict[str, object]:
    """µs per row for each runtime (over `n_rows` rows), numpy block rows/s, load times, sizes."""
    import numpy as np

    from modelapi.formats import pipeline
    from modelapi.formats.onnx import OnnxModel
    from modelapi.formats.onnx import export as onnx_export
    from modelapi.formats.pipeline import tree_code
    from modelapi.predictor import Predictor
    from modelapi.training.check_rows import frame_rows

    dataset = models.dataset
    figures: dict[str, object] = {}
    for name, result in (("forest", models.forest), ("hist_gradient_boosting", models.boosting)):
        manifest = result.manifest  # type: ignore[attr-defined]
        data = result.bundle.files["pipeline.json"]  # type: ignore[attr-defined]
        features = manifest.features
        rows = frame_rows(dataset.X, features)[:n_rows]  # type: ignore[attr-defined]
        started = time.perf_counter()
        predictor = Predictor(result.bundle)  # type: ignore[attr-defined]
        load_s = time.perf_counter() - started
        estimator = result.estimator  # type: ignore[attr-defined]
        frames = [dataset.X.iloc[[i]] for i in range(100)]  # type: ignore[attr-defined]
        sklearn_times = []
        for _ in range(3):
            started = time.process_time()
            for frame in frames:
                estimator.predict_proba(frame)
            sklearn_times.append((time.process_time() - started) / len(frames))
        entry: dict[str, object] = {
            "pipeline_json_bytes": len(data),
            "load_s": round(load_s, 3),
            "pipeline_us_per_row": _per_row_us(predictor.model.predict, rows, repeats),
            "pipeline_predictor_us_per_row": _per_row_us(predictor.predict, rows, repeats),
            "sklearn_us_per_row": round(statistics.median(sklearn_times) * 1e6, 1),
        }
        budget = tree_code.MAX_COMPILED_NODES
        tree_code.MAX_COMPILED_NODES = 0  # every tree walked by the loop
        try:
            walked = pipeline.load(
                data, features=features, task=manifest.task, classes=manifest.classes
            )
        finally:
            tree_code.MAX_COMPILED_NODES = budget
        entry["plain_loop_us_per_row"] = _per_row_us(walked.predict, rows, repeats)
        if name == "forest":
            graph = onnx_export(estimator, features, manifest.task, manifest.classes)
            onnx = OnnxModel(graph, features=features, task=manifest.task, classes=manifest.classes)
            entry["onnxruntime_us_per_row"] = _per_row_us(onnx.predict, rows, repeats)
            model = predictor.model
            evaluator = model.block_evaluator()  # type: ignore[attr-defined]
            block = np.tile(np.asarray(rows, dtype=np.float64), (400, 1))
            times = []
            for _ in range(3):
                started = time.process_time()
                evaluator.columns(block)
                times.append(time.process_time() - started)
            entry["numpy_block_rows_per_s_cpu"] = round(len(block) / min(times))
        figures[name] = entry
    return figures


def predict_file_figures(forest: object, work: Path, n_rows: int) -> dict[str, object]:
    """`modelapi predict` on the forest from launch to exit: seconds and rows/s."""
    import shutil

    from benchmarks.csv_run import generate_csv
    from benchmarks.processes import EVERY_CPU, SERVING_PACKAGES, byte_compile, pinned

    work.mkdir(parents=True, exist_ok=True)
    byte_compile(SERVING_PACKAGES)
    store = work / "pipeline-store"
    shutil.rmtree(store, ignore_errors=True)  # a store never overwrites: start afresh
    stored = forest.store(str(store))  # type: ignore[attr-defined]
    source = generate_csv(work / f"pima-{n_rows}.csv", n_rows)
    out = work / "pipeline-scored.csv"
    command = [sys.executable, "-m", "modelapi", "predict", stored.model_id, str(source)]
    command = pinned([*command, "-o", str(out), "--store", str(store), "--no-progress"], EVERY_CPU)
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, env=dict(os.environ), timeout=900
    )
    seconds = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        raise RuntimeError(f"modelapi predict failed: {done.stderr[-2000:]}")
    out.unlink()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return {
        "rows": n_rows,
        "launch_to_exit_s": round(seconds, 2),
        "rows_per_s": round(n_rows / seconds),
        "cpu_s": round(cpu, 2),
        "workers": f"the default: one per CPU ({len(EVERY_CPU)}), at most 4",
    }


def pipeline_figures(pima_csv: Path, work: Path, n_rows: int = 1_000_000) -> dict[str, object]:
    """Every figure of this benchmark, with the machine's load before and after."""
    figures: dict[str, object] = {"load_average_start": list(os.getloadavg())}
    models = train_models(pima_csv)
    figures["in_process"] = row_figures(models)
    figures["predict_file"] = predict_file_figures(models.forest, work, n_rows)
    figures["load_average_end"] = list(os.getloadavg())
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the CSV file")
    add_data_argument(parser)
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work")
    args = parser.parse_args(argv)
    print(json.dumps(pipeline_figures(args.data, args.work, args.rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
