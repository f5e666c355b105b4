"""Benchmarks: ``python -m bench`` (see README). Each compares against a baseline measured in the same run."""
