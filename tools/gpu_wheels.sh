#!/usr/bin/env bash
# Put in .whl/ the wheels that tools/gpu_check.py needs on a GPU machine that has PyTorch but no
# package registry (Python 3.12, x86-64; INSTALL.md, "Checking a GPU machine"). Run it here, in the
# repository root, where pip reaches PyPI. The versions are this machine's, which the tests passed on.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
version() { python3 -c "import importlib.metadata as m; print(m.version('$1'))"; }
# PyAV is compiled: take the manylinux build for CPython 3.12.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "av==$(version av)"
# Pure Python, some published only as source archives: built into wheels here.
python3 -m pip wheel -q --no-deps -w .whl \
  "yacs==$(version yacs)" "fvcore==$(version fvcore)" "iopath==$(version iopath)" "termcolor==$(version termcolor)"
ls -l .whl
