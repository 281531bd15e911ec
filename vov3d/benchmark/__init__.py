"""Benchmarks: how fast the models (``model``), the data path (``data``) and training (``train``)
run on this machine, what the keyframe interval of our video encodings costs (``keyframes``), and
what stopping in step and mid-epoch checkpoints cost (``checkpoint``).
``tools/benchmark.py`` is the command line; BENCHMARKS.md the results."""
