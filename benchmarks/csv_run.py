"""`modelapi predict` on generated Pima-shaped CSV files: rows/s and peak memory.

The files are generated under benchmarks/.work/ (never committed) from a fixed seed, with
values inside the Pima training ranges; the smaller file is the head of the larger one, so
the two runs differ only in length and memory can be compared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from benchmarks.processes import EVERY_CPU, pinned, run_measured

__all__ = [
    "COLUMNS",
    "generate_csv",
    "head_csv",
    "measure_predict",
    "parse_scored",
    "predict_figures",
]

# (column, low, high, decimals): the Pima features and their training ranges.
COLUMNS = (
    ("Pregnancies", 0, 17, 0),
    ("Glucose", 44, 199, 0),
    ("BloodPressure", 24, 122, 0),
    ("SkinThickness", 0, 99, 0),
    ("Insulin", 0, 846, 0),
    ("BMI", 18.0, 67.1, 1),
    ("DiabetesPedigreeFunction", 0.078, 2.42, 3),
    ("Age", 21, 81, 0),
)
_SCORED = re.compile(r"scored (\d+) rows .* in ([0-9.]+) s(?:, ([0-9,]+) rows/s)?")


def generate_csv(path: Path, n_rows: int, *, seed: int = 0) -> Path:
    """Write `n_rows` Pima-shaped rows (with a header) to `path`, unless it is already there."""
    if path.is_file() and path.with_suffix(".done").is_file():
        return path
    import numpy as np

    rng = np.random.default_rng(seed)
    temporary = path.with_suffix(".tmp")
    chunk = 100_000
    formats = [f"%.{decimals}f" for _, _, _, decimals in COLUMNS]
    with temporary.open("wb") as out:
        out.write((",".join(name for name, *_ in COLUMNS) + "\n").encode())
        for start in range(0, n_rows, chunk):
            size = min(chunk, n_rows - start)
            columns = []
            for _, low, high, decimals in COLUMNS:
                if decimals:
                    columns.append(rng.uniform(low, high, size).round(decimals))
                else:
                    columns.append(rng.integers(low, high + 1, size).astype(float))
            np.savetxt(out, np.column_stack(columns), fmt=formats, delimiter=",")
    temporary.replace(path)
    path.with_suffix(".done").write_text(f"{n_rows} rows, seed {seed}\n")
    return path


def head_csv(source: Path, path: Path, n_rows: int) -> Path:
    """Write the header and the first `n_rows` rows of `source` to `path`."""
    with source.open("rb") as read, path.open("wb") as out:
        for i, line in enumerate(read):
            if i > n_rows:
                break
            out.write(line)
    return path


def parse_scored(stderr: str) -> tuple[int, float] | None:
    """(rows, seconds) from the `scored N rows ... in S s` line of `modelapi predict`."""
    match = _SCORED.search(stderr)
    return (int(match.group(1)), float(match.group(2))) if match else None


def predict_figures(
    modelapi: Sequence[str], csv_path: Path, n_rows: int, work: Path
) -> dict[str, object]:
    """Run `modelapi predict diabetes CSV -o OUT` on every core (a scoring worker each, the
    command's default): rows/s launch to exit, peak RSS."""
    out = work / f"scored-{n_rows}.csv"
    command = pinned([*modelapi, "predict", "diabetes", str(csv_path), "-o", str(out)], EVERY_CPU)
    seconds, peak_rss, stderr = run_measured([*command, "--no-progress"], cwd=work)
    with out.open("rb") as scored:
        n_lines = sum(block.count(b"\n") for block in iter(lambda: scored.read(1 << 20), b""))
    out.unlink()
    if n_lines != n_rows + 1:
        raise RuntimeError(f"modelapi predict wrote {n_lines} lines for {n_rows} rows")
    reported = parse_scored(stderr)
    figures: dict[str, object] = {
        "rows": n_rows,
        "wall_s": round(seconds, 3),
        "rows_per_s": round(n_rows / seconds),
        "peak_rss_bytes": peak_rss,
    }
    if reported is not None:
        figures["scoring_s"] = reported[1]
        figures["scoring_rows_per_s"] = round(reported[0] / reported[1]) if reported[1] else None
    return figures


def measure_predict(
    modelapi: Sequence[str], work: Path, scratch: Path, repeats: int
) -> dict[str, object]:
    """`modelapi predict` on 250,000 and 1,000,000 generated rows: each size's median run."""
    big = generate_csv(work / "pima-1000000.csv", 1_000_000)
    small = head_csv(big, work / "pima-250000.csv", 250_000)
    found: dict[str, object] = {}
    for n_rows, path in ((250_000, small), (1_000_000, big)):
        runs = [predict_figures(modelapi, path, n_rows, scratch) for _ in range(repeats)]
        runs.sort(key=lambda r: float(str(r["rows_per_s"])))
        found[f"rows_{n_rows}"] = runs[len(runs) // 2]
        print(f"  {n_rows:,} rows: {runs[len(runs) // 2]}", flush=True)
    return found
