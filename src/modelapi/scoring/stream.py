"""Streaming a CSV file of any size through a scorer: blocks of lines in, scored lines out.

Memory stays flat however long the file is: only a few blocks of lines (`chunk_rows` each)
are held at a time. The output is the input's columns followed by the answer columns, one
output row per input row, blank lines dropped.

Each block takes one of two paths, with the same answers:

- the block path (`BlockScorer.score_block`): a block of plain lines (no quotes, no CR,
  valid UTF-8), scored whole; `modelapi.scoring.columnar` does this with numpy, and a server can
  take such a block as it is. It declines (None) what it cannot take as it is, blank lines
  included, and the record path follows.
- the record path (`BlockScorer.score_records`): the csv module reads records (quotes,
  multi-line cells, CRLF), and the scorer validates and scores them, naming the first bad line
  as `line N, field: reason` (the header is line 1). A scorer made to skip bad lines answers
  each with its InvalidInput instead: the line is left out of the output and handed to
  `rejected`, in file order, and the rest is scored.

A file without a header (`header_names` given) has its first line scored as data, under the
names `header_names(width)` gives.

With several workers, plain blocks are scored by processes forked from this one where the
system forks safely (Linux: `_Workers`), and by threads elsewhere. Threads share the GIL,
which numpy releases in its array loops but not between them: on two cores they scored a
100-tree forest 1.2-1.4 times as fast as one, processes 1.7 times. Blocks are written in file
order, whichever finishes first.
"""

from __future__ import annotations

import csv
import io
import mmap
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from itertools import chain
from typing import BinaryIO, NamedTuple, Protocol

from modelapi.errors import InvalidInput, MalformedBody

__all__ = ["MAX_LINE_BYTES", "BlockScorer", "Record", "Scored", "csv_line", "score_csv"]

Record = list[str]
# A record's answer cells, or (a scorer that skips bad lines) why the line was refused.
Scored = Record | InvalidInput
# A longer line is refused, naming it: memory holds at most a few blocks of lines, so it must
# not grow with the longest line either (a 300 MiB line once took 2.19 GB).
MAX_LINE_BYTES = 1024 * 1024
# A block stops short of its line count past this size, and no read asks for more than
# _MAX_READ_BYTES: with long lines, a block of 32,768 of them would otherwise be gigabytes.
_MAX_BLOCK_BYTES = 32 * 1024 * 1024
_MAX_READ_BYTES = 4 * 1024 * 1024


class BlockScorer(Protocol):
    """Scores the rows of one CSV layout (its header is fixed when the scorer is made)."""

    parallel: bool  # whether blocks may be scored by several workers at once

    def score_block(self, block: bytes, first_line: int) -> bytes | None:
        """Output lines for a block of plain `\\n`-ended lines, or None for the record path.

        A block with a blank line always goes to the record path, which drops those lines.
        """
        ...

    def score_records(self, records: Sequence[Record], lines: Sequence[int]) -> list[Scored]:
        """The answer cells for each record; raise InvalidInput naming the first bad line
        (or, for a scorer that skips bad lines, answer that line with its InvalidInput)."""
        ...


def csv_line(cells: Sequence[str]) -> bytes:
    """One CSV row as csv.writer writes it, without a line end."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue().encode()


class _Lines:
    """Whole lines from a binary stream, a block at a time; counts the bytes handed out."""

    def __init__(self, raw: BinaryIO, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._raw = raw
        self._max_line_bytes = max_line_bytes
        self._pending = b""
        self._eof = False
        self._bytes_per_line = 64.0
        self.bytes_read = 0
        self.lines_read = 0
        self._read_bytes = min(_MAX_READ_BYTES, max_line_bytes)

    def _too_long(self, have: int) -> MalformedBody:
        return MalformedBody(
            f"line {self.lines_read + have + 1}",
            f"is longer than {self._max_line_bytes} bytes; a CSV row this long is not a row of"
            " features (is the file CSV, with line ends?)",
        )

    def take(self, n_lines: int) -> tuple[bytes, int]:
        """Up to `n_lines` whole lines and how many they are; (b"", 0) at EOF.

        Each line ends in `\\n`, added to a last line that has none. Fewer lines come back
        when they fill a block; MalformedBody names a line longer than the limit.
        """
        pending = self._pending
        parts = [pending]
        have = pending.count(b"\n")
        size = len(pending)
        tail = size - pending.rfind(b"\n") - 1  # bytes of the line not yet ended
        while have < n_lines and not self._eof and (have == 0 or size < _MAX_BLOCK_BYTES):
            wanted = int((n_lines - have) * self._bytes_per_line * 1.02)
            # Reads no longer than a line may be: a line within one read is short enough, and
            # one across reads is measured where it ends (or as it grows).
            piece = self._raw.read(min(self._read_bytes, max(4096, wanted)))
            if not piece:
                self._eof = True
                break
            parts.append(piece)
            size += len(piece)
            first = piece.find(b"\n")
            if first < 0:
                tail += len(piece)
                if tail > self._max_line_bytes:
                    raise self._too_long(have)
                continue
            if tail + first > self._max_line_bytes:
                raise self._too_long(have)
            tail = len(piece) - piece.rfind(b"\n") - 1
            have += piece.count(b"\n")
        data = b"".join(parts)
        if have >= n_lines:
            cut = _after_newline(data, n_lines, have)
            have = n_lines
        elif not self._eof:  # the block is full: its whole lines now, the rest next time
            cut = _after_newline(data, have, have)
        else:
            cut = len(data)
            if data and not data.endswith(b"\n"):
                data += b"\n"
                cut += 1
                have += 1
        block, self._pending = data[:cut], data[cut:]
        self.bytes_read += len(block)
        self.lines_read += have
        if n_lines >= 64 and block:
            self._bytes_per_line = len(block) / max(1, have)
        return block, have

    @property
    def exhausted(self) -> bool:
        """Whether every line of the stream has been handed out."""
        return self._eof and not self._pending

    def put_back(self, block: bytes) -> None:
        """Hand `block` (the lines taken last) out again on the next take."""
        self._pending = block + self._pending
        self.bytes_read -= len(block)


def _after_newline(data: bytes, n: int, total: int) -> int:
    """The index just past the n-th newline of data, which holds `total` newlines."""
    if n <= total - n:
        at = -1
        for _ in range(n):
            at = data.find(b"\n", at + 1)
        return at + 1
    at = len(data)
    for _ in range(total - n + 1):
        at = data.rfind(b"\n", 0, at)
    return at + 1


def _plain(block: bytes) -> bytes | None:
    """The block with CRLF made LF if it has no quote, CR or invalid UTF-8, else None.

    Blank lines are left to the scorer: a search for `\\n\\n` is ten times slower than the
    one-byte searches here, and the columnar path finds them anyway (a row short of columns).
    """
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
        if b"\r" in block:
            return None
    if b'"' in block:
        return None
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return block


def _decode(block: bytes, first_line: int) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + block.count(b"\n", 0, exc.start)
        raise MalformedBody(f"line {line}", "is not UTF-8 text") from None


def _read_records(
    lines: Iterator[str], first_line: int, until_line: int
) -> tuple[list[tuple[Record, int]], int]:
    """CSV records with the line each starts on, through the record that ends past until_line.

    A quoted cell may run past `until_line`: the reader then pulls its lines from `lines`.
    Returns the records and the last line read.
    """
    reader = csv.reader(lines)
    done = first_line - 1
    records = []
    while done < until_line:
        try:
            record = next(reader, None)
        except csv.Error as exc:
            raise MalformedBody(f"line {done + 1}", f"is not valid CSV ({exc})") from None
        if record is None:
            break
        start, done = done + 1, first_line - 1 + reader.line_num
        if record:
            records.append((record, start))
    return records, done


def score_csv(
    source: BinaryIO,
    out: BinaryIO,
    scorer_for: Callable[[Record], tuple[BlockScorer, list[str]]],
    *,
    chunk_rows: int = 32_768,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    rejected: Callable[[InvalidInput], None] | None = None,
    header_names: Callable[[int], list[str]] | None = None,
) -> int:
    """Score a CSV stream into `out`; return the number of rows scored.

    `scorer_for(header)` gives the scorer for the file's header and the answer column names.
    With `workers` > 1 and a scorer that allows it, plain blocks are scored by that many
    workers (`_Workers`), written in order; at most 2 x workers + 1 blocks are held.
    `progress(n_bytes)` is called after each block is written with the bytes it read.
    `rejected(error)` is called, in file order, for each line a skipping scorer refused.
    Raise InvalidInput naming the first bad line (rows before it are already written), or a
    line longer than `max_line_bytes`, so that memory stays flat whatever the input.
    """
    lines = _Lines(source, max_line_bytes)
    line_no = 0

    def more() -> Iterator[str]:
        # Lines after a block, for a quoted cell that runs on past the block's end.
        while line := lines.take(1)[0]:
            yield _decode(line, line_no + 1)

    first, _ = lines.take(1)
    if not first:
        raise InvalidInput("input", "is empty: the first line must be a header naming the columns")
    first = first.removeprefix(b"\xef\xbb\xbf")
    if header_names is not None:
        header = header_names(len(next(csv.reader([_decode(first, 1)]), [])))
        lines.put_back(first)
    else:
        found, line_no = _read_records(chain([_decode(first, 1)], more()), 1, 1)
        header = found[0][0] if found else []
    scorer, answers = scorer_for(header)
    out.write(csv_line([*header, *answers]) + b"\n")
    n_rows = 0
    pending: deque[tuple[Future[_Written] | _Written, int]] = deque()
    reported = lines.bytes_read

    def write(keep: int) -> None:
        nonlocal reported, n_rows
        while len(pending) > keep:
            job, read = pending.popleft()
            if isinstance(job, Future):
                assert pool is not None
                written = pool.result(job)
                out.write(written.text)
                pool.release(job)  # its region held the text just written
            else:
                written = job
                out.write(written.text)
            n_rows += written.n_rows
            for error in written.rejected:
                assert rejected is not None, "only a scorer that skips bad lines refuses one"
                rejected(error)
            if progress is not None:
                progress(read - reported)
            reported = read

    workers = workers if scorer.parallel else 1
    # Two blocks a worker: one scored, one waiting, so that no worker idles while this
    # process writes an answer and reads the next block (7 % of a Pima file's time).
    in_flight = 1 if workers == 1 else 2 * workers
    pool: _Workers | None = None
    with ExitStack() as stack:
        while True:
            block, n_block = lines.take(chunk_rows)
            if not block:
                break
            plain = _plain(block)
            if plain is not None:
                # A file of one block is scored here: forking would cost more than it saves.
                if workers == 1 or (pool is None and lines.exhausted):
                    pending.append((_score_plain(scorer, plain, line_no + 1), lines.bytes_read))
                else:
                    if pool is None:
                        pool = stack.enter_context(_Workers(scorer, workers, in_flight + 1))
                    pending.append((pool.submit(plain, line_no + 1), lines.bytes_read))
                line_no += n_block
                write(in_flight)
                continue
            write(0)
            text_lines = io.StringIO(_decode(block, line_no + 1), newline="").readlines()
            written, line_no = _score_records(
                scorer, chain(text_lines, more()), line_no + 1, line_no + len(text_lines)
            )
            pending.append((written, lines.bytes_read))
            write(0)
        write(0)
    return n_rows


class _Workers:
    """Workers scoring plain blocks: processes forked from this one on Linux, threads elsewhere.

    A forked worker inherits the scorer, which is not pickled, and regions of memory shared
    with this process, a pair (lines in, answered lines out) per block in flight. A block and
    its answer are copied into and out of them once; through the executor's pipe they were
    pickled and copied several times over, read back 64 KB at a time (8 % of a Pima file's
    time). A block or answer too big for its region goes through the pipe.
    """

    _IN_BYTES = 8 * 1024 * 1024
    _OUT_BYTES = 16 * 1024 * 1024

    def __init__(self, scorer: BlockScorer, n: int, n_regions: int) -> None:
        self._scorer = scorer
        self._regions: list[tuple[mmap.mmap, mmap.mmap]] = []
        self._free: list[int] = []
        self._held: dict[Future[_Written], int] = {}
        if sys.platform != "linux":  # forking is unsafe elsewhere (macOS) or absent (Windows)
            self._pool: Executor = ThreadPoolExecutor(n)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Anonymous shared mappings: only the pages written are ever resident.
        self._regions = [
            (mmap.mmap(-1, self._IN_BYTES), mmap.mmap(-1, self._OUT_BYTES))
            for _ in range(n_regions)
        ]
        self._free = list(range(n_regions))
        # Every worker is forked at the first submit (the executor's rule for fork). The
        # output's buffered bytes are not written twice: multiprocessing flushes the standard
        # streams before it forks, and a worker leaves with os._exit, which flushes no other.
        self._pool = ProcessPoolExecutor(
            n,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_adopt,
            initargs=(scorer, self._regions),
        )

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown()
        for region in self._regions:
            for part in region:
                # A view of an answer still held (an error on the way out) keeps it open.
                with suppress(BufferError):
                    part.close()

    def submit(self, plain: bytes, first_line: int) -> Future[_Written]:
        """Score a plain block; its Future's result is for `result`, then `release`."""
        if not self._regions:
            return self._pool.submit(_score_plain, self._scorer, plain, first_line)
        if len(plain) > self._IN_BYTES or not self._free:
            return self._pool.submit(_score_given, plain, first_line)
        index = self._free.pop()
        self._regions[index][0][: len(plain)] = plain
        job = self._pool.submit(_score_shared, index, len(plain), first_line)
        self._held[job] = index
        return job

    def result(self, job: Future[_Written]) -> _Written:
        """The block's answer; its text may be a view of a region, valid until `release`."""
        written = job.result()
        index = self._held.get(job)
        if index is None or written.shared < 0:
            return written
        return written._replace(text=memoryview(self._regions[index][1])[: written.shared])

    def release(self, job: Future[_Written]) -> None:
        """Give the block's region back (its answer has been written)."""
        index = self._held.pop(job, None)
        if index is not None:
            self._free.append(index)


# What a worker process scores with and through: the parent's, adopted when it starts.
_adopted: list[tuple[BlockScorer, list[tuple[mmap.mmap, mmap.mmap]]]] = []


def _adopt(scorer: BlockScorer, regions: list[tuple[mmap.mmap, mmap.mmap]]) -> None:
    _adopted[:] = [(scorer, regions)]
    # Ctrl-C is the parent's to handle: it stops the workers when it shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _score_given(plain: bytes, first_line: int) -> _Written:
    return _score_plain(_adopted[0][0], plain, first_line)


def _score_shared(index: int, length: int, first_line: int) -> _Written:
    """Score the block in region `index`; leave the answer in its other half if it fits."""
    scorer, regions = _adopted[0]
    into, back = regions[index]
    written = _score_plain(scorer, into[:length], first_line)
    size = len(written.text)
    if size > len(back):
        return written
    back[:size] = written.text
    return written._replace(text=b"", shared=size)


class _Written(NamedTuple):
    """A scored block: its output lines, how many rows they are, and the lines refused."""

    text: bytes | memoryview
    n_rows: int
    rejected: list[InvalidInput]
    shared: int = -1  # from a worker process: the lines' length in its region (text is b"")


def _score_plain(scorer: BlockScorer, plain: bytes, first_line: int) -> _Written:
    """A plain block: the scorer's block path, else the record path on its lines alone
    (a block without quotes has no record that runs past its end)."""
    text = scorer.score_block(plain, first_line)
    if text is not None:
        return _Written(text, plain.count(b"\n"), [])
    text_lines = io.StringIO(plain.decode("utf-8"), newline="").readlines()
    written, _ = _score_records(
        scorer, iter(text_lines), first_line, first_line + len(text_lines) - 1
    )
    return written


def _score_records(
    scorer: BlockScorer, lines: Iterator[str], first_line: int, until_line: int
) -> tuple[_Written, int]:
    """The scored records from first_line through until_line, and the last line read
    (later than until_line if a quoted cell ran on)."""
    records, last = _read_records(lines, first_line, until_line)
    results = scorer.score_records([r for r, _ in records], [n for _, n in records])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    refused: list[InvalidInput] = []
    n_rows = 0
    for (record, _), result in zip(records, results, strict=True):
        if isinstance(result, InvalidInput):
            refused.append(result)
        else:
            writer.writerow(record + result)
            n_rows += 1
    return _Written(buffer.getvalue().encode(), n_rows, refused), last
