"""Benchmarks: every performance figure from `make bench` (python -m bench.run)."""
