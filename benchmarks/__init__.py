"""A reproducible benchmark of modelapi against a ceiling and a naive baseline, in one run.

Run it from the repository root: `benchmarks/run [--quick]` (see benchmarks/README.md).
"""

__all__: list[str] = []
