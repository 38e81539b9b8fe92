"""A run's report: flat figures, the machine and commit, the JSON, the chart and the tables."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.chart import draw_chart
from benchmarks.comparison import format_comparison
from benchmarks.targets import Verdict, format_table, summary

__all__ = ["REPO", "commit", "flatten", "load_text", "machine", "publish", "shown"]

REPO = Path(__file__).resolve().parent.parent


def flatten(results: Mapping[str, object], prefix: str = "") -> dict[str, float]:
    """Dotted names for every number in nested results; latency_ms.p99 -> p99_ms."""
    flat: dict[str, float] = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if key == "latency_ms":
                flat.update({f"{prefix}{k}_ms": float(v) for k, v in value.items()})
            else:
                flat.update(flatten(value, name + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def machine() -> dict[str, object]:
    """The CPU model, core count, memory, kernel and Python of this machine."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def commit() -> str | None:
    """The repository's short commit, or None outside a git checkout."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


def shown(path: Path) -> str:
    """A written file's path for the report: from the repository root when inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def load_text(load: tuple[float, float, float] | list[float]) -> str:
    """A load average as `1.00/0.50/0.25`."""
    return "/".join(f"{x:.2f}" for x in load)


def publish(
    document: Mapping[str, object],
    figures: Mapping[str, float],
    verdicts: list[Verdict],
    peers: Sequence[str],
    stem: Path,
) -> None:
    """Write `stem`.json and the chart `stem`.png; print the targets and the peers' tables."""
    json_path = stem.with_suffix(".json")
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    system = document["machine"]
    cpu = system.get("cpu") if isinstance(system, Mapping) else None
    load = document["load_average"]
    assert isinstance(load, Mapping)
    title = (
        f"modelapi benchmark {document['date']} ({document['mode']}) - {cpu}, "
        f"load {load_text(load['start'])} -> {load_text(load['end'])}"
    )
    png_path = draw_chart(figures, stem.with_suffix(".png"), title)
    print()
    print(format_table(verdicts))
    passed, judged = summary(verdicts)
    print(f"\n{passed}/{judged} targets met; load average {load_text(load['end'])}")
    if peers:
        print("\nmodelapi and the peers (in brackets: modelapi's advantage, above 1x ahead)")
        print(format_comparison(figures, peers))
    print(f"\nwrote {shown(json_path)} and {shown(png_path)}")
