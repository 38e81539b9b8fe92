"""Run the whole benchmark in one go and judge the targets (see benchmarks/README.md).

Servers run pinned to core 0 (`taskset -c 0`); this process, wrk and every client run on
core 1. Everything listens on 127.0.0.1. Phases that fail are recorded in the results and the
run goes on, so one broken part does not hide the others' figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import csv_run, lambda_run, profiling
from benchmarks.chart import draw_chart
from benchmarks.install import (
    BASELINES,
    LAMBDA_PYTHON,
    ensure_lambda_runtime,
    ensure_naive,
    ensure_wrk,
    folder_bytes,
    serving_install,
    site_packages,
)
from benchmarks.processes import (
    Answer,
    Server,
    free_port,
    pin_self,
    pinned,
    rss_bytes,
    start_server,
)
from benchmarks.targets import format_table, judge
from benchmarks.wrk import WrkResult, run_wrk

__all__ = ["PIMA_EXAMPLE", "Mode", "flatten", "main"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
# The exact body existing clients send (the contract example).
PIMA_EXAMPLE = (
    b'{"pregnancies": 2, "glucose": 148, "blood_pressure": 72, "skin_thickness": 35,'
    b' "insulin": 0, "bmi": 33.6, "diabetes_pedigree_function": 0.674, "age": 22}'
)
CONNECTIONS = 32
# Batch clients are few, and 32 bodies of 1,000 rows queued on one core push answers past
# wrk's timeout on a busy machine without adding throughput.
BATCH_CONNECTIONS = 8
BATCH_ROWS = 1000


@dataclass(frozen=True, slots=True)
class Mode:
    """How long and how often each measurement runs."""

    name: str
    warmup_s: int
    duration_s: int
    rounds: int
    cold_starts: int
    warm_invocations: int
    predict_repeats: int

    @classmethod
    def of(cls, quick: bool) -> Mode:
        """The quick mode (under 3 minutes) or the full one (about 10 minutes)."""
        if quick:
            return cls("quick", 1, 3, 3, 3, 20_000, 1)
        return cls("full", 2, 8, 6, 10, 100_000, 3)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write the JSON and PNG. 0 when every phase ran."""
    parser = argparse.ArgumentParser(prog="benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (under 3 minutes)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also sample the modelapi server with py-spy under single-row and batch load",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("MODELAPI_TEST_DATA", REPO.parent / "shared/data/pima.csv")),
        help="the Pima CSV the naive baseline trains on (env MODELAPI_TEST_DATA)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and PNG")
    args = parser.parse_args(argv)
    return Run(Mode.of(args.quick), args.data, args.out, args.profile).run()


class Run:
    """One benchmark run: its settings, folders, and the results gathered so far."""

    def __init__(self, mode: Mode, data: Path, out: Path, profile: bool) -> None:
        self.mode, self.data, self.out, self.profile = mode, data, out, profile
        self.work = REPO / "benchmarks" / ".work"
        self.scratch = self.work / "run"
        self.logs = self.work / "logs"
        self.modelapi = [str(Path(sys.executable).parent / "modelapi")]
        self.results: dict[str, object] = {}
        self.failures: dict[str, str] = {}
        self.expected: int | None = None

    def run(self) -> int:
        """Run every phase, then report."""
        started = time.monotonic()
        for folder in (self.scratch, self.logs, self.out):
            folder.mkdir(parents=True, exist_ok=True)
        is_pinned = pin_self()
        load_start = os.getloadavg()
        print(f"benchmark ({self.mode.name}); load average {_load(load_start)}", flush=True)
        with self.phase("setup"):
            ensure_wrk()
            self.naive_python, self.naive_model = ensure_naive(self.work, self.data)
            self.runtime = ensure_lambda_runtime(self.work)
            self.expected = self.expected_outcome()
            # As installing a wheel does: otherwise every launch of an editable checkout whose
            # shell sets PYTHONDONTWRITEBYTECODE compiles modelapi's changed modules again.
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "modelapi")],
                check=True,
            )
        if "setup" in self.failures:
            print(f"setup failed: {self.failures['setup']}", file=sys.stderr)
            return 2
        self.write_bodies()
        with self.phase("cold_start"):
            self.cold_starts()
        with self.phase("http"), self.servers() as servers:
            self.single_row(servers)
            self.batch(servers)
            self.results["memory"] = {
                name: {"rss_bytes": rss_bytes(server.process.pid)}
                for name, server in servers.items()
            }
            if self.profile:
                self.profile_server(servers["modelapi"])
        with self.phase("lambda"):
            self.lambda_package()
        with self.phase("sizes"):
            self.sizes()
        with self.phase("predict"):
            self.predict_csv()
        load_end = os.getloadavg()
        return self.report(started, is_pinned, load_start, load_end)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase; record its error instead of stopping the run."""
        print(f"- {name}...", flush=True)
        started = time.monotonic()
        try:
            yield
        except Exception as exc:
            self.failures[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        print(f"  {name} took {time.monotonic() - started:.1f} s", flush=True)

    # -- setup ------------------------------------------------------------------------------

    def expected_outcome(self) -> int:
        """The Pima example's label from scikit-learn itself (the naive model), the oracle."""
        code = (
            "import json, pickle, sys; m = pickle.load(open(sys.argv[1], 'rb'));"
            " r = json.loads(sys.argv[2]); print(int(m.predict([list(r.values())])[0]))"
        )
        done = subprocess.run(
            [str(self.naive_python), "-c", code, str(self.naive_model), PIMA_EXAMPLE.decode()],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(done.stdout)

    def write_bodies(self) -> None:
        """The single-row body (the exact example) and a 1,000-row JSON array."""
        self.single_body = self.scratch / "single.json"
        self.single_body.write_bytes(PIMA_EXAMPLE)
        rng = random.Random(0)
        keys = list(json.loads(PIMA_EXAMPLE))  # the example's fields, in CSV column order
        rows = []
        for _ in range(BATCH_ROWS):
            row: dict[str, float] = {}
            for key, (_, low, high, decimals) in zip(keys, csv_run.COLUMNS, strict=True):
                value = rng.uniform(low, high)
                row[key] = round(value, decimals) if decimals else int(value)
            rows.append(row)
        self.batch_body = self.scratch / "batch.json"
        self.batch_body.write_text(json.dumps(rows))

    def is_correct(self, answer: Answer) -> bool:
        """A 200 whose JSON `outcome` is scikit-learn's label for the example."""
        if answer.status != 200:
            return False
        body = answer.json()
        return isinstance(body, dict) and body.get("outcome") == self.expected

    # -- servers ----------------------------------------------------------------------------

    def launchers(self) -> dict[str, Callable[[int], tuple[list[str], dict[str, str]]]]:
        """For each target, its pinned command and environment for a port."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELAPI_")}
        uvicorn = str(self.naive_python.parent / "uvicorn")
        quiet = ["--log-level", "warning", "--no-access-log", "--host", "127.0.0.1"]

        def modelapi(port: int) -> tuple[list[str], dict[str, str]]:
            command = [*self.modelapi, "serve", "--port", str(port), "--log-level", "warning"]
            return pinned(command), env

        def ceiling(port: int) -> tuple[list[str], dict[str, str]]:
            command = [sys.executable, "-m", "uvicorn", "ceiling:app", "--app-dir"]
            command += [str(BASELINES), "--loop", "uvloop", "--http", "httptools"]
            return pinned([*command, *quiet, "--port", str(port)]), env

        def naive(port: int) -> tuple[list[str], dict[str, str]]:
            command = [uvicorn, "naive_app:app", "--app-dir", str(BASELINES), *quiet]
            return pinned([*command, "--port", str(port)]), {
                **env,
                "NAIVE_MODEL": str(self.naive_model),
            }

        return {"ceiling": ceiling, "modelapi": modelapi, "naive": naive}

    def launch(self, name: str) -> Server:
        """Start one target and wait for its first correct answer."""
        port = free_port()
        command, env = self.launchers()[name](port)
        check = (lambda a: a.status == 200) if name == "ceiling" else self.is_correct
        return start_server(
            name,
            command,
            port,
            PIMA_EXAMPLE,
            check,
            log=self.logs / f"{name}.log",
            env=env,
            cwd=self.scratch,
        )

    @contextmanager
    def servers(self) -> Iterator[dict[str, Server]]:
        """The three targets, up at once (idle ones cost nothing), stopped at the end."""
        running: dict[str, Server] = {}
        try:
            for name in ("ceiling", "modelapi", "naive"):
                running[name] = self.launch(name)
            yield running
        finally:
            for server in running.values():
                server.stop()

    def cold_starts(self) -> None:
        """Launch to first correct answer, `modelapi serve` and the naive baseline, interleaved."""
        self.launch("modelapi").stop()  # once unrecorded: byte code and disk cache warm
        times: dict[str, list[float]] = {"modelapi": [], "naive": []}
        for _ in range(self.mode.cold_starts):
            for name, found in times.items():
                server = self.launch(name)
                found.append(server.first_answer_s)
                server.stop()
        self.results["cold_start"] = {
            name: {
                "median_s": round(statistics.median(found), 4),
                "median_ms": round(statistics.median(found) * 1000, 1),
                "min_s": round(min(found), 4),
                "max_s": round(max(found), 4),
                "runs_s": [round(t, 4) for t in found],
            }
            for name, found in times.items()
        }

    def load(
        self,
        servers: Mapping[str, Server],
        names: tuple[str, ...],
        body: Path,
        connections: int = CONNECTIONS,
    ) -> dict[str, list[WrkResult]]:
        """Short wrk rounds against each named server, interleaved, so that the load others put
        on the machine weighs on every server alike."""
        rounds: dict[str, list[WrkResult]] = {name: [] for name in names}
        for index in range(self.mode.rounds):
            for name in names:
                url = servers[name].url + "/predict"
                if index == 0:
                    run_wrk(url, body, connections=connections, duration_s=self.mode.warmup_s)
                found = run_wrk(url, body, connections=connections, duration_s=self.mode.duration_s)
                rounds[name].append(found)
                print(
                    f"  {name}: {found.requests_per_s:,.0f} req/s,"
                    f" p99 {found.latency_s.get('p99', 0) * 1000:.2f} ms, {found.errors} errors",
                    flush=True,
                )
        return rounds

    def single_row(self, servers: Mapping[str, Server]) -> None:
        """POST the example to each target: req/s, latency percentiles, errors.

        Each target's figures come from its median round; the ratios are the medians of the
        ratios within a round, measured seconds apart.
        """
        rounds = self.load(servers, ("ceiling", "modelapi", "naive"), self.single_body)
        found: dict[str, object] = {name: _merged(runs) for name, runs in rounds.items()}
        found["ratios"] = {
            f"modelapi_to_{other}": round(
                statistics.median(
                    m.requests_per_s / o.requests_per_s
                    for m, o in zip(rounds["modelapi"], rounds[other], strict=True)
                ),
                4,
            )
            for other in ("ceiling", "naive")
        }
        self.results["single_row"] = found

    def batch(self, servers: Mapping[str, Server]) -> None:
        """POST 1,000-row JSON arrays to modelapi and the naive baseline: rows/s."""
        self.check_batch(servers)
        rounds = self.load(servers, ("modelapi", "naive"), self.batch_body, BATCH_CONNECTIONS)
        batch: dict[str, object] = {}
        for name, runs in rounds.items():
            merged = _merged(runs)
            rate = merged["requests_per_s"]
            assert isinstance(rate, float)
            merged.update(rows_per_request=BATCH_ROWS, rows_per_s=round(rate * BATCH_ROWS))
            batch[name] = merged
        self.results["batch"] = batch

    def check_batch(self, servers: Mapping[str, Server]) -> None:
        """Both servers answer the batch body with 1,000 answers, and agree on every label."""
        from benchmarks.processes import post

        labels = []
        for name in ("modelapi", "naive"):
            answer = post(servers[name].port, "/predict", self.batch_body.read_bytes())
            body = answer.json()
            if answer.status != 200 or not isinstance(body, list) or len(body) != BATCH_ROWS:
                raise RuntimeError(f"{name} answered the batch with {answer.status}")
            labels.append([row["outcome"] for row in body])
        if labels[0] != labels[1]:
            raise RuntimeError("modelapi and scikit-learn disagree on the batch's labels")

    def profile_server(self, server: Server) -> None:
        """Sample the modelapi server under single-row then batch load; keep the summaries."""
        py_spy = profiling.ensure_py_spy(self.work)
        profiles: dict[str, object] = {}
        for label, body in (("single_row", self.single_body), ("batch", self.batch_body)):
            raw = self.logs / f"profile-{label}.txt"
            sampler = profiling.record(py_spy, server.process.pid, self.mode.duration_s, raw)
            time.sleep(0.5)
            run_wrk(
                server.url + "/predict",
                body,
                connections=CONNECTIONS if label == "single_row" else BATCH_CONNECTIONS,
                duration_s=self.mode.duration_s,
            )
            sampler.wait(60)
            profiles[label] = profiling.summarise(raw.read_text()) if raw.exists() else {}
        self.results["profile"] = profiles

    # -- Lambda, sizes, CSV -----------------------------------------------------------------

    def lambda_package(self) -> None:
        """Build the embedded and the S3 zips; cold starts in fresh processes; warm calls."""
        base = lambda_run.base_env()
        base = {k: v for k, v in base.items() if not k.startswith("MODELAPI_")}
        cache = ["--cache-dir", str(self.work / "wheels")]
        figures: dict[str, object] = {"python": str(LAMBDA_PYTHON)}

        def check(answer: object) -> bool:
            if not isinstance(answer, dict) or answer.get("statusCode") != 200:
                return False
            return json.loads(answer["body"]).get("outcome") == self.expected

        event = lambda_run.write_event(self.scratch / "event.json", PIMA_EXAMPLE)
        embedded = self.work / "lambda-embedded"
        sizes = lambda_run.build_zip(
            self.modelapi,
            embedded,
            args=["diabetes", "--embed-model", *cache],
            env=base,
            cwd=self.scratch,
        )
        figures["embedded"] = {
            **sizes,
            **lambda_run.lambda_figures(
                "embedded",
                embedded / "lambda.zip",
                event,
                self.work,
                self.runtime,
                {},
                check,
                n_cold=self.mode.cold_starts,
                n_warm=self.mode.warm_invocations,
            ),
        }
        with lambda_run.moto_s3() as aws:
            store = aws.pop("BENCH_STORE")
            env = {**base, **aws}
            for command in (
                ["models", "copy", "diabetes", "--to", store],
                ["models", "alias", "diabetes", "1", "production", "--store", store],
            ):
                subprocess.run(
                    [*self.modelapi, *command],
                    env=env,
                    cwd=self.scratch,
                    check=True,
                    capture_output=True,
                )
            in_s3 = self.work / "lambda-s3"
            sizes = lambda_run.build_zip(
                self.modelapi,
                in_s3,
                args=["diabetes@production", "--store", store, *cache],
                env=env,
                cwd=self.scratch,
            )
            function_env = {**aws, "MODELAPI_STORE": store, "MODELAPI_MODEL": "diabetes@production"}
            figures["s3"] = {
                **sizes,
                **lambda_run.lambda_figures(
                    "s3",
                    in_s3 / "lambda.zip",
                    event,
                    self.work,
                    self.runtime,
                    function_env,
                    check,
                    n_cold=self.mode.cold_starts,
                    n_warm=self.mode.warm_invocations // 10,
                ),
            }
        self.results["lambda"] = figures

    def sizes(self) -> None:
        """The serving install (`modelapi[server]` alone) and the naive baseline's, on disk."""
        serving = serving_install(self.work, REPO)
        naive_site = site_packages(self.naive_python.parent.parent)
        self.results["sizes"] = {
            "modelapi_server_install": serving,
            "naive_install": {"site_packages_bytes": folder_bytes(naive_site)},
        }

    def predict_csv(self) -> None:
        """`modelapi predict` on 250,000 and 1,000,000 generated rows: rows/s and peak RSS."""
        big = csv_run.generate_csv(self.work / "pima-1000000.csv", 1_000_000)
        small = csv_run.head_csv(big, self.work / "pima-250000.csv", 250_000)
        found: dict[str, object] = {}
        for n_rows, path in ((250_000, small), (1_000_000, big)):
            runs = [
                csv_run.predict_figures(self.modelapi, path, n_rows, self.scratch)
                for _ in range(self.mode.predict_repeats)
            ]
            runs.sort(key=lambda r: float(str(r["rows_per_s"])))
            found[f"rows_{n_rows}"] = runs[len(runs) // 2]
            print(f"  {n_rows:,} rows: {runs[len(runs) // 2]}", flush=True)
        self.results["predict"] = found

    # -- report -----------------------------------------------------------------------------

    def report(
        self,
        started: float,
        is_pinned: bool,
        load_start: tuple[float, float, float],
        load_end: tuple[float, float, float],
    ) -> int:
        """Judge the targets, print the table, write results/<date>.json and .png."""
        figures = flatten(self.results)
        verdicts = judge(figures)
        today = dt.date.today().isoformat()
        document = {
            "date": today,
            "mode": self.mode.name,
            "machine": machine(),
            "pinned": {"server_cpu": 0, "load_generator_cpu": 1} if is_pinned else None,
            "load_average": {"start": list(load_start), "end": list(load_end)},
            "seconds": round(time.monotonic() - started, 1),
            "settings": {
                "connections": CONNECTIONS,
                "batch_connections": BATCH_CONNECTIONS,
                "batch_rows": BATCH_ROWS,
                "warmup_s": self.mode.warmup_s,
                "duration_s": self.mode.duration_s,
                "rounds": self.mode.rounds,
                "warm_invocations": self.mode.warm_invocations,
                "cold_starts": self.mode.cold_starts,
            },
            "commit": _commit(),
            "results": self.results,
            "failures": self.failures,
            "targets": [v.as_dict() for v in verdicts],
        }
        suffix = "" if self.mode.name == "full" else f"-{self.mode.name}"
        json_path = self.out / f"{today}{suffix}.json"
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        title = (
            f"modelapi benchmark {today} ({self.mode.name}) - {document['machine']['cpu']}, "
            f"load {_load(load_start)} -> {_load(load_end)}"
        )
        png_path = draw_chart(figures, self.out / f"{today}{suffix}.png", title)
        print()
        print(format_table(verdicts))
        passed = sum(v.passed for v in verdicts)
        print(f"\n{passed}/{len(verdicts)} targets met; load average {_load(load_end)}")
        print(f"wrote {shown(json_path)} and {shown(png_path)}")
        for name, error in self.failures.items():
            print(f"phase {name} failed: {error}", file=sys.stderr)
        return 1 if self.failures else 0


def _merged(runs: list[WrkResult]) -> dict[str, object]:
    """The median round's figures, every round's rate, and the errors of all rounds."""
    median = sorted(runs, key=lambda r: r.requests_per_s)[len(runs) // 2]
    figures = median.as_dict()
    figures["rounds_requests_per_s"] = [round(r.requests_per_s, 1) for r in runs]
    figures["errors"] = sum(r.errors for r in runs)
    return figures


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


def _commit() -> str | None:
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


def _load(load: tuple[float, float, float] | list[float]) -> str:
    return "/".join(f"{x:.2f}" for x in load)
