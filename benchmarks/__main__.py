"""`python -m benchmarks`: run the benchmark (see benchmarks/README.md)."""

from benchmarks.run import main

__all__: list[str] = []

raise SystemExit(main())
