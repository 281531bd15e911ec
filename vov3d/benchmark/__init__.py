"""Benchmarks: how fast the models (``model``), the data path (``data``) and training (``train``)
run on this machine. ``tools/benchmark.py`` is the command line; BENCHMARKS.md the results."""
