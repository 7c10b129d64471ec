"""Benchmarks for Batch Orchestra (``python -m bench.scale --help``)."""
