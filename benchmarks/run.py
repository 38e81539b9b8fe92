"""Run the whole benchmark in one go and judge the targets (see benchmarks/README.md).

Servers run pinned to core 0 (`taskset -c 0`); this process, wrk and every client run on
core 1. Everything listens on 127.0.0.1. Phases that fail are recorded in the results and the
run goes on, so one broken part does not hide the others' figures; a peer that cannot be set
up, or that labels the contract's test rows differently from modelapi, is left out of the rest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from benchmarks import csv_run, lambda_run, pipeline_serving, profiling
from benchmarks.bulk import measure_bulk
from benchmarks.comparison import advantages
from benchmarks.contract import PIMA_EXAMPLE, fit_contract
from benchmarks.install import (
    Peer,
    ensure_lambda_runtime,
    ensure_peer,
    ensure_wrk,
    folder_bytes,
    serving_install,
    site_packages,
)
from benchmarks.options import Mode, build_parser
from benchmarks.peers import PEERS, WIRES, check_labels
from benchmarks.processes import SERVING_PACKAGES, Server, byte_compile, pin_self, tree_rss_bytes
from benchmarks.report import REPO, commit, flatten, load_text, machine, publish
from benchmarks.servers import Launcher, answered_labels, wire_of
from benchmarks.targets import judge
from benchmarks.wrk import WrkResult, merged, ratios, run_rounds

__all__ = ["Mode", "build_parser", "main"]

CONNECTIONS = 32
# Batch clients are few, and 32 bodies of 1,000 rows queued on one core push answers past
# wrk's timeout on a busy machine without adding throughput.
BATCH_CONNECTIONS = 8
BATCH_ROWS = 1000


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables; write the JSON and PNG. 0 when every phase ran."""
    args = build_parser().parse_args(argv)
    return Run(Mode.of(args.quick), args.data, args.out, args.profile, args.peers).run()


class Run:
    """One benchmark run: its settings, folders, and the results gathered so far."""

    def __init__(
        self, mode: Mode, data: Path, out: Path, profile: bool, peers: tuple[str, ...]
    ) -> None:
        self.mode, self.data, self.out, self.profile = mode, data, out, profile
        self.chosen = peers
        self.peers: tuple[str, ...] = ()  # the chosen ones that were set up and agree
        self.work = REPO / "benchmarks" / ".work"
        self.scratch = self.work / "run"
        self.logs = self.work / "logs"
        self.modelapi = [str(Path(sys.executable).parent / "modelapi")]
        self.installs: dict[str, Peer] = {}
        self.results: dict[str, object] = {}
        self.failures: dict[str, str] = {}
        self.bodies: dict[str, dict[str, Path]] = {}

    def run(self) -> int:
        """Run every phase, then report."""
        started = time.monotonic()
        for folder in (self.scratch, self.logs, self.out):
            folder.mkdir(parents=True, exist_ok=True)
        is_pinned = pin_self()
        load_start = os.getloadavg()
        print(f"benchmark ({self.mode.name}); load average {load_text(load_start)}", flush=True)
        with self.phase("setup"):
            ensure_wrk()
            self.runtime = ensure_lambda_runtime(self.work)
            self.contract = fit_contract(self.data)
            expected = self.contract.labels([json.loads(PIMA_EXAMPLE)])[0]
            self.launcher = Launcher(
                self.modelapi, self.installs, expected, scratch=self.scratch, logs=self.logs
            )
            # As installing a wheel does: otherwise every launch in a shell that sets
            # PYTHONDONTWRITEBYTECODE compiles modelapi's and numpy's modules again.
            byte_compile(SERVING_PACKAGES)
            self.write_bodies()
            self.reference = self.test_labels("modelapi")
            check_labels(
                "modelapi",
                self.reference,
                self.contract.labels(self.contract.test_rows),
                "test rows",
                oracle="scikit-learn",
            )
        if "setup" in self.failures:
            print(f"setup failed: {self.failures['setup']}", file=sys.stderr)
            return 2
        for name in self.chosen:
            with self.phase(f"setup {name}"):
                self.installs[name] = ensure_peer(self.work, name, self.data)
                check_labels(name, self.test_labels(name), self.reference, "test rows")
                self.peers += (name,)
        with self.phase("cold_start"):
            self.cold_starts()
        with self.phase("http"), self.servers() as servers:
            self.check_batch(servers)
            self.single_row(servers)
            self.batch(servers)
            self.results["memory"] = _memory(servers)
            # The first bulk body imports numpy into the server: its memory is measured apart.
            self.bulk(servers["modelapi"])
            self.results["memory_after_bulk"] = _memory({"modelapi": servers["modelapi"]})
            if self.profile:
                self.profile_server(servers["modelapi"])
        with self.phase("lambda"):
            self.results["lambda"] = lambda_run.measure_lambda(
                self.modelapi,
                self.work,
                self.scratch,
                self.runtime,
                PIMA_EXAMPLE,
                self.launcher.expected,
                n_cold=self.mode.cold_starts,
                n_warm=self.mode.warm_invocations,
            )
        with self.phase("sizes"):
            self.sizes()
        with self.phase("predict"):
            self.predict_csv()
        self.pipeline()
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

    def write_bodies(self) -> None:
        """Each server's single-row body (the example), 1,000-row body and test-row body."""
        self.batch_rows = self.contract.decided_rows(BATCH_ROWS)
        example = json.loads(PIMA_EXAMPLE)
        for name in ("modelapi", *PEERS):
            wire = WIRES[name]
            bodies = {
                "row": wire.row_body(example),
                "batch": wire.batch_body(self.batch_rows),
                "test": wire.batch_body(self.contract.test_rows),
            }
            self.bodies[name] = {}
            for kind, body in bodies.items():
                path = self.scratch / f"{name}-{kind}.json"
                path.write_bytes(body)
                self.bodies[name][kind] = path
        self.bodies["ceiling"] = self.bodies["modelapi"]

    def test_labels(self, name: str) -> list[int]:
        """Launch `name` once (unrecorded: disk cache and byte code warm); its test-row labels."""
        server = self.launcher.launch(name)
        try:
            return answered_labels(server, self.bodies[name]["test"].read_bytes(), "test rows")
        finally:
            server.stop()

    # -- servers ----------------------------------------------------------------------------

    @contextmanager
    def servers(self) -> Iterator[dict[str, Server]]:
        """The ceiling, modelapi and the peers, up at once (idle ones cost nothing)."""
        running: dict[str, Server] = {}
        try:
            for name in ("ceiling", "modelapi", *self.peers):
                running[name] = self.launcher.launch(name)
            yield running
        finally:
            for server in running.values():
                server.stop()

    def cold_starts(self) -> None:
        """Launch to first correct answer of `modelapi serve` and each peer, interleaved."""
        names = ("modelapi", *self.peers)
        self.results["cold_start"] = self.launcher.cold_starts(names, self.mode.cold_starts)

    def load(
        self, servers: Mapping[str, Server], names: tuple[str, ...], kind: str, connections: int
    ) -> dict[str, list[WrkResult]]:
        """Interleaved wrk rounds of each named server's `kind` body on its own path."""
        targets = {}
        for name in names:
            wire = wire_of(name)
            path = wire.row_path if kind == "row" else wire.batch_path
            targets[name] = (servers[name].url + path, self.bodies[name][kind])
        return run_rounds(
            targets,
            rounds=self.mode.rounds,
            warmup_s=self.mode.warmup_s,
            duration_s=self.mode.duration_s,
            connections=connections,
        )

    def single_row(self, servers: Mapping[str, Server]) -> None:
        """POST the example to each server: req/s, latency percentiles, errors.

        Each server's figures come from its median round; the ratios are the medians of the
        ratios within a round, measured seconds apart.
        """
        rounds = self.load(servers, ("ceiling", "modelapi", *self.peers), "row", CONNECTIONS)
        found: dict[str, object] = {name: merged(runs) for name, runs in rounds.items()}
        found["ratios"] = ratios(rounds, ("ceiling", *self.peers))
        self.results["single_row"] = found

    def batch(self, servers: Mapping[str, Server]) -> None:
        """POST 1,000-row bodies to modelapi and each peer, in its own batch form: rows/s."""
        rounds = self.load(servers, ("modelapi", *self.peers), "batch", BATCH_CONNECTIONS)
        batch: dict[str, object] = {}
        for name, runs in rounds.items():
            figures = merged(runs)
            rate = figures["requests_per_s"]
            assert isinstance(rate, float)
            figures.update(rows_per_request=BATCH_ROWS, rows_per_s=round(rate * BATCH_ROWS))
            batch[name] = figures
        batch["ratios"] = ratios(rounds, self.peers)
        self.results["batch"] = batch

    def bulk(self, server: Server) -> None:
        """The 1,000 batch rows as dataframe_split and CSV-line bodies: rows/s where taken."""
        self.results["bulk"] = {
            "modelapi": measure_bulk(
                server,
                self.batch_rows,
                self.contract.labels(self.batch_rows),
                self.scratch,
                rounds=self.mode.rounds,
                warmup_s=self.mode.warmup_s,
                duration_s=self.mode.duration_s,
                connections=BATCH_CONNECTIONS,
            )
        }

    def check_batch(self, servers: Mapping[str, Server]) -> None:
        """modelapi labels the 1,000-row body as scikit-learn does; a peer that answers other
        labels is recorded as failed and left out of the load."""

        def labels(name: str) -> list[int]:
            body = self.bodies[name]["batch"].read_bytes()
            return answered_labels(servers[name], body, "batch rows")

        reference = labels("modelapi")
        expected = self.contract.labels(self.batch_rows)
        check_labels("modelapi", reference, expected, "batch rows", oracle="scikit-learn")
        for name in self.peers:
            with self.phase(f"batch check {name}"):
                check_labels(name, labels(name), reference, "batch rows")
        self.peers = tuple(n for n in self.peers if f"batch check {n}" not in self.failures)

    def profile_server(self, server: Server) -> None:
        """Sample the modelapi server under single-row then batch load; keep the summaries."""
        self.results["profile"] = profiling.profile_server(
            self.work,
            self.logs,
            server,
            {
                "single_row": (self.bodies["modelapi"]["row"], CONNECTIONS),
                "batch": (self.bodies["modelapi"]["batch"], BATCH_CONNECTIONS),
            },
            self.mode.duration_s,
        )

    # -- sizes, CSV -------------------------------------------------------------------------

    def sizes(self) -> None:
        """The serving install (`modelapi[server]` alone) and each peer's, on disk."""
        sizes: dict[str, object] = {"modelapi": serving_install(self.work, REPO)}
        for name in self.peers:
            site = site_packages(self.installs[name].venv)
            sizes[name] = {"site_packages_bytes": folder_bytes(site)}
        self.results["sizes"] = sizes

    def predict_csv(self) -> None:
        """`modelapi predict` on 250,000 and 1,000,000 generated rows: rows/s and peak RSS."""
        self.results["predict"] = csv_run.measure_predict(
            self.modelapi, self.work, self.scratch, self.mode.predict_repeats
        )

    def pipeline(self) -> None:
        """pipeline.json in process, in `modelapi predict`, over HTTP, in a Lambda zip."""
        mode = self.mode
        self.results["pipeline"] = pipeline_serving.measure_pipeline(
            self.modelapi,
            self.data,
            self.phase,
            work=self.work,
            scratch=self.scratch,
            logs=self.logs,
            runtime=self.runtime,
            example_body=self.bodies["modelapi"]["row"],
            server_env=self.launcher.env,
            per_row=(mode.pipeline_rows, mode.pipeline_repeats),
            load=(mode.rounds, mode.warmup_s, mode.duration_s, CONNECTIONS),
            n_cold=mode.cold_starts,
        )

    # -- report -----------------------------------------------------------------------------

    def report(
        self,
        started: float,
        is_pinned: bool,
        load_start: tuple[float, float, float],
        load_end: tuple[float, float, float],
    ) -> int:
        """Judge the targets, print both tables, write results/<date>.json and .png."""
        figures = flatten(self.results)
        verdicts = judge(figures, peers=self.chosen)
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
                "peers": list(self.chosen),
            },
            "commit": commit(),
            "results": self.results,
            "failures": self.failures,
            "targets": [v.as_dict() for v in verdicts],
            "advantages": advantages(figures, self.peers),
        }
        suffix = "" if self.mode.name == "full" else f"-{self.mode.name}"
        publish(document, figures, verdicts, self.peers, self.out / f"{today}{suffix}")
        for name, error in self.failures.items():
            print(f"phase {name} failed: {error}", file=sys.stderr)
        return 1 if self.failures else 0


def _memory(servers: Mapping[str, Server]) -> dict[str, object]:
    """Each server's resident memory, its child processes included."""
    memory: dict[str, object] = {}
    for name, server in servers.items():
        rss, processes = tree_rss_bytes(server.process.pid)
        memory[name] = {"rss_bytes": rss, "processes": processes}
    return memory
