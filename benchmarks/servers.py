"""Start any of the benchmark's servers, pinned to the server core, and wait for its first answer.

The ceiling and modelapi run from the project's own environment; each peer from its own
virtualenv (benchmarks/peers.py). Every server listens on 127.0.0.1 only, logs no access line,
and counts as up at its first **correct** answer to the example in its own wire form.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.contract import PIMA_EXAMPLE
from benchmarks.install import BASELINES, Peer
from benchmarks.peers import WIRES, Wire, write_mlserver_config
from benchmarks.processes import Answer, Server, free_port, pinned, post, start_server

__all__ = ["Launcher", "answered_labels", "wire_of"]

Command = tuple[list[str], dict[str, str], Path]
# MLServer starts its servers and loads the models concurrently: should it listen before the
# model is loaded, it answers 404 (no such model) until then.
_STARTING = {"mlserver": (404,)}


class Launcher:
    """Launches the ceiling, modelapi and the peers, each with its command and environment."""

    def __init__(
        self,
        modelapi: list[str],
        installs: Mapping[str, Peer],
        expected: int,
        *,
        scratch: Path,
        logs: Path,
    ) -> None:
        self.modelapi, self.installs, self.expected = modelapi, installs, expected
        self.scratch, self.logs = scratch, logs
        # Nothing from the caller's shell may reconfigure a server.
        prefixes = ("MODELAPI_", "MLSERVER_", "BENTOML_")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}

    def is_correct(self, name: str, answer: Answer) -> bool:
        """A 200 whose labels are exactly scikit-learn's label for the example."""
        if answer.status != 200:
            return False
        if name == "ceiling":
            return True
        try:
            return wire_of(name).row_labels(answer.json()) == [self.expected]
        except ValueError:  # not JSON, or not this wire's answer
            return False

    def launch(self, name: str) -> Server:
        """Start one server on a free port; return it once it answered the example correctly."""
        port = free_port()
        command, env, cwd = self.command(name, port)
        wire = wire_of(name)
        return start_server(
            name,
            command,
            port,
            wire.row_body(json.loads(PIMA_EXAMPLE)),
            lambda answer: self.is_correct(name, answer),
            log=self.logs / f"{name}.log",
            path=wire.row_path,
            starting=_STARTING.get(name, ()),
            env=env,
            cwd=cwd,
        )

    def cold_starts(self, names: Sequence[str], n_launches: int) -> dict[str, object]:
        """Launch each server `n_launches` times, interleaved: launch to first answer, in s."""
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(n_launches):
            for name, found in times.items():
                server = self.launch(name)
                found.append(server.first_answer_s)
                server.stop()
        return {
            name: {
                "median_s": round(statistics.median(found), 4),
                "median_ms": round(statistics.median(found) * 1000, 1),
                "min_s": round(min(found), 4),
                "max_s": round(max(found), 4),
                "runs_s": [round(t, 4) for t in found],
            }
            for name, found in times.items()
        }

    def command(self, name: str, port: int) -> Command:
        """The pinned command, environment and folder that start `name` on `port`."""
        quiet = ["--log-level", "warning", "--no-access-log", "--host", "127.0.0.1"]
        if name == "modelapi":
            command = [*self.modelapi, "serve", "--port", str(port), "--log-level", "warning"]
            return pinned(command), self.env, self.scratch
        if name == "ceiling":
            command = [sys.executable, "-m", "uvicorn", "ceiling:app", "--app-dir"]
            command += [str(BASELINES), "--loop", "uvloop", "--http", "httptools"]
            return pinned([*command, *quiet, "--port", str(port)]), self.env, self.scratch
        peer = self.installs[name]
        if name == "naive":
            command = [peer.executable("uvicorn"), "naive_app:app", "--app-dir", str(BASELINES)]
            env = {**self.env, "NAIVE_MODEL": str(peer.model)}
            return pinned([*command, *quiet, "--port", str(port)]), env, self.scratch
        if name == "mlserver":
            folder = write_mlserver_config(
                self.scratch / "mlserver", peer.model, port, free_port(), free_port()
            )
            return pinned([peer.executable("mlserver"), "start", str(folder)]), self.env, folder
        if name == "bentoml":
            command = [peer.executable("bentoml"), "serve", "bentoml_service:Pima"]
            command += ["--working-dir", str(BASELINES), "--host", "127.0.0.1", "--port", str(port)]
            # The store pima_train.py filled; usage tracking off (it would post to the network).
            env = {**self.env, "BENTOML_HOME": str(peer.model), "BENTOML_DO_NOT_TRACK": "True"}
            return pinned(command), env, self.scratch
        raise ValueError(f"no server is called {name!r}")


def wire_of(name: str) -> Wire:
    """The wire a server takes rows on (the ceiling answers any body: it is sent modelapi's)."""
    return WIRES["modelapi" if name == "ceiling" else name]


def answered_labels(server: Server, body: bytes, what: str) -> list[int]:
    """POST a body of many rows in the server's own batch form; the labels it answers."""
    wire = wire_of(server.name)
    answer = post(server.port, wire.batch_path, body)
    if answer.status != 200:
        raise RuntimeError(f"{server.name} answered the {what} with {answer.status}")
    try:
        return wire.labels(answer.json())
    except ValueError as exc:  # JSONDecodeError too
        raise RuntimeError(f"{server.name}'s answer to the {what}: {exc}") from None
