"""Columnar request bodies in process: rows/s per body shape, with numpy's block path and without.

Each body holds the same generated Pima-shaped rows (values inside the training ranges, as
`csv_run` generates them) and is answered by `Service.handle` for the built-in linear model,
as the HTTP and Lambda adapters call it; no socket, one thread. Every answer is checked against
the array-of-objects answer first (MLflow bodies answer `{"predictions": <that array>}`, CSV
lines without a header the rows of the CSV answer), with numpy and without.

    python3 -m uv run --locked --all-extras python -m benchmarks.bodies_run [--rows N]

`bodies_figures(n_rows)` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import msgspec

from benchmarks.csv_run import COLUMNS
from modelapi.bundle import read_bundle
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.scoring import block_bodies
from modelapi.service import Request, Response, Service
from modelapi.source import ModelSource
from modelapi.store.builtin import BUILTIN_ROOT

__all__ = ["bodies_figures", "bodies_of", "without_numpy"]

_REPEATS = 7
_JSON = {"content-type": "application/json"}
_CSV = {"content-type": "text/csv"}


def _rows(n_rows: int, seed: int = 0) -> list[list[float | int]]:
    import random

    rng = random.Random(seed)
    rows: list[list[float | int]] = []
    for _ in range(n_rows):
        row: list[float | int] = []
        for _, low, high, decimals in COLUMNS:
            if decimals:
                row.append(round(rng.uniform(low, high), decimals))
            else:
                row.append(rng.randint(int(low), int(high)))
        rows.append(row)
    return rows


def bodies_of(predictor: Predictor, n_rows: int) -> dict[str, Request]:
    """The requests measured, by name: the same rows in every body."""
    features = predictor.manifest.features
    rows = _rows(n_rows)
    keys = [f.key for f in features]
    columns = [f.column for f in features]
    objects = [dict(zip(keys, row, strict=True)) for row in rows]
    lines = "".join(",".join(map(str, row)) + "\n" for row in rows)
    split = {"dataframe_split": {"columns": columns, "data": rows}}
    inputs = {"inputs": {key: [row[i] for row in rows] for i, key in enumerate(keys)}}

    def post(path: str, headers: dict[str, str], body: bytes) -> Request:
        return Request("POST", path, headers, body)

    return {
        "array of objects (/predict)": post("/predict", _JSON, msgspec.json.encode(objects)),
        "dataframe_split": post("/predict", _JSON, msgspec.json.encode(split)),
        "dataframe_split, json.dumps spacing": post("/predict", _JSON, json.dumps(split).encode()),
        "dataframe_records": post(
            "/predict", _JSON, msgspec.json.encode({"dataframe_records": objects})
        ),
        "instances, arrays in order": post(
            "/predict", _JSON, msgspec.json.encode({"instances": rows})
        ),
        "inputs, object of columns": post("/predict", _JSON, msgspec.json.encode(inputs)),
        "text/csv without header (/invocations)": post("/invocations", _CSV, lines.encode()),
        "text/csv with header (/predict)": post(
            "/predict", _CSV, (",".join(columns) + "\n" + lines).encode()
        ),
    }


@contextmanager
def without_numpy() -> Iterator[None]:
    """numpy made unimportable for the block path, as in the slim serving install."""
    saved_module, saved_blocks = sys.modules.get("numpy"), dict(block_bodies._blocks)
    sys.modules["numpy"] = None  # type: ignore[assignment]
    block_bodies._blocks.clear()
    try:
        yield
    finally:
        if saved_module is not None:
            sys.modules["numpy"] = saved_module
        block_bodies._blocks.clear()
        block_bodies._blocks.update(saved_blocks)


def _rows_per_s(handle: Callable[[Request], Response], request: Request, n_rows: int) -> int:
    """The best of repeats of rows answered per second of this process's CPU time.

    The best, not the median: on a shared machine the other processes only ever slow a
    repeat down (caches, a shared core), so the fastest is the nearest to the code's own cost.
    """
    handle(request)
    rates = []
    for _ in range(_REPEATS):
        n_calls = 0
        started = time.process_time()
        while (elapsed := time.process_time() - started) < 0.3:
            handle(request)
            n_calls += 1
        rates.append(n_calls * n_rows / elapsed)
    return round(max(rates))


def _expected(service: Service, requests: dict[str, Request]) -> dict[str, bytes]:
    objects = service.handle(requests["array of objects (/predict)"]).body
    csv = service.handle(requests["text/csv with header (/predict)"]).body
    return {
        name: objects
        if name.startswith("array")
        else csv
        if "with header" in name
        else csv.partition(b"\n")[2]
        if name.startswith("text/csv")
        else b'{"predictions":' + objects + b"}"
        for name in requests
    }


def bodies_figures(n_rows: int = 1000) -> dict[str, dict[str, int]]:
    """rows/s per body shape, {"numpy": ..., "pure Python": ...}, answers checked first."""
    predictor = Predictor(read_bundle(BUILTIN_ROOT / "diabetes" / "1"))
    service = Service(ModelSource.of(predictor), Settings(store="/nonexistent/models"))
    requests = bodies_of(predictor, n_rows)
    expected = _expected(service, requests)
    figures: dict[str, dict[str, int]] = {name: {} for name in requests}
    for mode in ("numpy", "pure Python"):
        with without_numpy() if mode == "pure Python" else _nothing():
            for name, request in requests.items():
                answer = service.handle(request)
                if answer.status != 200 or answer.body != expected[name]:
                    raise RuntimeError(f"{name} ({mode}) answered otherwise: {answer.status}")
                figures[name][mode] = _rows_per_s(service.handle, request, n_rows)
    return figures


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def main(argv: list[str] | None = None) -> int:
    """Print the table of rows/s per body shape."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows per request (1000)")
    args = parser.parse_args(argv)
    figures = bodies_figures(args.rows)
    width = max(len(name) for name in figures)
    out = [f"{'body (' + str(args.rows) + ' rows)':<{width}}  {'numpy':>12}  {'pure Python':>12}"]
    for name, rates in figures.items():
        out.append(f"{name:<{width}}  {rates['numpy']:>12,}  {rates['pure Python']:>12,}")
    sys.stdout.write("\n".join(out) + "\nrows/s of one process's CPU time, in process\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
