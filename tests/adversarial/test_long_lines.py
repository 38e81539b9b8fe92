"""`modelapi predict` keeps memory flat whatever the longest line: a long line is refused.

Before, a block was read until it held its count of lines, so one 300 MiB line was held whole
(and copied) and the process peaked at 2.19 GB. Now a line longer than 1 MiB is refused with
an error naming it, and memory stays where it is for a file of short lines. The peak resident
size is the child's own, from getrusage in the child.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from modelapi.scoring.stream import MAX_LINE_BYTES
from tests.servers import clean_environment

HEADER = (
    b"Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,DiabetesPedigreeFunction,Age\n"
)
ROW = b"6,148,72,35,0,33.6,0.627,50\n"
LONG_BYTES = 64 * 1024 * 1024
# What a long line may add to the peak over a file of short lines; the line alone is 64 MiB.
MAX_GROWTH_BYTES = 16 * 1024 * 1024
_RUN = (
    "import resource, sys\n"
    "from modelapi.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _predict(path: Path, cwd: Path) -> tuple[int, str, int]:
    """Run `modelapi predict diabetes PATH`; its exit code, stderr and peak RSS in bytes."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUN,
            "predict",
            "diabetes",
            str(path),
            "-o",
            str(cwd / "out.csv"),
            "--workers",
            "1",
            "--no-progress",
            "--store",
            str(cwd / "models"),
        ],
        cwd=cwd,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    peak = re.search(r"PEAK (\d+)", result.stderr)
    assert peak is not None, result.stderr[-2000:]
    return result.returncode, result.stderr, int(peak.group(1))


def _write(path: Path, *parts: bytes, long_line_at: int | None = None) -> Path:
    with path.open("wb") as out:
        for index, part in enumerate(parts):
            if index == long_line_at:
                for _ in range(LONG_BYTES // (1 << 20)):
                    out.write(b"7" * (1 << 20))
            out.write(part)
    return path


@pytest.fixture(scope="module")
def short_peak(tmp_path_factory: pytest.TempPathFactory) -> int:
    """The peak of scoring a file of short lines (flat, whatever its length)."""
    cwd = tmp_path_factory.mktemp("short")
    path = _write(cwd / "short.csv", HEADER, ROW * 50_000)
    code, stderr, peak = _predict(path, cwd)
    assert code == 0, stderr
    return peak


@pytest.mark.parametrize(
    ("parts", "at", "line"),
    [
        ((HEADER, ROW, ROW, b",1\n", ROW), 3, 4),
        ((HEADER, ROW, b""), 2, 3),
        ((b"", HEADER, ROW), 0, 1),
    ],
    ids=["a long row", "a last line without a line end", "a long header"],
)
def test_a_line_over_the_limit_is_refused_naming_it_and_memory_stays_flat(
    tmp_path: Path, short_peak: int, parts: tuple[bytes, ...], at: int, line: int
) -> None:
    path = _write(tmp_path / "long.csv", *parts, long_line_at=at)
    code, stderr, peak = _predict(path, tmp_path)
    assert code == 1
    assert f"error: line {line}: is longer than {MAX_LINE_BYTES} bytes" in stderr
    assert peak - short_peak < MAX_GROWTH_BYTES, (short_peak, peak)


def test_a_line_just_under_the_limit_is_read(tmp_path: Path) -> None:
    cell = b"1" * (MAX_LINE_BYTES - len(ROW) - 1)
    path = _write(tmp_path / "wide.csv", HEADER, ROW, ROW[:-1] + cell + b"\n")
    code, stderr, _ = _predict(path, tmp_path)
    assert code == 1, "the row is read, and refused as a row"
    assert "error: line 3" in stderr
    assert "longer than" not in stderr
