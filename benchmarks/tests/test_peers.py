"""The peer parts of the harness, without the peers installed: choosing them, their config and
wire forms, the labels check, the comparison table, and stopping a server's whole process tree."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.comparison import FIGURES, advantages, format_comparison
from benchmarks.contract import FIELDS, PIMA_EXAMPLE, fit_contract, generated_rows
from benchmarks.install import Peer
from benchmarks.peers import PEERS, WIRES, check_labels, parse_peers, write_mlserver_config
from benchmarks.processes import (
    Answer,
    Server,
    descendants,
    free_port,
    start_server,
    tree_rss_bytes,
)
from benchmarks.report import REPO, flatten
from benchmarks.run import build_parser
from benchmarks.servers import Launcher
from benchmarks.targets import judge
from benchmarks.wrk import WrkResult, ratios

EXAMPLE = json.loads(PIMA_EXAMPLE)


@pytest.mark.parametrize(
    ("text", "peers"),
    [
        ("mlserver,bentoml,naive", ("naive", "mlserver", "bentoml")),
        ("bentoml", ("bentoml",)),
        (" naive , mlserver ", ("naive", "mlserver")),
        ("naive,naive", ("naive",)),
        ("none", ()),
    ],
)
def test_peers_are_chosen_in_one_order(text: str, peers: tuple[str, ...]) -> None:
    assert parse_peers(text) == peers


@pytest.mark.parametrize("text", ["", "torchserve", "naive,triton", "none,naive", "naive;bentoml"])
def test_unknown_peers_are_refused_naming_the_known_ones(text: str) -> None:
    with pytest.raises(ValueError, match="naive, mlserver, bentoml, or none"):
        parse_peers(text)


def test_the_command_line_races_every_peer_unless_told(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args([]).peers == PEERS
    assert build_parser().parse_args(["--quick", "--peers", "none"]).peers == ()
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--peers", "seldon"])
    assert exit_info.value.code == 2
    assert "'seldon'" in capsys.readouterr().err


def test_mlserver_config_is_one_process_on_loopback(tmp_path: Path) -> None:
    model = tmp_path / "venv" / "model.joblib"
    folder = write_mlserver_config(tmp_path / "repo", model, 8001, 8002, 8003)
    settings = json.loads((folder / "settings.json").read_text())
    assert settings == {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": 8001,
        "grpc_port": 8002,
        "metrics_port": 8003,
        "parallel_workers": 0,
        "load_models_at_startup": True,
    }
    model_settings = json.loads((folder / "pima" / "model-settings.json").read_text())
    assert model_settings == {
        "name": "pima",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model.resolve()), "version": "1"},
    }
    assert WIRES["mlserver"].row_path == "/v2/models/pima/infer"


def launcher(tmp_path: Path, expected: int = 1) -> Launcher:
    """A launcher whose peers' virtualenvs are paths only (nothing is started)."""
    installs = {name: Peer(name, tmp_path / name, tmp_path / name / "model") for name in PEERS}
    return Launcher(["modelapi"], installs, expected, scratch=tmp_path, logs=tmp_path)


def test_every_server_binds_loopback_only(tmp_path: Path) -> None:
    servers = launcher(tmp_path)
    for name in ("ceiling", "naive", "bentoml"):
        command, _, _ = servers.command(name, 8100)
        assert command[command.index("--host") + 1] == "127.0.0.1", name
        assert command[:3] == ["taskset", "-c", "0"], name
    command, _, cwd = servers.command("mlserver", 8100)
    assert command[-2:] == ["start", str(cwd)]
    settings = json.loads((cwd / "settings.json").read_text())
    assert (settings["host"], settings["http_port"]) == ("127.0.0.1", 8100)
    assert len({settings["http_port"], settings["grpc_port"], settings["metrics_port"]}) == 3


def test_bentoml_runs_offline_on_its_own_store(tmp_path: Path) -> None:
    command, env, _ = launcher(tmp_path).command("bentoml", 8100)
    assert command[3:6] == [
        str(tmp_path / "bentoml" / "bin" / "bentoml"),
        "serve",
        "bentoml_service:Pima",
    ]
    assert env["BENTOML_DO_NOT_TRACK"] == "True"
    assert env["BENTOML_HOME"] == str(tmp_path / "bentoml" / "model")


def test_the_shell_cannot_reconfigure_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVER_HOST", "0.0.0.0")
    monkeypatch.setenv("BENTOML_HOST", "0.0.0.0")
    monkeypatch.setenv("MODELAPI_HOST", "0.0.0.0")
    for name in ("modelapi", "mlserver"):
        _, env, _ = launcher(tmp_path).command(name, 8100)
        assert not [key for key in env if key.endswith("_HOST")], name


def test_object_bodies_are_the_example_byte_for_byte() -> None:
    assert WIRES["modelapi"].row_body(EXAMPLE) == PIMA_EXAMPLE
    assert WIRES["bentoml"].row_body(EXAMPLE) == PIMA_EXAMPLE
    assert json.loads(WIRES["naive"].batch_body([EXAMPLE, EXAMPLE])) == [EXAMPLE, EXAMPLE]


def test_mlserver_takes_one_n_by_8_fp64_tensor() -> None:
    rows = generated_rows(3)
    (tensor,) = json.loads(WIRES["mlserver"].batch_body(rows))["inputs"]
    assert (tensor["shape"], tensor["datatype"]) == ([3, 8], "FP64")
    assert tensor["data"] == [float(row[name]) for row in rows for name in FIELDS]
    (one,) = json.loads(WIRES["mlserver"].row_body(EXAMPLE))["inputs"]
    assert one["shape"] == [1, 8]
    assert one["data"] == [2.0, 148.0, 72.0, 35.0, 0.0, 33.6, 0.674, 22.0]


def test_bentoml_batch_is_an_array_of_rows() -> None:
    rows = generated_rows(2)
    body = json.loads(WIRES["bentoml"].batch_body(rows))
    assert body == {"rows": [[float(row[name]) for name in FIELDS] for row in rows]}
    assert WIRES["bentoml"].batch_path == "/predict_batch"


@pytest.mark.parametrize(
    ("name", "answer", "labels"),
    [
        ("modelapi", [{"outcome": 1}, {"outcome": 0}], [1, 0]),
        ("naive", [{"outcome": 0}], [0]),
        ("mlserver", {"outputs": [{"name": "predict", "data": [1.0, 0.0, 1.0]}]}, [1, 0, 1]),
        ("bentoml", [0, 1], [0, 1]),
    ],
)
def test_batch_answers_are_read_as_labels(name: str, answer: object, labels: list[int]) -> None:
    assert WIRES[name].labels(answer) == labels


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("modelapi", {"label": 1}),
        ("modelapi", [{"outcome": 0.5}]),
        ("modelapi", [{"outcome": True}]),
        ("mlserver", {"outputs": []}),
        ("mlserver", {"outputs": [{"data": "1"}]}),
        ("mlserver", {"outputs": [{"data": [2.0]}]}),
        ("bentoml", {"outcome": 1}),
        ("bentoml", ["1"]),
    ],
)
def test_answers_that_are_not_labels_are_refused(name: str, answer: object) -> None:
    with pytest.raises(ValueError, match="must"):
        WIRES[name].labels(answer)


@pytest.mark.parametrize(
    ("name", "body", "is_correct"),
    [
        ("modelapi", b'{"outcome": 1}', True),
        ("modelapi", b'{"outcome": 0}', False),
        ("modelapi", b"[]", False),
        ("bentoml", b'{"outcome": 1}', True),
        ("bentoml", b"[1]", False),
        ("mlserver", b'{"outputs": [{"data": [1.0]}]}', True),
        ("mlserver", b'{"outputs": [{"data": [1.0, 1.0]}]}', False),
        ("naive", b"Internal Server Error", False),
        ("ceiling", b"anything", True),
    ],
)
def test_a_server_is_up_at_its_first_correct_answer(
    tmp_path: Path, name: str, body: bytes, is_correct: bool
) -> None:
    servers = launcher(tmp_path, expected=1)
    assert servers.is_correct(name, Answer(200, body)) is is_correct
    assert not servers.is_correct(name, Answer(500, body))


def test_the_labels_check_passes_only_on_the_same_labels() -> None:
    check_labels("mlserver", [0, 1, 1], [0, 1, 1], "test rows")
    with pytest.raises(
        RuntimeError, match=r"disagrees with modelapi on 2 of the 3 test rows \(first at row 1\)"
    ):
        check_labels("mlserver", [0, 0, 0], [0, 1, 1], "test rows")
    with pytest.raises(RuntimeError, match="bentoml answered 2 labels for the 3 batch rows"):
        check_labels("bentoml", [0, 1], [0, 1, 1], "batch rows")
    with pytest.raises(RuntimeError, match="disagrees with scikit-learn"):
        check_labels("modelapi", [1], [0], "test rows", oracle="scikit-learn")


def pima_csv() -> Path:
    """The Pima data set, found as the project's tests find it."""
    path = Path(os.environ.get("MODELAPI_TEST_DATA", REPO.parent / "shared/data/pima.csv"))
    assert path.is_file(), f"Pima data not found at {path}; set MODELAPI_TEST_DATA"
    return path


def test_the_contract_model_is_scikit_learns_with_the_contract_accuracy() -> None:
    import numpy as np

    contract = fit_contract(pima_csv())
    assert len(contract.test_rows) == 231
    assert all(isinstance(row["pregnancies"], int) for row in contract.test_rows)
    assert all(isinstance(row["bmi"], float) for row in contract.test_rows)
    table = np.loadtxt(pima_csv(), delimiter=",", skiprows=1)
    by_row = {tuple(row[:-1]): int(row[-1]) for row in table.tolist()}
    truth = [by_row[tuple(float(row[name]) for name in FIELDS)] for row in contract.test_rows]
    labels = contract.labels(contract.test_rows)
    accuracy = sum(a == b for a, b in zip(labels, truth, strict=True)) / len(truth)
    assert accuracy == 0.7835497835497836


def test_the_contract_refuses_a_csv_that_is_not_pima(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n")
    with pytest.raises(RuntimeError, match="8 feature columns and the label last"):
        fit_contract(other)


def wrk(rate: float) -> WrkResult:
    """A wrk round at `rate` req/s."""
    return WrkResult(requests=int(rate), duration_s=1.0, requests_per_s=rate)


def test_ratios_are_medians_of_the_ratios_within_a_round() -> None:
    rounds = {
        "modelapi": [wrk(100), wrk(300), wrk(200)],
        "mlserver": [wrk(10), wrk(100), wrk(10)],
    }
    # Per round 10, 3 and 20: the median is 10 (the ratio of the medians would be 2).
    assert ratios(rounds, ["mlserver"]) == {"modelapi_to_mlserver": 10.0}


def compared_figures() -> dict[str, float]:
    """Figures of modelapi and two peers, as the runner writes them."""
    return flatten(
        {
            "single_row": {
                "modelapi": {"requests_per_s": 10_000.0, "latency_ms": {"p99": 5.0}},
                "mlserver": {"requests_per_s": 1_000.0, "latency_ms": {"p99": 50.0}},
                "bentoml": {"requests_per_s": 400.0, "latency_ms": {"p99": 100.0}},
                "ratios": {"modelapi_to_mlserver": 9.5, "modelapi_to_bentoml": 24.0},
            },
            "batch": {
                "modelapi": {"rows_per_s": 400_000},
                "mlserver": {"rows_per_s": 500_000},
                "ratios": {"modelapi_to_mlserver": 0.8},
            },
            "cold_start": {"modelapi": {"median_ms": 250.0}, "mlserver": {"median_ms": 2500.0}},
            "sizes": {
                "modelapi": {"site_packages_bytes": 30_000_000},
                "mlserver": {"site_packages_bytes": 480_000_000},
            },
            "memory": {
                "modelapi": {"rss_bytes": 35_000_000},
                "mlserver": {"rss_bytes": 70_000_000},
            },
        }
    )


def test_advantages_read_each_figure_the_way_it_is_good() -> None:
    found = advantages(compared_figures(), ["mlserver", "bentoml"])
    assert found["mlserver"] == {
        "single row req/s": 9.5,  # the per-round median, not 10,000 / 1,000
        "single row p99 ms": 10.0,
        "batch rows/s (1,000 rows)": 0.8,  # above 1 only when modelapi is ahead
        "cold start ms": 10.0,
        "installed MB": 16.0,
        "RSS after load MB": 2.0,
    }
    assert found["bentoml"]["single row p99 ms"] == 20.0
    assert found["bentoml"]["batch rows/s (1,000 rows)"] is None  # not measured


def test_comparison_table_has_a_row_per_figure_and_a_column_per_peer() -> None:
    lines = format_comparison(compared_figures(), ["mlserver", "bentoml"]).splitlines()
    assert len(lines) == 2 + len(FIGURES)
    assert len({len(line) for line in lines}) == 1  # columns line up
    assert [cell.strip() for cell in lines[0].strip("|").split("|")] == [
        "figure",
        "modelapi",
        "mlserver",
        "bentoml",
    ]
    (rate,) = [line for line in lines if line.startswith("| single row req/s")]
    assert [cell.strip() for cell in rate.strip("|").split("|")] == [
        "single row req/s",
        "10,000",
        "1,000 (9.50x)",
        "400 (24.00x)",
    ]
    (batch,) = [line for line in lines if line.startswith("| batch")]
    assert "500,000 (0.80x)" in batch
    assert batch.rstrip(" |").endswith("n/a")


def test_a_run_without_the_naive_peer_does_not_judge_the_ratio_to_it() -> None:
    figures = compared_figures()
    judged = {v.target.name for v in judge(figures, peers=("mlserver",))}
    assert "single row vs naive" not in judged
    assert "single row vs ceiling" in judged
    verdicts = {v.target.name: v for v in judge(figures, peers=("naive",))}
    assert verdicts["single row vs naive"].measured is None  # chosen, so a miss when missing


def test_descendants_follow_parent_ids() -> None:
    parents = {10: 1, 11: 10, 12: 11, 13: 10, 20: 1}
    assert sorted(descendants(10, parents)) == [11, 12, 13]
    assert descendants(20, parents) == []


# A server that starts a child (in a session of its own with argv[3] = 1, as circus does),
# answers its first argv[2] POSTs with 404 (a model still loading) and then 200; SIGINT ends
# it, and not the child.
_FORKING_SERVER = """
import http.server, subprocess, sys
command = [sys.executable, "-c", "import time; time.sleep(120)"]
child = subprocess.Popen(command, start_new_session=sys.argv[3] == "1")
print(child.pid, flush=True)
not_found = int(sys.argv[2])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global not_found
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(404 if not_found > 0 else 200)
        not_found -= 1
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


class ForkingServers:
    """Starts forking servers in a folder and remembers every child they started."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.children: list[int] = []

    def start(
        self, not_found: int = 0, starting: tuple[int, ...] = (), own_session: bool = False
    ) -> Server:
        """Start one (`not_found` 404s first); its child's id is appended to `children`."""
        port, log = free_port(), self.folder / f"server-{len(self.children)}.log"
        options = [str(port), str(not_found), "1" if own_session else "0"]
        command = [sys.executable, "-c", _FORKING_SERVER, *options]

        def ok(answer: Answer) -> bool:
            return answer.status == 200

        try:
            return start_server("forking", command, port, b"{}", ok, log=log, starting=starting)
        finally:
            self.children.extend(int(pid) for pid in log.read_text().split()[:1])


@pytest.fixture
def forking(tmp_path: Path) -> Iterator[ForkingServers]:
    """Forking servers; any child still alive at the end is ended."""
    servers = ForkingServers(tmp_path)
    yield servers
    for child in servers.children:
        if _is_alive(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("own_session", [False, True])
def test_stopping_a_server_ends_the_processes_it_started(
    forking: ForkingServers, own_session: bool
) -> None:
    server = forking.start(own_session=own_session)
    rss, processes = tree_rss_bytes(server.process.pid)
    assert processes == 2
    assert rss > 0
    server.stop()
    assert _has_ended(forking.children[-1])


def test_a_server_still_loading_its_model_is_polled_through(forking: ForkingServers) -> None:
    server = forking.start(not_found=3, starting=(404,))
    assert server.process.poll() is None
    server.stop()
    with pytest.raises(RuntimeError, match="forking answered 404"):
        forking.start(not_found=3, own_session=True)
    assert _has_ended(forking.children[-1])  # a failed start leaves nothing behind either


def _has_ended(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while _is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _is_alive(pid)


def _is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"  # a zombie has ended; its parent's parent reaps it


def test_generated_rows_stay_inside_the_training_ranges() -> None:
    rows = generated_rows(200)
    assert rows == generated_rows(200)  # seeded
    assert all(21 <= row["age"] <= 81 for row in rows)
    assert all(math.isclose(row["bmi"], round(row["bmi"], 1)) for row in rows)
