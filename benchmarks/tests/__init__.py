"""The benchmark harness's own tests: its pure parts, without the peers installed."""
