"""Blocks of CSV lines cut into passes for the numpy block paths."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["line_passes"]

# Bytes per pass: the arrays of a pass stay cache-resident, and are reused by the allocator
# instead of mapped and faulted in afresh.
_PASS_BYTES = 128 * 1024


def line_passes(block: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of passes of whole `\\n`-ended lines of about _PASS_BYTES each, in order;
    bytes after the last newline are in none."""
    start = 0
    while start < len(block):
        end = (
            block.rfind(b"\n", start, start + _PASS_BYTES) + 1
            or block.find(b"\n", start + _PASS_BYTES) + 1
        )
        if end <= start:
            return
        yield start, end
        start = end
