"""The command line of `benchmarks/run` and the two modes, quick and full."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from benchmarks.peers import PEERS, parse_peers
from benchmarks.report import REPO

__all__ = ["RESULTS", "Mode", "add_data_argument", "build_parser"]

RESULTS = REPO / "benchmarks" / "results"


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
    # pipeline.json in process: rows answered one by one, and how many times over.
    pipeline_rows: int
    pipeline_repeats: int

    @classmethod
    def of(cls, quick: bool) -> Mode:
        """The quick mode (under 3 minutes) or the full one (about 17 minutes)."""
        if quick:
            return cls("quick", 1, 3, 3, 3, 20_000, 1, 200, 3)
        return cls("full", 2, 8, 6, 10, 100_000, 3, 500, 5)


def _peers_argument(text: str) -> tuple[str, ...]:
    try:
        return parse_peers(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """`--data`: the Pima CSV every phase trains on, for `benchmarks/run` and the phases alone."""
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("MODELAPI_TEST_DATA", REPO.parent / "shared/data/pima.csv")),
        help="the Pima CSV the models train on (env MODELAPI_TEST_DATA)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line of `benchmarks/run`."""
    parser = argparse.ArgumentParser(prog="benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (under 3 minutes)")
    parser.add_argument(
        "--peers",
        type=_peers_argument,
        default=PEERS,
        metavar="LIST",
        help=f"the peers to race, comma-separated, or none (default: {','.join(PEERS)})",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also sample the modelapi server with py-spy under single-row and batch load",
    )
    add_data_argument(parser)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and PNG")
    return parser
