"""Run the fenced blocks of the project's documents, in order, as a reader would.

A block runs when its info string says so after the language:

- ```` ```sh test ````: the block runs in bash (`set -euo pipefail`) and must exit 0;
- ```` ```console test ````: each `$ command` runs in turn (a line ending in `\\` goes on);
  what it prints must match the lines shown under it (when any are shown), where a line `...`
  stands for any lines and `...` inside a line for any text; `$ export NAME=VALUE` holds for
  the commands after it in the document, as in the reader's shell;
- ```` ```python test ````: the block runs in a fresh interpreter and must exit 0;
- ```` ```sh test-background ````: the block starts a server, left running for the blocks after
  it; the harness waits until `/ping` answers on the block's port. A server started before it
  is stopped first, as a reader stops one server before starting the next on the same port.

Every sh, console, bash and python block is either run or says why not: ```` ```sh no-test ````
right after an HTML comment `<!-- not run: the reason -->`. The blocks of one document run in
one temporary folder holding a copy of the Pima data as `pima.csv`, with the port 8000
replaced by a free one, `s3://` buckets the document names created on a local moto server,
no MODELAPI_* variable from outside, and curl without its progress meter (as on a terminal,
where the meter is not shown with the answer).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["COMMAND_LANGUAGES", "Block", "DocumentRun", "blocks_of", "matches"]

COMMAND_LANGUAGES = frozenset({"sh", "bash", "console", "python"})
_FENCE = re.compile(r"^```(\S*)(?:[ \t]+(\S+))?[ \t]*$")
_NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->")
_BUCKET = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])")
_EXPORT = re.compile(r"export ([A-Za-z_][A-Za-z0-9_]*)=(\S*)")
_TIMEOUT_S = 300


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and mode, its text, and why it is not run."""

    path: Path
    line: int
    language: str
    mode: str
    text: str
    not_run_reason: str = ""

    @property
    def where(self) -> str:
        """`file:line` of the opening fence."""
        return f"{self.path.name}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opened = _FENCE.match(lines[index])
        if opened is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index] != "```":
            body.append(lines[index])
            index += 1
        previous = lines[start - 1] if start > 0 else ""
        reason = _NOT_RUN.search(previous)
        blocks.append(
            Block(
                path,
                start + 1,
                opened.group(1),
                opened.group(2) or "",
                "\n".join(body),
                reason.group(1) if reason else "",
            )
        )
        index += 1
    return blocks


def matches(expected: str, actual: str) -> bool:
    """Whether printed text matches the shown text (`...` lines and in-line `...` wildcards)."""
    want = [line.rstrip() for line in expected.strip("\n").splitlines()]
    got = [line.rstrip() for line in actual.strip("\n").splitlines()]
    return _match_lines(want, got)


def _match_lines(want: list[str], got: list[str]) -> bool:
    if not want:
        return not got
    head, rest = want[0], want[1:]
    if head == "...":
        return any(_match_lines(rest, got[skip:]) for skip in range(len(got) + 1))
    if not got:
        return False
    pattern = ".*".join(re.escape(part) for part in head.split("..."))
    return re.fullmatch(pattern, got[0]) is not None and _match_lines(rest, got[1:])


def _commands(text: str) -> list[tuple[str, str]]:
    """(command, what it prints) pairs of a console block."""
    lines = text.splitlines()
    pairs: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith("$ "):
            index += 1
            continue
        command = [lines[index][2:]]
        while command[-1].endswith("\\") and index + 1 < len(lines):
            index += 1
            command.append(lines[index])
        index += 1
        output: list[str] = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        pairs.append(("\n".join(command), "\n".join(output)))
    return pairs


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DocumentRun:
    """The state of one document's run: its folder, environment and background servers."""

    folder: Path
    environ: dict[str, str]
    port: int = field(default_factory=_free_port)
    _servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def start(
        cls, folder: Path, data: Path, s3_endpoint: str | None, extra_env: Mapping[str, str]
    ) -> DocumentRun:
        """A run in `folder`, with the Pima copy as pima.csv and, if given, S3 at moto."""
        shutil.copy(data, folder / "pima.csv")
        (folder / ".curlrc").write_text("--silent\n--show-error\n")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELAPI_")}
        bin_dir = str(Path(sys.executable).parent)
        environ["PATH"] = bin_dir + os.pathsep + environ.get("PATH", "")
        environ["PYTHONDONTWRITEBYTECODE"] = "1"
        environ["CURL_HOME"] = str(folder)
        if s3_endpoint is not None:
            environ.update(
                AWS_ENDPOINT_URL_S3=s3_endpoint,
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_DEFAULT_REGION="us-east-1",
            )
            environ.pop("AWS_PROFILE", None)
        environ.update(extra_env)
        return cls(folder, environ)

    def text(self, block: Block) -> str:
        """The block's text with the documented port replaced by this run's own."""
        return re.sub(r"\b8000\b", str(self.port), block.text)

    def run(self, block: Block) -> None:
        """Run one block; raise AssertionError naming it when it fails."""
        text = self.text(block)
        if block.mode == "test-background":
            self._background(block, text)
        elif block.language == "console":
            for command, expected in _commands(text):
                exported = _EXPORT.fullmatch(command.split(" #")[0].strip())
                if exported is not None:
                    self.environ[exported.group(1)] = exported.group(2)
                    continue
                result = self._shell(command, merged=True)
                printed = result.stdout
                assert result.returncode == 0 or expected.startswith("error:"), (
                    f"{block.where}: `{command}` exited {result.returncode}:\n{printed}"
                )
                assert not expected.strip() or matches(expected, printed), (
                    f"{block.where}: `{command}` printed:\n{printed}\nexpected:\n{expected}"
                )
        elif block.language == "python":
            result = subprocess.run(
                [sys.executable, "-c", text],
                cwd=self.folder,
                env=self.environ,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
                check=False,
            )
            assert result.returncode == 0, f"{block.where} failed:\n{result.stderr[-3000:]}"
        else:
            result = self._shell(text)
            printed = (result.stdout + result.stderr)[-3000:]
            assert result.returncode == 0, f"{block.where} exited {result.returncode}:\n{printed}"

    def buckets(self, text: str) -> set[str]:
        """The `s3://` buckets a document names."""
        return set(_BUCKET.findall(text))

    def close(self) -> None:
        """Stop the background servers."""
        for server in self._servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait(10)
            if server.stderr is not None:
                server.stderr.close()
        self._servers.clear()

    def _shell(self, command: str, *, merged: bool = False) -> subprocess.CompletedProcess[str]:
        # merged: stderr interleaved with stdout, in the order a terminal shows them
        return subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + command],
            cwd=self.folder,
            env=self.environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merged else subprocess.PIPE,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )

    def _background(self, block: Block, text: str) -> None:
        self.close()
        server = subprocess.Popen(
            ["bash", "-c", text],
            cwd=self.folder,
            env=self.environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._servers.append(server)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.poll() is not None:
                error = server.stderr.read().decode() if server.stderr else ""
                raise AssertionError(f"{block.where}: the server exited:\n{error[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{block.where}: no answer on port {self.port} within 120 s")
