"""Start servers pinned to a core, time them to their first correct answer, read their memory."""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLIENT_CPU",
    "EVERY_CPU",
    "SERVER_CPU",
    "SERVING_PACKAGES",
    "Answer",
    "Server",
    "byte_compile",
    "descendants",
    "free_port",
    "pin_self",
    "pinned",
    "post",
    "rss_bytes",
    "run_measured",
    "start_server",
    "tree_rss_bytes",
]

SERVER_CPU, CLIENT_CPU = 0, 1
# `modelapi predict` scores blocks with a worker process per CPU: it runs alone, on all of them
# (a child of this process would otherwise inherit its pinning to CLIENT_CPU).
EVERY_CPU = tuple(range(os.cpu_count() or 1))
Check = Callable[["Answer"], bool]


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status and body."""

    status: int
    body: bytes

    def json(self) -> object:
        """The body decoded as JSON."""
        return json.loads(self.body)


def pin_self() -> bool:
    """Pin this process (the load generator) to CLIENT_CPU; False when there is one core."""
    if len(os.sched_getaffinity(0)) < 2 or (os.cpu_count() or 1) < 2:
        return False
    os.sched_setaffinity(0, {CLIENT_CPU})
    return True


def pinned(command: Sequence[str], cpu: int | Sequence[int] | None = SERVER_CPU) -> list[str]:
    """The command run under `taskset -c cpu` (the command keeps its process id)."""
    if cpu is None:
        return list(command)
    cpus = ",".join(map(str, [cpu] if isinstance(cpu, int) else cpu))
    return ["taskset", "-c", cpus, *command]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
        return port


def post(
    port: int, path: str, body: bytes, content_type: str = "application/json", timeout_s: float = 5
) -> Answer:
    """POST a body to 127.0.0.1:port on a new connection; raise OSError when it fails."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("POST", path, body, {"Content-Type": content_type})
        response = connection.getresponse()
        return Answer(response.status, response.read())
    finally:
        connection.close()


@dataclass(slots=True)
class Server:
    """A server process and the seconds from its launch to its first correct answer."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    first_answer_s: float

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop it (SIGINT, then SIGKILL after 10 s), and any process it left behind."""
        tree = _started_under(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _end_leftovers(self.process, tree)


def _started_under(pid: int) -> list[tuple[int, str]]:
    """The processes under `pid`, each with its start time (so that a reused id is not hit)."""
    return [(child, start) for child in descendants(pid) if (start := _start_time(child))]


def _start_time(pid: int) -> str:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return text[text.rindex(")") + 2 :].split()[19]  # field 22, starttime


def _end_leftovers(process: subprocess.Popen[bytes], tree: list[tuple[int, str]]) -> None:
    # Each server leads its own process group, but its processes may leave it (under `bentoml
    # serve`, circus starts each worker in a session of its own): what is left of the group,
    # and of the processes seen under the server before it stopped, is ended with it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid, start in tree:
        if _start_time(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_server(
    name: str,
    command: Sequence[str],
    port: int,
    probe: bytes,
    check: Check,
    *,
    log: Path,
    path: str = "/predict",
    starting: Collection[int] = (),
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = 60,
) -> Server:
    """Launch a server and POST `probe` to `path` until `check` accepts the answer.

    The time from launch to that answer is its cold start; its output goes to `log`. An answer
    with a status in `starting` (a server that listens before its model is loaded) is polled
    through. Raises RuntimeError when the process exits, the deadline passes first, or any
    other answer is refused by `check`.
    """
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        seconds = _first_answer(
            name, process, port, (path, probe), check, starting, log, started + timeout_s
        )
    except BaseException:  # an interrupt too: leave no server behind
        tree = _started_under(process.pid)
        process.kill()
        process.wait()
        _end_leftovers(process, tree)
        raise
    return Server(name, process, port, seconds - started)


def _first_answer(
    name: str,
    process: subprocess.Popen[bytes],
    port: int,
    request: tuple[str, bytes],
    check: Check,
    starting: Collection[int],
    log: Path,
    deadline: float,
) -> float:
    path, probe = request
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            error = log.read_text(errors="replace").strip()[-800:]
            raise RuntimeError(f"{name} exited with {process.returncode}: {error}")
        try:
            answer = post(port, path, probe, timeout_s=max(0.1, deadline - time.perf_counter()))
        except OSError:
            time.sleep(0.001)
            continue
        if check(answer):
            return time.perf_counter()
        if answer.status in starting:
            time.sleep(0.001)
            continue
        raise RuntimeError(f"{name} answered {answer.status} {answer.body[:200]!r}")
    raise RuntimeError(f"{name} did not answer within the deadline")


def rss_bytes(pid: int) -> int:
    """The resident set size of a running process, in bytes."""
    return _status_bytes(pid, "VmRSS")


def _status_bytes(pid: int, field: str) -> int:
    """A memory figure of /proc/PID/status, in bytes; RuntimeError when it has none (a
    zombie), OSError when the process is gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for process {pid}")


def descendants(pid: int, parents: Mapping[int, int] | None = None) -> list[int]:
    """The processes under `pid` (children, theirs, ...), from every process's parent id."""
    if parents is None:
        parents = _parents()
    found: list[int] = []
    frontier = {pid}
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = set(children)
    return found


def _parents() -> dict[int, int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it exited meanwhile
            continue
        # The command name is in parentheses and may hold spaces: the fields follow the last ")".
        fields = text[text.rindex(")") + 2 :].split()
        parents[int(stat.parent.name)] = int(fields[1])
    return parents


def tree_rss_bytes(pid: int) -> tuple[int, int]:
    """The resident set sizes of a process and all its descendants, added up; and their count.

    BentoML serves from an arbiter and a worker process; the other servers are one process.
    """
    pids = [pid, *descendants(pid)]
    total = 0
    for one in pids:
        try:
            total += rss_bytes(one)
        except (OSError, RuntimeError):  # exited, or a zombie without memory
            continue
    return total, len(pids)


def run_measured(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, int, str]:
    """Run a command to its end: (wall seconds, peak RSS bytes, stderr). Raise when it fails.

    The peak is the command's own high-water mark (VmHWM), read every few milliseconds while
    it runs. wait4's ru_maxrss cannot tell it: exec keeps the larger of the old and the new
    memory's peaks, and the old one is this process's forked copy (over 200 MB here).
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    peak = [0]
    watcher = threading.Thread(target=_watch_peak, args=(process, peak), daemon=True)
    watcher.start()
    with process.stderr:
        stderr = process.stderr.read().decode(errors="replace")
    process.wait()
    seconds = time.perf_counter() - started
    watcher.join()
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}): {stderr.strip()[-800:]}")
    return seconds, peak[0], stderr


def _watch_peak(process: subprocess.Popen[bytes], peak: list[int]) -> None:
    """Keep the last VmHWM of a running process in peak[0] (a high-water mark only grows)."""
    while process.poll() is None:
        # Popen returns once the command is exec'd: this is its memory, not this process's.
        try:
            peak[0] = max(peak[0], _status_bytes(process.pid, "VmHWM"))
        except (OSError, RuntimeError):  # exited meanwhile
            return
        time.sleep(0.002)


# What `modelapi serve` and `modelapi predict` import, byte-compiled before they are timed.
SERVING_PACKAGES = ("modelapi", "numpy", "click", "msgspec")


def byte_compile(packages: Sequence[str]) -> None:
    """Byte code for the packages `modelapi predict` imports, as installing their wheels makes
    (pip does; uv only when asked): without it, every launch compiles numpy's sources again,
    and with PYTHONDONTWRITEBYTECODE set, keeps doing so (about 0.3 s a launch here)."""
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", folder],
                capture_output=True,
                check=False,
                timeout=600,
            )
